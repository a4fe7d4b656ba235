//! Recurrence rules (RFC 5545 RRULE) through the `rrule` crate, expanded in the event's own
//! time zone so that a weekly 10:00 stays 10:00 local across daylight-saving changes.
//!
//! Expanding costs what the window holds, not what lies between the first start and the
//! window: a rule without COUNT restarts at the first period of its own grid that reaches the
//! window (its implicit parts, such as the hour taken from the first start, written out
//! first), and every candidate the crate hands over is charged to a [`Budget`] shared by the
//! whole request.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use rrule::{Frequency, NWeekday, RRule, RRuleSetIter, Unvalidated};

/// Longest rule text accepted.
const MAX_RULE_CHARS: usize = 500;
/// Most occurrences a COUNT may ask for: a counted rule cannot restart at the window (the
/// count runs from the first start), so it is walked from there, and this bounds the walk.
pub const MAX_COUNT: u32 = 1000;

/// `FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10`, also accepted with an `RRULE:` prefix and in any
/// case; stored trimmed, without the prefix, upper case. Refuses rules that can produce
/// more than one occurrence in a clock hour, however they are written.
pub fn normalize(text: &str) -> Result<String, String> {
    let text = text.trim();
    let text = match text.get(..6) {
        Some(prefix) if prefix.eq_ignore_ascii_case("RRULE:") => &text[6..],
        _ => text,
    };
    let rule = text.trim().to_ascii_uppercase();
    if rule.is_empty() || rule.chars().count() > MAX_RULE_CHARS || rule.chars().any(char::is_control) {
        return Err(format!(
            "must be an RRULE of at most {MAX_RULE_CHARS} characters, like FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10"
        ));
    }
    let parsed = parse(&rule)?;
    at_most_hourly(&parsed)?;
    if parsed.get_count().is_some_and(|count| count > MAX_COUNT) {
        return Err(format!(
            "COUNT can be at most {MAX_COUNT}; for a longer series give UNTIL or no end"
        ));
    }
    Ok(rule)
}

/// Within one clock hour occurrences differ only by minute and second: more than one value
/// of those (unless BYSETPOS keeps one per period) means more than one an hour.
fn at_most_hourly(rule: &RRule<Unvalidated>) -> Result<(), String> {
    if matches!(rule.get_freq(), Frequency::Secondly | Frequency::Minutely) {
        return Err("must repeat at most hourly (FREQ=HOURLY, DAILY, WEEKLY, MONTHLY or YEARLY)".into());
    }
    let in_an_hour = rule.get_by_minute().len().max(1) * rule.get_by_second().len().max(1);
    let kept = match rule.get_by_set_pos().len() {
        0 => in_an_hour,
        positions => in_an_hour.min(positions),
    };
    if kept > 1 {
        return Err(format!(
            "can produce {kept} occurrences in one hour (BYMINUTE × BYSECOND); an event repeats at most hourly: \
             give one minute and one second"
        ));
    }
    Ok(())
}

fn parse(rule: &str) -> Result<RRule<Unvalidated>, String> {
    rule.parse::<RRule<Unvalidated>>()
        .map_err(|error| format!("is not a valid RRULE ({error}); e.g. FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10"))
}

fn local(at: DateTime<Utc>, zone: Tz) -> DateTime<rrule::Tz> {
    at.with_timezone(&rrule::Tz::Tz(zone))
}

/// Checks a normalized rule against the event's first start, in its zone: it must fit the
/// start and produce an occurrence (a rule that never does, like the 30th of February, would
/// send every expansion searching).
pub fn check(rule: &str, start: DateTime<Utc>, zone: Tz) -> Result<(), String> {
    let set = parse(rule)?
        .build(local(start, zone))
        .map_err(|error| format!("does not fit the event's start: {error}"))?
        .limit();
    match (&set).into_iter().next() {
        Some(_) => Ok(()),
        None => Err("produces no occurrence from the event's start; check BYMONTH, BYMONTHDAY and BYDAY".into()),
    }
}

