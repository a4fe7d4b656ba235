//! VTIMEZONE components from the IANA data in `chrono-tz`. RFC 5545 wants one for every
//! TZID a calendar uses. The zone's offset changes are found by scanning the years the
//! feed needs; the years at the end that repeat one pattern (e.g. "last Sunday of March at
//! 02:00") become yearly rules that hold from then on, earlier changes are listed one by one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc, Weekday};
use chrono_tz::{OffsetComponents, OffsetName, Tz};

use crate::ical::{Writer, local_stamp};

/// What is in force at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    /// Seconds east of UTC.
    offset: i32,
    dst: bool,
    name: Option<String>,
}

fn state(tz: Tz, at: DateTime<Utc>) -> State {
    let offset = tz.offset_from_utc_datetime(&at.naive_utc());
    State {
        offset: offset.fix().local_minus_utc(),
        dst: offset.dst_offset() != TimeDelta::zero(),
        name: offset.abbreviation().map(str::to_owned),
    }
}

/// One change of offset.
#[derive(Debug, Clone)]
struct Transition {
    /// The wall-clock time it happens at, read in the offset before it.
    local: NaiveDateTime,
    from: i32,
    to: State,
}

impl Transition {
    /// The yearly pattern it follows: month, weekday and which of that month's weekdays
    /// (-1 for the last), the time, and the offsets.
    fn pattern(&self) -> (u32, Weekday, i32, chrono::NaiveTime, i32, State) {
        let date = self.local.date();
        let next_month = NaiveDate::from_ymd_opt(date.year() + i32::from(date.month() == 12), date.month() % 12 + 1, 1);
        let days_in_month = next_month.and_then(|d| d.pred_opt()).map_or(31, |d| d.day());
        let nth = if date.day() + 7 > days_in_month {
            -1
        } else {
            (date.day() as i32 - 1) / 7 + 1
        };
        (
            date.month(),
            date.weekday(),
            nth,
            self.local.time(),
            self.from,
            self.to.clone(),
        )
    }
}

fn transitions(tz: Tz, from: DateTime<Utc>, until: DateTime<Utc>) -> Vec<Transition> {
    let mut found = Vec::new();
    let mut at = from;
    let mut current = state(tz, at);
    let same = |a: &State, b: &State| a.offset == b.offset && a.dst == b.dst;
    while at < until {
        let next = (at + TimeDelta::days(1)).min(until);
        let later = state(tz, next);
        if same(&later, &current) {
            at = next;
            continue;
        }
        // The change happens in (at, next]: narrow it to the second.
        let (mut low, mut high) = (at, next);
        while high - low > TimeDelta::seconds(1) {
            let middle = low + (high - low) / 2;
            if same(&state(tz, middle), &current) {
                low = middle;
            } else {
                high = middle;
            }
        }
        let after = state(tz, high);
        found.push(Transition {
            local: high.naive_utc() + TimeDelta::seconds(i64::from(current.offset)),
            from: current.offset,
            to: after.clone(),
        });
        current = after;
        at = high;
    }
    found
}

fn offset_text(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let total = seconds.unsigned_abs();
    let (hours, minutes, rest) = (total / 3600, total % 3600 / 60, total % 60);
    if rest == 0 {
        format!("{sign}{hours:02}{minutes:02}")
    } else {
        format!("{sign}{hours:02}{minutes:02}{rest:02}")
    }
}

fn weekday_code(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "MO",
        Weekday::Tue => "TU",
        Weekday::Wed => "WE",
        Weekday::Thu => "TH",
        Weekday::Fri => "FR",
        Weekday::Sat => "SA",
        Weekday::Sun => "SU",
    }
}

fn observance(writer: &mut Writer, onset: NaiveDateTime, from: i32, to: &State, rule: Option<String>) {
    let kind = if to.dst { "DAYLIGHT" } else { "STANDARD" };
    writer.begin(kind);
    writer.raw("DTSTART", &local_stamp(onset));
    writer.raw("TZOFFSETFROM", &offset_text(from));
    writer.raw("TZOFFSETTO", &offset_text(to.offset));
    if let Some(rule) = rule {
        writer.raw("RRULE", &rule);
    }
    if let Some(name) = &to.name {
        writer.text("TZNAME", name);
    }
    writer.end(kind);
}

