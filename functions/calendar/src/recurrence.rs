//! Recurrence rules (RFC 5545 RRULE) through the `rrule` crate, expanded in the event's own
//! time zone so that a weekly 10:00 stays 10:00 local across daylight-saving changes.

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use rrule::{Frequency, RRule, Unvalidated};

/// Longest rule text accepted.
const MAX_RULE_CHARS: usize = 500;

/// `FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10`, also accepted with an `RRULE:` prefix and in any
/// case; stored trimmed, without the prefix, upper case.
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
    if matches!(parsed.get_freq(), Frequency::Secondly | Frequency::Minutely) {
        return Err("must repeat at most hourly (FREQ=HOURLY, DAILY, WEEKLY, MONTHLY or YEARLY)".into());
    }
    Ok(rule)
}

fn parse(rule: &str) -> Result<RRule<Unvalidated>, String> {
    rule.parse::<RRule<Unvalidated>>()
        .map_err(|error| format!("is not a valid RRULE ({error}); e.g. FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10"))
}

/// Checks a normalized rule against the event's first start, in its zone.
pub fn check(rule: &str, start: DateTime<Utc>, zone: Tz) -> Result<(), String> {
    parse(rule)?
        .validate(start.with_timezone(&rrule::Tz::Tz(zone)))
        .map(|_| ())
        .map_err(|error| format!("does not fit the event's start: {error}"))
}

/// The starts of `rule` (first at `start`, in `zone`) of occurrences lasting `duration`
/// that overlap `[from, to)`, at most `limit`; `true` when there were more.
pub fn starts(
    rule: &str,
    start: DateTime<Utc>,
    zone: Tz,
    duration: TimeDelta,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: usize,
) -> Result<(Vec<DateTime<Utc>>, bool), String> {
    if limit == 0 {
        return Ok((Vec::new(), true));
    }
    let tz = rrule::Tz::Tz(zone);
    let set = parse(rule)?
        .build(start.with_timezone(&tz))
        .map_err(|error| error.to_string())?;
    let wanted = u16::try_from(limit + 1).unwrap_or(u16::MAX);
    let result = set
        .after((from - duration).with_timezone(&tz))
        .before(to.with_timezone(&tz))
        .all(wanted);
    let mut starts: Vec<DateTime<Utc>> = result
        .dates
        .iter()
        .map(|at| at.with_timezone(&Utc))
        .filter(|at| *at < to && *at + duration > from)
        .collect();
    let more = starts.len() > limit || (result.limited && starts.len() >= limit);
    starts.truncate(limit);
    Ok((starts, more))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
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
    }

    #[test]
    fn weekly_rules_expand_in_local_time_across_dst() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // Mondays and Wednesdays at 10:00 Berlin, from Monday 16 March 2026 (CET).
        let (starts, more) = starts(
            "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10",
            at("2026-03-16T09:00:00Z"),
            berlin,
            TimeDelta::hours(1),
            at("2026-03-01T00:00:00Z"),
            at("2026-05-01T00:00:00Z"),
            100,
        )
        .unwrap();
        assert!(!more);
        assert_eq!(starts.len(), 10);
        assert_eq!(starts[0], at("2026-03-16T09:00:00Z"));
        // After 29 March Berlin is UTC+2: still 10:00 local.
        assert_eq!(starts[4], at("2026-03-30T08:00:00Z"));
    }

    #[test]
    fn expansion_is_capped_and_overlaps_count() {
        let (starts, more) = super::starts(
            "FREQ=DAILY",
            at("2099-03-02T10:00:00Z"),
            Tz::UTC,
            TimeDelta::hours(2),
            at("2099-03-03T11:00:00Z"),
            at("2099-04-01T00:00:00Z"),
            5,
        )
        .unwrap();
        assert!(more);
        assert_eq!(starts.len(), 5);
        assert_eq!(
            starts[0],
            at("2099-03-03T10:00:00Z"),
            "an occurrence still running at `from` counts"
        );
    }
}