/// When the last occurrence of a counted rule starts (`None` for a rule without COUNT): a
/// walk of at most [`MAX_COUNT`] occurrences, done when the event is written so that no
/// listing has to walk it.
pub fn last_start(rule: &str, start: DateTime<Utc>, zone: Tz) -> Result<Option<DateTime<Utc>>, String> {
    let parsed = parse(rule)?;
    if parsed.get_count().is_none() {
        return Ok(None);
    }
    let set = parsed
        .build(local(start, zone))
        .map_err(|error| error.to_string())?
        .limit();
    Ok((&set).into_iter().last().map(|at| at.with_timezone(&Utc)))
}

/// Why an expansion stopped before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Stop {
    #[error("the expansion needs more work than one request may do")]
    OverBudget,
    #[error("the request was cancelled")]
    Cancelled,
}

/// The work one request may spend on expansion: a number of candidate occurrences, CPU
/// time for what the crate does between two candidates (the thread's own, so waiting for a
/// core on a busy machine spends none of it), and the request's cancellation.
pub struct Budget {
    steps_left: usize,
    deadline: Duration,
    cancelled: Arc<AtomicBool>,
}

impl Budget {
    /// A budget for the calling thread, from now.
    pub fn new(steps: usize, time: Duration, cancelled: Arc<AtomicBool>) -> Budget {
        Budget {
            steps_left: steps,
            deadline: space_http::cpu::thread_time() + time,
            cancelled,
        }
    }

    fn spend(&mut self) -> Result<(), Stop> {
        if self.cancelled.load(Ordering::Relaxed) {
            return Err(Stop::Cancelled);
        }
        // The clock is read every 64 steps: cheap, and a step is microseconds at most.
        if self.steps_left == 0
            || (self.steps_left.is_multiple_of(64) && space_http::cpu::thread_time() > self.deadline)
        {
            return Err(Stop::OverBudget);
        }
        self.steps_left -= 1;
        Ok(())
    }
}

/// The starts of one event's occurrences that overlap `[from, to)`, in order, produced on
/// demand so that a merge of many events reads only what it returns.
pub struct Occurrences {
    source: Source,
    duration: TimeDelta,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

enum Source {
    Once(Option<DateTime<Utc>>),
    Rule(Box<RRuleSetIter>),
}

impl Occurrences {
    /// An event without a rule (or with one that no longer passes [`normalize`]: listed once).
    pub fn once(start: DateTime<Utc>, duration: TimeDelta, from: DateTime<Utc>, to: DateTime<Utc>) -> Occurrences {
        Occurrences {
            source: Source::Once(Some(start)),
            duration,
            from,
            to,
        }
    }

    fn none() -> Occurrences {
        Occurrences {
            source: Source::Once(None),
            duration: TimeDelta::zero(),
            from: DateTime::<Utc>::MIN_UTC,
            to: DateTime::<Utc>::MIN_UTC,
        }
    }