/// The VTIMEZONE of `tz` for `first_year..=last_year`, written once per process: zones do
/// not change while it runs, and finding a zone's transitions reads it day by day.
pub fn block(tz: Tz, first_year: i32, last_year: i32) -> Arc<str> {
    type Blocks = Mutex<HashMap<(Tz, i32, i32), Arc<str>>>;
    static BLOCKS: OnceLock<Blocks> = OnceLock::new();
    /// Blocks kept at most (a few KB each); past it the cache starts over.
    const KEPT: usize = 1024;
    let blocks = BLOCKS.get_or_init(Blocks::default);
    let key = (tz, first_year, last_year);
    if let Some(found) = blocks.lock().ok().and_then(|blocks| blocks.get(&key).cloned()) {
        return found;
    }
    let mut writer = Writer::new();
    write(&mut writer, tz, first_year, last_year);
    let written: Arc<str> = writer.finish().into();
    if let Ok(mut blocks) = blocks.lock() {
        if blocks.len() >= KEPT {
            blocks.clear();
        }
        blocks.insert(key, Arc::clone(&written));
    }
    written
}

/// Writes the VTIMEZONE of `tz` good for times in `first_year..=last_year` (and after,
/// while the zone keeps its current rules).
pub fn write(writer: &mut Writer, tz: Tz, first_year: i32, last_year: i32) {
    let last_year = last_year.max(first_year);
    let start = Utc
        .with_ymd_and_hms(first_year, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let end = Utc
        .with_ymd_and_hms(last_year + 1, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    let changes = transitions(tz, start, end);
    let initial = state(tz, start);
    writer.begin("VTIMEZONE");
    writer.text("TZID", tz.name());
    observance(
        writer,
        start.naive_utc() + TimeDelta::seconds(i64::from(initial.offset)),
        initial.offset,
        &initial,
        None,
    );

    // The years at the end that repeat the last year's changes exactly.
    let year_of = |t: &Transition| t.local.year();
    let patterns_of = |year: i32| -> Vec<_> {
        changes
            .iter()
            .filter(|t| year_of(t) == year)
            .map(Transition::pattern)
            .collect()
    };
    let last_patterns = patterns_of(last_year);
    let mut stable_from = last_year + 1;
    if !last_patterns.is_empty() {
        stable_from = last_year;
        while stable_from > first_year && patterns_of(stable_from - 1) == last_patterns {
            stable_from -= 1;
        }
    }
    for change in changes.iter().filter(|t| year_of(t) < stable_from) {
        observance(writer, change.local, change.from, &change.to, None);
    }
    for change in changes.iter().filter(|t| year_of(t) == stable_from) {
        let (month, weekday, nth, ..) = change.pattern();
        let rule = format!("FREQ=YEARLY;BYMONTH={month};BYDAY={nth}{}", weekday_code(weekday));
        observance(writer, change.local, change.from, &change.to, Some(rule));
    }
    writer.end("VTIMEZONE");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(tz: &str, first: i32, last: i32) -> String {
        let mut writer = Writer::new();
        write(&mut writer, tz.parse().unwrap(), first, last);
        writer.finish()
    }

    #[test]
    fn europe_becomes_two_yearly_rules() {
        let text = written("Europe/Berlin", 2025, 2040);
        assert!(text.contains("TZID:Europe/Berlin\r\n"));
        assert!(text.contains("BEGIN:DAYLIGHT\r\nDTSTART:20250330T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nTZNAME:CEST\r\n"), "{text}");
        assert!(text.contains("DTSTART:20251026T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU"), "{text}");
        assert_eq!(text.matches("BEGIN:DAYLIGHT").count(), 1, "{text}");
    }

    #[test]
    fn new_york_uses_the_second_sunday_of_march() {
        let text = written("America/New_York", 2030, 2032);
        assert!(text.contains("RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU"), "{text}");
        assert!(text.contains("RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU"), "{text}");
        assert!(text.contains("TZOFFSETFROM:-0500\r\nTZOFFSETTO:-0400"), "{text}");
    }

    #[test]
    fn zones_without_changes_have_one_observance() {
        let text = written("Asia/Kolkata", 2030, 2031);
        assert_eq!(text.matches("BEGIN:STANDARD").count(), 1);
        assert!(text.contains("TZOFFSETTO:+0530"));
        assert!(!text.contains("RRULE"));
    }

    #[test]
    fn a_zone_that_changed_its_rules_lists_the_old_changes() {
        // US rules changed in 2007: the years before are listed one by one.
        let text = written("America/Chicago", 2005, 2012);
        assert!(text.contains("DTSTART:20050403T020000"), "{text}");
        assert!(text.contains("RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU"), "{text}");
    }
}
