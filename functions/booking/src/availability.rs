//! Weekly availability: wall-clock windows per weekday in the appointment type's IANA time
//! zone. Every window is resolved to UTC instants on the day it applies, so a 09:00 start
//! stays 09:00 local across daylight-saving changes.

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value, json};

/// Week days as the availability object names them, Monday first.
pub const DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];
/// Windows per day at most.
const MAX_WINDOWS_PER_DAY: usize = 12;
/// Window edges fall on these minute marks, so offered starts line up with slot claims.
pub const GRANULARITY_MINUTES: u32 = 5;
const MINUTES_PER_DAY: u32 = 24 * 60;

/// One window of a day, in minutes after local midnight (`end` may be 1440, "24:00").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: u32,
    pub end: u32,
}

/// A week of windows; index 0 is Monday.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Weekly {
    days: [Vec<Window>; 7],
}

/// Monday to Friday, 09:00–17:00: what an appointment type offers unless it says otherwise.
pub fn default_availability() -> Value {
    let hours = json!([{"start": "09:00", "end": "17:00"}]);
    json!({
        "monday": hours, "tuesday": hours, "wednesday": hours, "thursday": hours, "friday": hours
    })
}

pub fn availability_schema() -> Value {
    let window = json!({
        "title": "AvailabilityWindow",
        "type": "object",
        "properties": {
            "start": {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][05]$", "examples": ["09:00"]},
            "end": {"type": "string", "pattern": "^(([01][0-9]|2[0-3]):[0-5][05]|24:00)$", "examples": ["17:00"]}
        },
        "required": ["start", "end"],
        "additionalProperties": false
    });
    let day = json!({"type": "array", "items": window, "maxItems": MAX_WINDOWS_PER_DAY});
    let properties: Map<String, Value> = DAYS.iter().map(|d| ((*d).to_owned(), day.clone())).collect();
    json!({
        "type": "object",
        "properties": properties,
        "additionalProperties": false,
        "description": "Bookable hours per weekday, local to `time_zone`: `{\"monday\": [{\"start\": \"09:00\", \"end\": \"17:00\"}], …}`. \
                        Days left out are not bookable; times are on 5-minute marks."
    })
}

/// The check behind the `availability` field: a valid week, normalized (days in order,
/// windows sorted).
pub fn check_availability(value: &Value) -> Result<Value, String> {
    Weekly::parse(value).map(|week| week.to_json())
}

