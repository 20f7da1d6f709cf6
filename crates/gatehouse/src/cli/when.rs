//! The times the commands take (`--since`, `--from`, `--to`, `--now`, and the admin API's
//! `since`): one parser, so every flag accepts the same forms. Each flag parses through
//! [`When::parse`] as its clap value parser, so a bad value is reported with the flag the user
//! typed; the moment it means is fixed later by [`Clock::at`], once `--tz` is known.
//!
//! A time with an offset (`2026-01-01T10:00:00Z`, `...+02:00`) is that instant. A date or a
//! date and time without one (`2026-01-01`, `2026-01-01 10:00`) is read in `--tz` (UTC by
//! default): a plain date is its midnight, so `--from 2026-01-01 --to 2026-04-01` is the first
//! quarter. A duration (`15m`, `7d`, `2h30m`) is that long before now; `now`, `today` and
//! `yesterday` mean what they say.

use std::time::{Duration, SystemTime};

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::Timestamp;

use crate::error::CliError;

/// What every time flag says about the forms it takes (clap appends it to a bad value's error).
const FORMS: &str = "give a date (2026-01-01), a date and time (2026-01-01T10:00, read in --tz, \
                     UTC by default), RFC 3339 (2026-01-01T10:00:00Z), a duration ago (15m, 7d) \
                     or now/today/yesterday";

/// A time as typed, before the zone and the present moment give it an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum When {
    /// An instant (RFC 3339 with an offset, or `now`).
    At(Timestamp),
    /// A wall-clock time with no offset, read in the zone of `--tz`.
    Civil(DateTime),
    /// That long before now.
    Ago(Duration),
    /// The midnight that starts today, or that many days before it, in the zone of `--tz`.
    DaysAgo(i64),
    /// The moment the command runs.
    Now,
}

impl When {
    /// Parses one flag's value; the error is what clap shows after the flag's name.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        match text.to_ascii_lowercase().as_str() {
            "now" => return Ok(Self::Now),
            "today" => return Ok(Self::DaysAgo(0)),
            "yesterday" => return Ok(Self::DaysAgo(1)),
            _ => {}
        }
        if let Ok(t) = text.parse::<Timestamp>() {
            return Ok(Self::At(t));
        }
        if let Ok(t) = text.parse::<DateTime>() {
            return Ok(Self::Civil(t));
        }
        if let Ok(d) = text.parse::<Date>() {
            return Ok(Self::Civil(d.to_datetime(jiff::civil::Time::midnight())));
        }
        if let Ok(d) = humantime::parse_duration(text) {
            return Ok(Self::Ago(d));
        }
        Err(FORMS.to_owned())
    }
}

/// Parses a `--tz` value: an IANA zone name (`Europe/Berlin`, from the system's zone
/// database), `UTC`, or a fixed offset (`+02:00`).
pub fn parse_zone(text: &str) -> Result<TimeZone, String> {
    if text.eq_ignore_ascii_case("utc") || text == "Z" {
        return Ok(TimeZone::UTC);
    }
    if let Some(offset) = fixed_offset(text) {
        return Ok(TimeZone::fixed(offset));
    }
    TimeZone::get(text).map_err(|e| {
        format!("{e}; give an IANA zone name such as Europe/Berlin, UTC, or an offset like +02:00")
    })
}

/// `+02:00`, `-0530`, `+02`: a fixed offset from UTC.
fn fixed_offset(text: &str) -> Option<jiff::tz::Offset> {
    let sign = match text.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = text[1..].chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) {
        return None;
    }
    let hours: i32 = digits.get(..2)?.parse().ok()?;
    let minutes: i32 = digits
        .get(2..)
        .filter(|m| !m.is_empty())
        .map_or(Some(0), |m| m.parse().ok())?;
    if hours > 18 || minutes > 59 {
        return None;
    }
    jiff::tz::Offset::from_seconds(sign * (hours * 3600 + minutes * 60)).ok()
}

/// The zone wall-clock times are read in and the moment the command runs.
#[derive(Debug, Clone)]
pub struct Clock {
    zone: TimeZone,
    now: SystemTime,
}

