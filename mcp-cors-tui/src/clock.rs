//! Time formatting from Unix milliseconds. Rendering takes times from events and a `now`
//! given by the caller, never from the wall clock, so screens are reproducible in tests.

use std::time::SystemTime;

/// The wall clock, in Unix milliseconds: only the run loop and the CLI read it.
pub fn now_ms() -> u64 {
    mcp_cors::protocol::unix_millis(SystemTime::now())
}

/// `(year, month, day)` of a day counted from 1970-01-01 (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Howard Hinnant's days-to-civil algorithm: eras of 400 years of 146 097 days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Both are small and positive by construction.
    (year, month as u32, day as u32)
}

fn split(ms: u64) -> (i64, u64, u64, u64, u64) {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = secs % 86_400;
    (days, rem / 3600, rem % 3600 / 60, rem % 60, ms % 1000)
}

/// `HH:MM:SS` in UTC.
pub fn hms(ms: u64) -> String {
    let (_, h, m, s, _) = split(ms);
    format!("{h:02}:{m:02}:{s:02}")
}

/// RFC 3339 in UTC with milliseconds: `2025-01-02T03:04:05.678Z`.
pub fn iso(ms: u64) -> String {
    let (days, h, m, s, milli) = split(ms);
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

/// How long before `now` `then` was, shortly: `now`, `42s ago`, `5m ago`, `3h ago`, `2d ago`.
pub fn ago(now: u64, then: u64) -> String {
    let secs = now.saturating_sub(then) / 1000;
    match secs {
        0 => "now".to_owned(),
        1..=59 => format!("{secs}s ago"),
        60..=3599 => format!("{}m ago", secs / 60),
        3600..=86_399 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_times() {
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        // 2024-02-29T23:59:58.123Z, a leap day.
        assert_eq!(iso(1_709_251_198_123), "2024-02-29T23:59:58.123Z");
        assert_eq!(hms(1_709_251_198_123), "23:59:58");
    }

    #[test]
    fn relative_times() {
        assert_eq!(ago(10_000, 10_000), "now");
        assert_eq!(ago(10_000, 0), "10s ago");
        assert_eq!(ago(600_000, 0), "10m ago");
        assert_eq!(ago(7_200_000, 0), "2h ago");
        assert_eq!(ago(0, 5_000), "now");
    }
}
