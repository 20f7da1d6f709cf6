//! Timestamps as the store keeps them (microseconds since the Unix epoch) and as people read
//! them (RFC 3339, UTC).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch; times before it clamp to zero.
pub fn to_micros(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The inverse of [`to_micros`]; negative values clamp to the epoch.
pub fn from_micros(us: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(u64::try_from(us).unwrap_or(0))
}

/// RFC 3339 in UTC with millisecond precision, for tables people read. A time past what
/// RFC 3339 can write (after year 9999: a client can send one as a parameter) is shown as
/// microseconds since the epoch instead.
pub fn display(t: SystemTime) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(24);
    if write!(out, "{}", humantime::format_rfc3339_millis(t)).is_err() {
        return format!("{}µs after the epoch", to_micros(t));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_past_year_9999_are_shown_not_panicked_on() {
        // Found by the pg_wire fuzz target: a binary timestamp parameter from a client.
        let far = UNIX_EPOCH + Duration::from_secs(300_000_000_000);
        assert!(
            display(far).ends_with("µs after the epoch"),
            "{}",
            display(far)
        );
        assert_eq!(display(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn micros_round_trip() {
        let t = UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        assert_eq!(from_micros(to_micros(t)), t);
    }
}
