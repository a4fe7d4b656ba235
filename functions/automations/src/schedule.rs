//! Schedules: a cron expression read in an IANA time zone, so `0 9 * * MON` in
//! Europe/Berlin fires at nine on the wall clock in winter and in summer alike.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;

/// Why a schedule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("{0}")]
    Cron(String),
    #[error("unknown time zone")]
    TimeZone,
}

/// A checked cron expression (five fields: minute hour day month weekday) and its zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    text: String,
    cron: Cron,
    zone: Tz,
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Schedule) -> bool {
        self.text == other.text && self.zone == other.zone
    }
}

impl Schedule {
    pub fn parse(cron: &str, zone: &str) -> Result<Schedule, ScheduleError> {
        let text = cron.trim();
        if text.split_whitespace().count() != 5 {
            return Err(ScheduleError::Cron(
                "must be a cron expression of five fields: minute hour day month weekday (like `0 9 * * MON`)".into(),
            ));
        }
        let parsed = Cron::new(text)
            .parse()
            .map_err(|error| ScheduleError::Cron(format!("is not a valid cron expression: {error}")))?;
        let zone: Tz = zone.parse().map_err(|_| ScheduleError::TimeZone)?;
        // An expression that never matches (`0 0 31 2 *`) would leave nothing to schedule.
        let schedule = Schedule {
            text: text.to_owned(),
            cron: parsed,
            zone,
        };
        if schedule.next_after(DateTime::UNIX_EPOCH).is_none() {
            return Err(ScheduleError::Cron("never occurs".into()));
        }
        Ok(schedule)
    }

    pub fn cron(&self) -> &str {
        &self.text
    }

    pub fn time_zone(&self) -> &str {
        self.zone.name()
    }

    /// The first occurrence strictly after `after`, read on the zone's wall clock: a time
    /// skipped by a DST change moves to the next that exists; one repeated fires once.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.zone);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|next| next.with_timezone(&Utc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).expect("a time").with_timezone(&Utc)
    }

    #[test]
    fn nine_on_mondays_in_berlin_stays_at_nine_across_the_dst_change() {
        let schedule = Schedule::parse("0 9 * * MON", "Europe/Berlin").expect("valid");
        // Summer time ends on Sunday 2026-10-25: the Monday before is UTC+2, the one after UTC+1.
        let before = schedule.next_after(utc("2026-10-17T12:00:00Z")).expect("next");
        assert_eq!(before, utc("2026-10-19T07:00:00Z"));
        let after = schedule.next_after(before).expect("next");
        assert_eq!(after, utc("2026-10-26T08:00:00Z"));
        let local = chrono_tz::Europe::Berlin.from_utc_datetime(&after.naive_utc());
        assert_eq!(local.format("%a %H:%M").to_string(), "Mon 09:00");
    }

    #[test]
    fn a_time_skipped_in_spring_fires_once_later_that_day() {
        // 02:30 does not exist in Berlin on 2026-03-29.
        let schedule = Schedule::parse("30 2 * * *", "Europe/Berlin").expect("valid");
        let next = schedule.next_after(utc("2026-03-28T12:00:00Z")).expect("next");
        assert!(next > utc("2026-03-28T12:00:00Z"));
        assert!(next <= utc("2026-03-30T00:30:00Z"), "{next}");
    }

    #[test]
    fn bad_expressions_and_zones_are_refused() {
        assert!(matches!(
            Schedule::parse("every monday", "UTC"),
            Err(ScheduleError::Cron(_))
        ));
        assert!(matches!(
            Schedule::parse("61 9 * * *", "UTC"),
            Err(ScheduleError::Cron(_))
        ));
        assert!(matches!(
            Schedule::parse("0 9 * * *", "Mars/Olympus"),
            Err(ScheduleError::TimeZone)
        ));
    }
}