    /// The occurrences of `rule` first starting at `start` in `zone`; `last` is the start of
    /// the last one of a counted rule, as [`last_start`] found it when the event was written.
    pub fn of_rule(
        rule: &str,
        start: DateTime<Utc>,
        zone: Tz,
        last: Option<DateTime<Utc>>,
        duration: TimeDelta,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Occurrences, String> {
        let rule = normalize(rule)?;
        let parsed = match last {
            // A counted rule is the same rule ending at its last occurrence, which can restart.
            Some(last) if rule.contains("COUNT=") => {
                let uncounted: Vec<&str> = rule.split(';').filter(|part| !part.starts_with("COUNT=")).collect();
                parse(&uncounted.join(";"))?.until(last.with_timezone(&rrule::Tz::UTC))
            }
            _ => parse(&rule)?,
        };
        let lower = from - duration;
        let (parsed, first) = match restart(parsed, start, zone, lower) {
            Restart::At(rule, first) => (*rule, first),
            Restart::Never => return Ok(Occurrences::none()),
            Restart::FromStart(rule) => (*rule, local(start, zone)),
        };
        // The crate checks UNTIL at each candidate: ending the rule at the window stops it there.
        let end = to.with_timezone(&rrule::Tz::UTC);
        let until = parsed.get_until().copied().map_or(end, |until| until.min(end));
        let parsed = if parsed.get_count().is_none() && until >= first {
            parsed.until(until)
        } else {
            parsed
        };
        let set = parsed.build(first).map_err(|error| error.to_string())?.limit();
        Ok(Occurrences {
            source: Source::Rule(Box::new((&set).into_iter())),
            duration,
            from,
            to,
        })
    }

    /// The next start overlapping the window, charging each candidate to `budget`.
    pub fn next(&mut self, budget: &mut Budget) -> Result<Option<DateTime<Utc>>, Stop> {
        loop {
            budget.spend()?;
            let candidate = match &mut self.source {
                Source::Once(start) => start.take(),
                Source::Rule(dates) => dates.next().map(|at| at.with_timezone(&Utc)),
            };
            let Some(at) = candidate else { return Ok(None) };
            if at >= self.to {
                self.source = Source::Once(None);
                return Ok(None);
            }
            if at + self.duration > self.from {
                return Ok(Some(at));
            }
        }
    }
}

enum Restart {
    /// Expand this rule (its implicit parts written out) from this first start.
    At(Box<RRule<Unvalidated>>, DateTime<rrule::Tz>),
    /// The rule ends before the window.
    Never,
    /// Expand from the event's own start.
    FromStart(Box<RRule<Unvalidated>>),
}

/// Where expansion may start without changing what falls at or after `lower`: inside the
/// period of the rule's grid (FREQ × INTERVAL, counted from the first start) that holds
/// `lower` or precedes it, once the parts the rule takes from its first start are written
/// out; at `lower` itself when that period holds it, so nothing before `lower` is produced.
fn restart(rule: RRule<Unvalidated>, start: DateTime<Utc>, zone: Tz, lower: DateTime<Utc>) -> Restart {
    if rule.get_count().is_some() || start >= lower {
        return Restart::FromStart(Box::new(rule));
    }
    if rule.get_until().is_some_and(|until| until.with_timezone(&Utc) < lower) {
        return Restart::Never;
    }
    let freq = rule.get_freq();
    let first = start.with_timezone(&zone).naive_local();
    let target = lower.with_timezone(&zone).naive_local();
    let interval = i64::from(rule.get_interval().max(1));
    let origin = period_start(first, freq, rule.get_week_start());
    let periods = match freq {
        Frequency::Yearly => i64::from(target.year() - first.year()),
        Frequency::Monthly => {
            i64::from(target.year() - first.year()) * 12 + i64::from(target.month()) - i64::from(first.month())
        }
        Frequency::Weekly => (period_start(target, freq, rule.get_week_start()) - origin).num_days() / 7,
        Frequency::Daily => (target.date() - first.date()).num_days(),
        _ => (period_start(target, freq, rule.get_week_start()) - origin).num_hours(),
    };
    let instant = |naive: Option<NaiveDateTime>| naive.and_then(|naive| zone.from_local_datetime(&naive).earliest());
    // Back off one more interval if the period starts in a gap of the zone's clock.
    for back in 0..3 {
        let steps = (periods / interval - back) * interval;
        if steps <= 0 {
            break;
        }
        let (Some(anchor), Some(next)) = (
            instant(add_periods(origin, freq, steps)),
            instant(add_periods(origin, freq, steps + 1)),
        ) else {
            continue;
        };
        let anchor = anchor.with_timezone(&Utc);
        let next = next.with_timezone(&Utc);
        if anchor > lower {
            continue;
        }
        // Candidates before `lower` are skipped inside the crate, never handed over.
        let at = if lower < next {
            lower
        } else {
            next - TimeDelta::seconds(1)
        };
        let at = at.with_nanosecond(0).unwrap_or(at).max(anchor);
        return Restart::At(Box::new(explicit(rule, start, zone)), local(at, zone));
    }
    Restart::FromStart(Box::new(rule))
}

/// The start of the period of `freq` holding `at`.
fn period_start(at: NaiveDateTime, freq: Frequency, wkst: chrono::Weekday) -> NaiveDateTime {
    let date = at.date();
    let day = match freq {
        Frequency::Yearly => date.with_ordinal(1),
        Frequency::Monthly => date.with_day(1),
        Frequency::Weekly => Some(week_start(date, wkst)),
        Frequency::Daily => Some(date),
        _ => {
            return at
                .with_minute(0)
                .and_then(|at| at.with_second(0))
                .and_then(|at| at.with_nanosecond(0))
                .unwrap_or(at);
        }
    };
    day.unwrap_or(date).and_time(chrono::NaiveTime::MIN)
}

/// `periods` periods of `freq` after `origin` (the start of a period).
fn add_periods(origin: NaiveDateTime, freq: Frequency, periods: i64) -> Option<NaiveDateTime> {
    let count = u32::try_from(periods).ok()?;
    match freq {
        Frequency::Yearly => origin.checked_add_months(Months::new(count.checked_mul(12)?)),
        Frequency::Monthly => origin.checked_add_months(Months::new(count)),
        Frequency::Weekly => origin.checked_add_days(Days::new(u64::from(count) * 7)),
        Frequency::Daily => origin.checked_add_days(Days::new(u64::from(count))),
        _ => origin.checked_add_signed(TimeDelta::try_hours(periods)?),
    }
}

fn week_start(date: NaiveDate, wkst: chrono::Weekday) -> NaiveDate {
    let back = (7 + date.weekday().num_days_from_monday() - wkst.num_days_from_monday()) % 7;
    date - Days::new(u64::from(back))
}

/// The rule with what it takes from its first start written out (as RFC 5545 and the crate
/// fill them in), so that starting it elsewhere keeps the same days and times.
fn explicit(rule: RRule<Unvalidated>, start: DateTime<Utc>, zone: Tz) -> RRule<Unvalidated> {
    let first = start.with_timezone(&zone).naive_local();
    let freq = rule.get_freq();
    let mut rule = rule;
    let no_day_parts = rule.get_by_week_no().is_empty()
        && rule.get_by_year_day().is_empty()
        && rule.get_by_month_day().is_empty()
        && rule.get_by_weekday().is_empty();
    if no_day_parts {
        let day = i8::try_from(first.day()).unwrap_or(1);
        rule = match freq {
            Frequency::Yearly => {
                let months: Vec<chrono::Month> = if rule.get_by_month().is_empty() {
                    chrono::Month::try_from(u8::try_from(first.month()).unwrap_or(1))
                        .into_iter()
                        .collect()
                } else {
                    rule.get_by_month()
                        .iter()
                        .filter_map(|month| chrono::Month::try_from(*month).ok())
                        .collect()
                };
                rule.by_month(&months).by_month_day(vec![day])
            }
            Frequency::Monthly => rule.by_month_day(vec![day]),
            Frequency::Weekly => rule.by_weekday(vec![NWeekday::Every(first.weekday())]),
            _ => rule,
        };
    }
    let part = |value: u32| u8::try_from(value).unwrap_or(0);
    if rule.get_by_hour().is_empty() && freq < Frequency::Hourly {
        rule = rule.by_hour(vec![part(first.hour())]);
    }
    if rule.get_by_minute().is_empty() {
        rule = rule.by_minute(vec![part(first.minute())]);
    }
    if rule.get_by_second().is_empty() {
        rule = rule.by_second(vec![part(first.second())]);
    }
    rule
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn unlimited() -> Budget {
        Budget::new(usize::MAX, Duration::from_secs(60), Arc::default())
    }

    /// Every start of the rule overlapping the window, by expansion from the window.
    fn starts(
        rule: &str,
        start: DateTime<Utc>,
        zone: Tz,
        duration: TimeDelta,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<DateTime<Utc>> {
        let last = last_start(rule, start, zone).unwrap();
        let mut occurrences = Occurrences::of_rule(rule, start, zone, last, duration, from, to).unwrap();
        let mut budget = unlimited();
        std::iter::from_fn(|| occurrences.next(&mut budget).unwrap()).collect()
    }

    /// The same by walking from the first start, as the crate does on its own.
    fn walked(
        rule: &str,
        start: DateTime<Utc>,
        zone: Tz,
        duration: TimeDelta,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<DateTime<Utc>> {
        let set = parse(rule).unwrap().build(local(start, zone)).unwrap();
        (&set)
            .into_iter()
            .map(|at| at.with_timezone(&Utc))
            .take_while(|at| *at < to)
            .filter(|at| *at + duration > from)
            .collect()
    }

    #[test]
    fn rules_are_normalized_and_checked() {
        assert_eq!(
            normalize(" rrule:freq=weekly;byday=mo,we;count=10 ").unwrap(),
            "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10"
        );
        assert!(normalize("FREQ=SOMETIMES").is_err());
        assert!(normalize("FREQ=MINUTELY;COUNT=3").unwrap_err().contains("hourly"));
        assert!(normalize("").is_err());
        assert!(
            check("FREQ=DAILY;UNTIL=20990101T000000Z", at("2099-03-02T10:00:00Z"), Tz::UTC).is_err(),
            "until before start"
        );
        assert!(
            check(
                "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
                at("2099-03-02T10:00:00Z"),
                Tz::UTC
            )
            .unwrap_err()
            .contains("no occurrence")
        );
    }

    #[test]
    fn rules_that_repeat_more_than_hourly_are_refused_however_written() {
        for rule in [
            "FREQ=SECONDLY",
            "FREQ=MINUTELY;INTERVAL=60",
            "FREQ=DAILY;BYHOUR=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23;BYMINUTE=0,30",
            "FREQ=HOURLY;BYSECOND=0,1",
            "FREQ=YEARLY;BYMINUTE=5,6",
            "FREQ=DAILY;BYHOUR=9;BYMINUTE=0,30;BYSETPOS=1,2",
        ] {
            assert!(normalize(rule).is_err(), "{rule} is refused");
        }
        for rule in [
            "FREQ=HOURLY",
            "FREQ=DAILY;BYHOUR=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23",
            "FREQ=DAILY;BYHOUR=9,10;BYMINUTE=0,30;BYSETPOS=1",
            "FREQ=HOURLY;BYMINUTE=59;BYSECOND=59",
        ] {
            assert!(normalize(rule).is_ok(), "{rule} is accepted");
        }
        assert!(normalize("FREQ=DAILY;COUNT=1000").is_ok());
        assert!(normalize("FREQ=DAILY;COUNT=1001").unwrap_err().contains("COUNT"));
    }

    #[test]
    fn weekly_rules_expand_in_local_time_across_dst() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // Mondays and Wednesdays at 10:00 Berlin, from Monday 16 March 2026 (CET).
        let starts = starts(
            "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10",
            at("2026-03-16T09:00:00Z"),
            berlin,
            TimeDelta::hours(1),
            at("2026-03-01T00:00:00Z"),
            at("2026-05-01T00:00:00Z"),
        );
        assert_eq!(starts.len(), 10);
        assert_eq!(starts[0], at("2026-03-16T09:00:00Z"));
        // After 29 March Berlin is UTC+2: still 10:00 local.
        assert_eq!(starts[4], at("2026-03-30T08:00:00Z"));
    }

    #[test]
    fn an_occurrence_still_running_at_from_counts() {
        let starts = starts(
            "FREQ=DAILY",
            at("2099-03-02T10:00:00Z"),
            Tz::UTC,
            TimeDelta::hours(2),
            at("2099-03-03T11:00:00Z"),
            at("2099-03-06T00:00:00Z"),
        );
        assert_eq!(
            starts,
            ["2099-03-03T10:00:00Z", "2099-03-04T10:00:00Z", "2099-03-05T10:00:00Z"].map(at)
        );
    }

    /// Restarting at the window gives exactly what walking from the first start gives, for
    /// every frequency, intervals, implicit parts, week starts and zones with DST.
    #[test]
    fn restarting_at_the_window_changes_nothing() {
        let rules = [
            "FREQ=HOURLY",
            "FREQ=HOURLY;INTERVAL=5",
            "FREQ=HOURLY;INTERVAL=7;BYDAY=MO,FR;BYMINUTE=15",
            "FREQ=DAILY",
            "FREQ=DAILY;INTERVAL=3",
            "FREQ=DAILY;BYHOUR=1,2,3,9,17",
            "FREQ=WEEKLY",
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH",
            "FREQ=WEEKLY;INTERVAL=3;WKST=SU;BYDAY=SU,SA",
            "FREQ=MONTHLY",
            "FREQ=MONTHLY;INTERVAL=5",
            "FREQ=MONTHLY;BYMONTHDAY=-1",
            "FREQ=MONTHLY;BYDAY=-1FR;INTERVAL=2",
            "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
            "FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13",
            "FREQ=YEARLY",
            "FREQ=YEARLY;INTERVAL=3",
            "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29",
            "FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO",
            "FREQ=YEARLY;BYYEARDAY=100,-1",
            "FREQ=YEARLY;BYMONTH=3,10;BYDAY=-1SU;BYHOUR=1;BYMINUTE=30",
            "FREQ=DAILY;UNTIL=20310101T000000Z",
            "FREQ=HOURLY;INTERVAL=3;COUNT=1000",
            "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=500",
            "FREQ=MONTHLY;BYDAY=2TU;COUNT=90",
        ];
        let zones = [
            "UTC",
            "Europe/Berlin",
            "America/New_York",
            "America/Santiago",
            "Asia/Kolkata",
            "Australia/Lord_Howe",
        ];
        let firsts = ["2020-02-29T22:45:10Z", "2021-10-31T00:30:00Z", "2023-03-12T07:15:00Z"];
        let windows = [
            ("2024-03-09T00:00:00Z", "2024-03-20T00:00:00Z"),
            ("2025-10-20T13:00:00Z", "2025-11-10T00:00:00Z"),
            ("2028-01-01T00:00:00Z", "2028-12-31T00:00:00Z"),
        ];
        let mut compared = 0;
        for rule in rules {
            for zone in zones {
                let zone: Tz = zone.parse().unwrap();
                for first in firsts {
                    let first = at(first);
                    if check(rule, first, zone).is_err() {
                        continue;
                    }
                    for (from, to) in windows {
                        let (from, to) = (at(from), at(to));
                        let duration = TimeDelta::minutes(90);
                        let expected = walked(rule, first, zone, duration, from, to);
                        assert_eq!(
                            starts(rule, first, zone, duration, from, to),
                            expected,
                            "{rule} from {first} in {zone}, window {from}..{to}"
                        );
                        compared += usize::from(!expected.is_empty());
                    }
                }
            }
        }
        assert!(compared > 300, "only {compared} windows held occurrences");
    }

    #[test]
    fn a_rule_fifty_years_old_costs_what_the_window_holds() {
        let from = at("2076-01-01T00:00:00Z");
        let to = from + TimeDelta::days(7);
        let mut occurrences = Occurrences::of_rule(
            "FREQ=HOURLY",
            at("2026-01-01T00:00:00Z"),
            "Europe/Berlin".parse().unwrap(),
            None,
            TimeDelta::minutes(30),
            from,
            to,
        )
        .unwrap();
        // A week of hourly occurrences, and a few candidates at the edges.
        let mut budget = Budget::new(7 * 24 + 3, Duration::from_secs(60), Arc::default());
        let mut count = 0;
        while occurrences.next(&mut budget).unwrap().is_some() {
            count += 1;
        }
        assert_eq!(count, 7 * 24);
    }

    #[test]
    fn the_budget_stops_expansion() {
        let mut occurrences = Occurrences::of_rule(
            "FREQ=HOURLY",
            at("2026-01-01T00:00:00Z"),
            Tz::UTC,
            None,
            TimeDelta::minutes(30),
            at("2026-01-01T00:00:00Z"),
            at("2026-12-01T00:00:00Z"),
        )
        .unwrap();
        let mut budget = Budget::new(10, Duration::from_secs(60), Arc::default());
        let result = std::iter::repeat_with(|| occurrences.next(&mut budget)).find(|step| step.is_err());
        assert_eq!(result, Some(Err(Stop::OverBudget)));
        let cancelled = Arc::new(AtomicBool::new(true));
        let mut budget = Budget::new(10, Duration::from_secs(60), cancelled);
        assert_eq!(occurrences.next(&mut budget), Err(Stop::Cancelled));
    }
}