impl Weekly {
    pub fn parse(value: &Value) -> Result<Weekly, String> {
        let object = value
            .as_object()
            .ok_or("must be an object of weekdays, like {\"monday\": [{\"start\": \"09:00\", \"end\": \"17:00\"}]}")?;
        let mut week = Weekly::default();
        for (name, windows) in object {
            let index = DAYS
                .iter()
                .position(|day| day == name)
                .ok_or_else(|| format!("`{name}` is not a weekday; use {}", DAYS.join(", ")))?;
            let list = windows
                .as_array()
                .ok_or_else(|| format!("{name}: must be a list of {{\"start\", \"end\"}} windows"))?;
            if list.len() > MAX_WINDOWS_PER_DAY {
                return Err(format!("{name}: at most {MAX_WINDOWS_PER_DAY} windows a day"));
            }
            let mut parsed = Vec::with_capacity(list.len());
            for window in list {
                let pair = window.as_object().filter(|w| w.len() == 2);
                let edge = |key: &str| pair.and_then(|w| w.get(key)).and_then(Value::as_str);
                let (Some(start), Some(end)) = (edge("start"), edge("end")) else {
                    return Err(format!(
                        "{name}: each window is {{\"start\": \"HH:MM\", \"end\": \"HH:MM\"}}"
                    ));
                };
                let start = parse_clock(start, false).ok_or_else(|| clock_error(name, start))?;
                let end = parse_clock(end, true).ok_or_else(|| clock_error(name, end))?;
                if end <= start {
                    return Err(format!("{name}: a window must end after it starts"));
                }
                parsed.push(Window { start, end });
            }
            parsed.sort_by_key(|w| w.start);
            if parsed.windows(2).any(|pair| pair[1].start < pair[0].end) {
                return Err(format!("{name}: windows must not overlap"));
            }
            week.days[index] = parsed;
        }
        Ok(week)
    }

    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        for (index, windows) in self.days.iter().enumerate() {
            if !windows.is_empty() {
                let list: Vec<Value> = windows
                    .iter()
                    .map(|w| json!({"start": format_clock(w.start), "end": format_clock(w.end)}))
                    .collect();
                object.insert(DAYS[index].into(), Value::Array(list));
            }
        }
        Value::Object(object)
    }

    /// The windows of one local date, as UTC instants.
    pub fn windows_on(&self, tz: Tz, date: NaiveDate) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let day = date.weekday().num_days_from_monday() as usize;
        self.days[day]
            .iter()
            .filter_map(|w| Some((resolve(tz, date, w.start)?, resolve(tz, date, w.end)?)))
            .filter(|(start, end)| start < end)
            .collect()
    }

    /// Whether `[start, end)` lies inside one window.
    pub fn contains(&self, tz: Tz, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        let date = start.with_timezone(&tz).date_naive();
        [date.pred_opt(), Some(date)]
            .into_iter()
            .flatten()
            .flat_map(|d| self.windows_on(tz, d))
            .any(|(from, until)| from <= start && end <= until)
    }

    /// Starts every `step` from each window's opening, for appointments of `duration`
    /// that fit before it closes, within `[from, to)`, in order.
    pub fn starts_between(
        &self,
        tz: Tz,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        duration: TimeDelta,
        step: TimeDelta,
    ) -> Vec<DateTime<Utc>> {
        let mut starts = Vec::new();
        if step <= TimeDelta::zero() {
            return starts;
        }
        let first = from
            .with_timezone(&tz)
            .date_naive()
            .pred_opt()
            .unwrap_or(NaiveDate::MIN);
        let last = to.with_timezone(&tz).date_naive();
        for date in first.iter_days().take_while(|d| *d <= last) {
            for (open, close) in self.windows_on(tz, date) {
                let mut at = open;
                while at + duration <= close && at < to {
                    if at >= from {
                        starts.push(at);
                    }
                    at += step;
                }
            }
        }
        starts.sort_unstable();
        starts.dedup();
        starts
    }

    /// "monday 09:00–17:00, …" for error messages.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .days
            .iter()
            .enumerate()
            .filter(|(_, windows)| !windows.is_empty())
            .map(|(index, windows)| {
                let hours: Vec<String> = windows
                    .iter()
                    .map(|w| format!("{}–{}", format_clock(w.start), format_clock(w.end)))
                    .collect();
                format!("{} {}", DAYS[index], hours.join(", "))
            })
            .collect();
        if parts.is_empty() {
            "no hours at all".into()
        } else {
            parts.join("; ")
        }
    }
}

fn clock_error(day: &str, text: &str) -> String {
    format!("{day}: `{text}` must be a time like 09:00 or 17:30, on a 5-minute mark (24:00 allowed as an end)")
}

fn parse_clock(text: &str, is_end: bool) -> Option<u32> {
    let (hours, minutes) = text.split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let (hours, minutes): (u32, u32) = (hours.parse().ok()?, minutes.parse().ok()?);
    let total = hours * 60 + minutes;
    let valid = minutes < 60
        && minutes % GRANULARITY_MINUTES == 0
        && (total < MINUTES_PER_DAY || (is_end && total == MINUTES_PER_DAY));
    valid.then_some(total)
}

fn format_clock(minutes: u32) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

