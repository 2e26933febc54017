//! Timestamps: how they are shown, stored and read from requests.

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;
use std::sync::Arc;

/// Where the time comes from: the system's clock when deployed, a controllable one in tests
/// and the benchmark. Every use case reads the time from one of these, never from `Utc::now`.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The system's clock.
pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

/// How a time is shown in the API: UTC, milliseconds, e.g. `2026-11-21T15:06:19.123Z`.
pub fn format_api_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// How a time is written in sort keys: fixed width, so text order is time order.
pub fn sortable_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Reads an ISO 8601 time from a request. A time without a zone or offset is in `zone`
/// (the API user's time zone); a bare date means its midnight there.
pub fn parse_api_time(text: &str, zone: Tz) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    // ISO 8601 also allows an offset without a colon (+0100) and a space for the `T`.
    for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z"] {
        if let Ok(time) = DateTime::parse_from_str(text, format) {
            return Ok(time.with_timezone(&Utc));
        }
    }
    let local = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .or_else(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().and_then(|date| date.and_hms_opt(0, 0, 0)))
        .ok_or_else(|| format!("{text:?} is not an ISO 8601 time"))?;
    match zone.from_local_datetime(&local) {
        LocalResult::Single(time) => Ok(time.with_timezone(&Utc)),
        // A time that occurs twice (clocks going back) is read as its first occurrence.
        LocalResult::Ambiguous(first, _) => Ok(first.with_timezone(&Utc)),
        LocalResult::None => Err(format!("{text:?} does not exist in time zone {zone} (clocks skip it)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).unwrap()
    }

    #[test]
    fn times_with_a_zone_keep_it() {
        let paris = Tz::Europe__Paris;
        assert_eq!(parse_api_time("2026-01-05T10:00:00Z", paris), Ok(utc("2026-01-05T10:00:00Z")));
        assert_eq!(parse_api_time("2026-01-05T10:00:00-05:00", paris), Ok(utc("2026-01-05T15:00:00Z")));
        assert_eq!(parse_api_time("2026-01-05T10:00:00+0100", paris), Ok(utc("2026-01-05T09:00:00Z")));
    }

    #[test]
    fn times_without_a_zone_are_in_the_users_zone() {
        let new_york = Tz::America__New_York;
        assert_eq!(parse_api_time("2026-01-05T10:00:00", new_york), Ok(utc("2026-01-05T15:00:00Z")));
        assert_eq!(parse_api_time("2026-07-05 10:00:00", new_york), Ok(utc("2026-07-05T14:00:00Z")));
        assert_eq!(parse_api_time("2026-01-05", new_york), Ok(utc("2026-01-05T05:00:00Z")));
        assert_eq!(parse_api_time("2026-01-05T10:00:00", Tz::UTC), Ok(utc("2026-01-05T10:00:00Z")));
    }

    #[test]
    fn nonsense_and_skipped_times_are_refused() {
        assert!(parse_api_time("yesterday", Tz::UTC).is_err());
        assert!(parse_api_time("2026-13-01", Tz::UTC).is_err());
        assert!(parse_api_time("2026-03-08T02:30:00", Tz::America__New_York).is_err());
    }

    #[test]
    fn sortable_times_sort_as_text() {
        let early = sortable_time(utc("2026-01-05T09:59:59.999999Z"));
        let late = sortable_time(utc("2026-01-05T10:00:00Z"));
        assert!(early < late);
        assert_eq!(late, "2026-01-05T10:00:00.000000Z");
    }
}
