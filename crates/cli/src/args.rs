//! Values the command line takes in more than one command: times (issue 11.10), resources
//! and links (issue 11.11), as clap value parsers so that a bad value is refused before
//! anything is sent.

use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, Utc};

use crate::resource::{Link, ResourceRef};

/// A time as the server takes it (RFC 3339, UTC, milliseconds), from any of: RFC 3339
/// (`2026-01-19T08:00:00Z`, any offset), a date (`2026-01-19`, midnight UTC), `now`, or a
/// time before now (`7d`, `24h`, `30m`, `90s`, `2w`, also written `now-7d`).
pub(crate) fn time(s: &str) -> Result<String, String> {
    time_at(s, Utc::now())
}

fn time_at(s: &str, now: DateTime<Utc>) -> Result<String, String> {
    let fmt = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
    let t = s.trim();
    if t == "now" {
        return Ok(fmt(now));
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(fmt(d.with_timezone(&Utc)));
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(fmt(d
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc()));
    }
    let ago = t.strip_prefix("now-").unwrap_or(t);
    let split = ago.find(|c: char| !c.is_ascii_digit()).unwrap_or(ago.len());
    let (n, unit) = ago.split_at(split);
    let n: i64 = n.parse().map_err(|_| bad(s))?;
    let d = match unit {
        "s" => Duration::try_seconds(n),
        "m" => Duration::try_minutes(n),
        "h" => Duration::try_hours(n),
        "d" => Duration::try_days(n),
        "w" => Duration::try_weeks(n),
        _ => None,
    }
    .ok_or_else(|| bad(s))?;
    now.checked_sub_signed(d).map(fmt).ok_or_else(|| bad(s))
}

fn bad(s: &str) -> String {
    format!(
        "{s:?} is not a time: give RFC 3339 (2026-01-19T08:00:00Z), a date (2026-01-19), \
         now, or a time before now (7d, 24h, 30m, now-2w)"
    )
}

/// `TYPE:ID[@VERSION]`, for clap.
pub(crate) fn resource(s: &str) -> Result<ResourceRef, String> {
    ResourceRef::parse(s).map_err(|e| e.to_string())
}

/// `TYPE:ID[@VERSION][:RELATION]` as a filter (the relation optional), for clap.
pub(crate) fn link_filter(s: &str) -> Result<Link, String> {
    Link::parse(s, false).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_and_dates_are_accepted_wherever_a_time_is() {
        let now = DateTime::parse_from_rfc3339("2026-03-10T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let at = |s: &str| time_at(s, now).unwrap();
        assert_eq!(at("7d"), "2026-03-03T12:00:00.000Z");
        assert_eq!(at("now-24h"), "2026-03-09T12:00:00.000Z");
        assert_eq!(at("90s"), "2026-03-10T11:58:30.000Z");
        assert_eq!(at("2w"), "2026-02-24T12:00:00.000Z");
        assert_eq!(at("now"), "2026-03-10T12:00:00.000Z");
        assert_eq!(at("2026-01-19"), "2026-01-19T00:00:00.000Z");
        assert_eq!(at("2026-01-19T09:00:00+01:00"), "2026-01-19T08:00:00.000Z");
        for bad in ["", "7", "d", "7y", "yesterday", "2026-13-01", "now-"] {
            assert!(time_at(bad, now).is_err(), "{bad:?}");
        }
    }
}