pub use space_http::zones::{check_time_zone, parse_zone, resolve, time_zone_schema};

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_default_week_is_weekdays_nine_to_five() {
        let week = Weekly::parse(&default_availability()).unwrap();
        let utc = Tz::UTC;
        // 2099-03-02 is a Monday.
        assert!(week.contains(utc, at("2099-03-02T09:00:00Z"), at("2099-03-02T09:30:00Z")));
        assert!(week.contains(utc, at("2099-03-02T16:30:00Z"), at("2099-03-02T17:00:00Z")));
        assert!(!week.contains(utc, at("2099-03-02T16:45:00Z"), at("2099-03-02T17:15:00Z")));
        assert!(!week.contains(utc, at("2099-03-02T08:55:00Z"), at("2099-03-02T09:25:00Z")));
        assert!(
            !week.contains(utc, at("2099-03-07T10:00:00Z"), at("2099-03-07T10:30:00Z")),
            "a Saturday"
        );
    }

    #[test]
    fn local_hours_follow_daylight_saving() {
        let week = Weekly::parse(&json!({"monday": [{"start": "09:00", "end": "10:00"}]})).unwrap();
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // Winter: UTC+1; summer: UTC+2.
        assert!(week.contains(berlin, at("2026-03-23T08:00:00Z"), at("2026-03-23T08:30:00Z")));
        assert!(week.contains(berlin, at("2026-03-30T07:00:00Z"), at("2026-03-30T07:30:00Z")));
        assert!(!week.contains(berlin, at("2026-03-30T08:30:00Z"), at("2026-03-30T09:00:00Z")));
        let starts = week.starts_between(
            berlin,
            at("2026-03-22T00:00:00Z"),
            at("2026-04-01T00:00:00Z"),
            TimeDelta::minutes(30),
            TimeDelta::minutes(30),
        );
        assert_eq!(
            starts,
            vec![
                at("2026-03-23T08:00:00Z"),
                at("2026-03-23T08:30:00Z"),
                at("2026-03-30T07:00:00Z"),
                at("2026-03-30T07:30:00Z")
            ]
        );
    }

    #[test]
    fn a_window_in_the_spring_gap_opens_after_the_jump() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let sunday = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
        // 02:30 does not exist that night; it reads as 03:30 CEST = 01:30 UTC.
        assert_eq!(resolve(berlin, sunday, 150), Some(at("2026-03-29T01:30:00Z")));
        // 02:30 on the autumn night happens twice; the first is 00:30 UTC.
        let october = NaiveDate::from_ymd_opt(2026, 10, 25).unwrap();
        assert_eq!(resolve(berlin, october, 150), Some(at("2026-10-25T00:30:00Z")));
    }

    #[test]
    fn bad_weeks_are_refused_with_a_reason() {
        for (value, needle) in [
            (json!({"funday": []}), "not a weekday"),
            (json!({"monday": [{"start": "9:00", "end": "17:00"}]}), "time like"),
            (json!({"monday": [{"start": "09:03", "end": "17:00"}]}), "5-minute"),
            (json!({"monday": [{"start": "17:00", "end": "09:00"}]}), "end after"),
            (
                json!({"monday": [{"start": "09:00", "end": "12:00"}, {"start": "11:00", "end": "13:00"}]}),
                "overlap",
            ),
            (json!([1]), "object"),
        ] {
            let error = Weekly::parse(&value).unwrap_err();
            assert!(error.contains(needle), "{value}: {error}");
        }
        let late = Weekly::parse(&json!({"sunday": [{"start": "20:00", "end": "24:00"}]})).unwrap();
        assert_eq!(late.to_json(), json!({"sunday": [{"start": "20:00", "end": "24:00"}]}));
    }

    #[test]
    fn zones_are_checked_and_canonical() {
        assert_eq!(
            check_time_zone(&json!("Europe/Berlin")).unwrap(),
            json!("Europe/Berlin")
        );
        assert!(check_time_zone(&json!("Mars/Olympus")).is_err());
        assert!(check_time_zone(&json!(3)).is_err());
    }
}
