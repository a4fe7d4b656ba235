//! Time zones: IANA names as the API takes them, and wall-clock times resolved to
//! instants the way every family that keeps local times (booking hours, social slots)
//! must agree on across daylight-saving changes.

use chrono::offset::LocalResult;
use chrono::{DateTime, NaiveDate, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::Value;

/// The instant a wall-clock time of `date` happens in `tz`. A time that happens twice
/// (clocks going back) is its first occurrence; one that never happens (clocks jumping
/// forward) is read with the offset from before the jump, which lands just after it.
pub fn resolve(tz: Tz, date: NaiveDate, minutes: u32) -> Option<DateTime<Utc>> {
    let local = date.and_hms_opt(0, 0, 0)? + TimeDelta::minutes(i64::from(minutes));
    match tz.from_local_datetime(&local) {
        LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => Some(at.with_timezone(&Utc)),
        LocalResult::None => {
            let before = tz.offset_from_utc_datetime(&(local - TimeDelta::days(1))).fix();
            let utc = local - TimeDelta::seconds(i64::from(before.local_minus_utc()));
            Some(Utc.from_utc_datetime(&utc))
        }
    }
}

/// An IANA time zone name, like `Europe/Berlin` or `UTC`.
/// A tz database name, exactly as written (no surrounding spaces: the schema has none).
pub fn parse_zone(text: &str) -> Option<Tz> {
    text.parse::<Tz>().ok()
}

pub fn time_zone_schema() -> Value {
    crate::fields::time_zone_schema()
}

/// The check behind `time_zone` fields: a known IANA name, in its canonical spelling.
pub fn check_time_zone(value: &Value) -> Result<Value, String> {
    let text = value.as_str().ok_or("must be a string")?;
    parse_zone(text)
        .map(|tz| Value::String(tz.name().to_owned()))
        .ok_or_else(|| "must be an IANA time zone name, like Europe/Berlin or UTC".into())
}