impl Clock {
    /// A clock reading wall-clock times in `zone`, now.
    pub fn new(zone: TimeZone) -> Self {
        Self {
            zone,
            now: SystemTime::now(),
        }
    }

    /// A clock in UTC (the admin API's, and the default).
    pub fn utc() -> Self {
        Self::new(TimeZone::UTC)
    }

    /// The moment the command runs.
    pub fn now(&self) -> SystemTime {
        self.now
    }

    /// The instant `when` names. `flag` only names it in the (rare) error: a time before 1970
    /// or a wall-clock time the zone cannot place.
    pub fn at(&self, flag: &str, when: &When) -> Result<SystemTime, CliError> {
        let out_of_range =
            |e: &dyn std::fmt::Display| CliError::Usage(format!("{flag}: {e}; {FORMS}"));
        let timestamp = match when {
            When::Now => return Ok(self.now),
            When::Ago(d) => {
                return self
                    .now
                    .checked_sub(*d)
                    .ok_or_else(|| out_of_range(&"that is before 1970"))
            }
            When::At(t) => *t,
            When::Civil(t) => t
                .to_zoned(self.zone.clone())
                .map_err(|e| out_of_range(&e))?
                .timestamp(),
            When::DaysAgo(days) => {
                let today = Timestamp::try_from(self.now)
                    .map_err(|e| out_of_range(&e))?
                    .to_zoned(self.zone.clone())
                    .date();
                today
                    .checked_sub(jiff::Span::new().days(*days))
                    .and_then(|d| d.to_zoned(self.zone.clone()))
                    .map_err(|e| out_of_range(&e))?
                    .timestamp()
            }
        };
        if timestamp < Timestamp::UNIX_EPOCH {
            return Err(out_of_range(&"that is before 1970"));
        }
        Ok(SystemTime::from(timestamp))
    }

    /// [`Self::at`] for an optional flag.
    pub fn at_opt(&self, flag: &str, when: Option<&When>) -> Result<Option<SystemTime>, CliError> {
        when.map(|w| self.at(flag, w)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn at(clock: &Clock, text: &str) -> SystemTime {
        let when = When::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        clock
            .at("--t", &when)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn secs(t: SystemTime) -> u64 {
        t.duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    #[test]
    fn a_plain_date_is_its_midnight_in_the_zone() {
        let utc = Clock::utc();
        // 2026-01-01T00:00:00Z
        assert_eq!(secs(at(&utc, "2026-01-01")), 1_767_225_600);
        assert_eq!(secs(at(&utc, "2026-01-01T00:00:00Z")), 1_767_225_600);
        assert_eq!(secs(at(&utc, "2026-01-01 10:30")), 1_767_225_600 + 37_800);
        let plus2 = Clock::new(parse_zone("+02:00").unwrap());
        assert_eq!(secs(at(&plus2, "2026-01-01")), 1_767_225_600 - 7_200);
        // An offset in the text wins over the zone.
        assert_eq!(secs(at(&plus2, "2026-01-01T00:00:00Z")), 1_767_225_600);
    }

    #[test]
    fn durations_and_words_are_relative_to_now() {
        let clock = Clock::utc();
        assert_eq!(at(&clock, "now"), clock.now());
        assert_eq!(
            at(&clock, "15m"),
            clock.now() - Duration::from_secs(15 * 60)
        );
        let today = secs(at(&clock, "today"));
        assert_eq!(today % 86_400, 0);
        assert_eq!(secs(at(&clock, "yesterday")), today - 86_400);
    }

    #[test]
    fn bad_values_say_what_is_accepted() {
        for bad in ["2026-13-01", "soon", "", "2026-01-01T25:00"] {
            let e = When::parse(bad).expect_err(bad);
            assert!(e.contains("2026-01-01"), "{bad}: {e}");
        }
        let e = Clock::utc()
            .at("--from", &When::parse("1969-12-31").unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("--from") && e.contains("1970"), "{e}");
        assert!(parse_zone("Mars/Olympus").is_err());
    }
}
