//! ECS event timestamps: ISO-8601 / RFC 3339 strings with 0 to 3 (or more) fractional digits,
//! held as whole milliseconds since the Unix epoch so phase arithmetic is exact.

use std::fmt;

use chrono::{DateTime, SecondsFormat};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A point in time with millisecond precision (sub-millisecond digits are truncated).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    millis: i64,
}

impl Timestamp {
    pub const fn from_millis(millis: i64) -> Self {
        Self { millis }
    }

    pub const fn millis(self) -> i64 {
        self.millis
    }

    /// Parses `2020-10-08T14:26:44Z`, `2023-05-02T14:19:14.98Z`, `...T14:19:14.980+00:00`.
    pub fn parse(text: &str) -> Result<Self, TimestampError> {
        let parsed = DateTime::parse_from_rfc3339(text).map_err(|err| TimestampError {
            text: text.chars().take(64).collect(),
            reason: err.to_string(),
        })?;
        Ok(Self::from_millis(parsed.timestamp_millis()))
    }

    /// Milliseconds from `self` to `later` (negative when `later` is earlier).
    pub const fn millis_until(self, later: Timestamp) -> i64 {
        later.millis - self.millis
    }
}

/// Canonical form `YYYY-MM-DDTHH:MM:SS.mmmZ`: fixed width, so string order is time order
/// (the DynamoDB index sorts createdAt as a string).
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.canonical() {
            Some(bytes) => f.write_str(std::str::from_utf8(&bytes).map_err(|_| fmt::Error)?),
            None => match DateTime::from_timestamp_millis(self.millis) {
                Some(time) => f.write_str(&time.to_rfc3339_opts(SecondsFormat::Millis, true)),
                None => write!(f, "{}ms", self.millis),
            },
        }
    }
}

impl Timestamp {
    /// The canonical form for years 0000 to 9999, written directly: every record write formats
    /// up to nine timestamps, and chrono's general formatter costs several times more.
    fn canonical(self) -> Option<[u8; 24]> {
        const MILLIS_PER_DAY: i64 = 86_400_000;
        let (days, millis_of_day) = (
            self.millis.div_euclid(MILLIS_PER_DAY),
            self.millis.rem_euclid(MILLIS_PER_DAY),
        );
        let (year, month, day) = civil_from_days(days);
        if !(0..=9999).contains(&year) {
            return None;
        }
        let (seconds, millis) = (millis_of_day / 1000, millis_of_day % 1000);
        let mut out = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, mut value: i64| {
            for position in (at..at + width).rev() {
                out[position] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, month);
        put(8, 2, day);
        put(11, 2, seconds / 3600);
        put(14, 2, seconds / 60 % 60);
        put(17, 2, seconds % 60);
        put(20, 3, millis);
        Some(out)
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid timestamp {text:?}: {reason} (expected ISO-8601 such as 2020-01-23T17:57:34.402Z)")]
pub struct TimestampError {
    text: String,
    reason: String,
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an ISO-8601 timestamp string")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Timestamp, E> {
                Timestamp::parse(text).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.canonical() {
            Some(bytes) => serializer.serialize_str(std::str::from_utf8(&bytes).map_err(serde::ser::Error::custom)?),
            None => serializer.collect_str(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2020-10-08T14:26:44Z = 1602167204 s since the epoch (date -u -d '2020-10-08T14:26:44Z' +%s).
    const BASE_MILLIS: i64 = 1_602_167_204_000;

    #[test]
    fn accepts_zero_to_three_fraction_digits() {
        assert_eq!(Timestamp::parse("2020-10-08T14:26:44Z").unwrap().millis(), BASE_MILLIS);
        assert_eq!(
            Timestamp::parse("2020-10-08T14:26:44.8Z").unwrap().millis(),
            BASE_MILLIS + 800
        );
        assert_eq!(
            Timestamp::parse("2020-10-08T14:26:44.98Z").unwrap().millis(),
            BASE_MILLIS + 980
        );
        assert_eq!(
            Timestamp::parse("2020-10-08T14:26:44.402Z").unwrap().millis(),
            BASE_MILLIS + 402
        );
    }

    #[test]
    fn honours_offsets_and_truncates_below_a_millisecond() {
        assert_eq!(
            Timestamp::parse("2020-10-08T16:26:44+02:00").unwrap().millis(),
            BASE_MILLIS
        );
        assert_eq!(
            Timestamp::parse("2020-10-08T14:26:44.4029999Z").unwrap().millis(),
            BASE_MILLIS + 402
        );
    }

    #[test]
    fn displays_fixed_width_utc_millis() {
        let time = Timestamp::parse("2020-10-08T14:26:44.98Z").unwrap();
        assert_eq!(time.to_string(), "2020-10-08T14:26:44.980Z");
        assert_eq!(
            Timestamp::from_millis(BASE_MILLIS).to_string(),
            "2020-10-08T14:26:44.000Z"
        );
    }

    #[test]
    fn canonical_form_agrees_with_chrono_everywhere() {
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        // Edges (epoch, leap days, century rules, year ends, the last representable millisecond), then random instants.
        let mut samples = vec![
            0,
            -1,
            951_782_400_000,
            4_107_542_400_000,
            1_709_164_800_000,
            253_402_300_799_999,
            -62_167_219_200_000,
        ];
        for _ in 0..20_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            samples.push((rng % 253_402_300_800_000) as i64 - 62_167_219_200_000);
        }
        for millis in samples {
            let expected = DateTime::from_timestamp_millis(millis)
                .unwrap()
                .to_rfc3339_opts(SecondsFormat::Millis, true);
            assert_eq!(Timestamp::from_millis(millis).to_string(), expected, "{millis}");
            assert_eq!(
                serde_json::to_value(Timestamp::from_millis(millis)).unwrap(),
                serde_json::json!(expected)
            );
        }
    }

    #[test]
    fn rejects_other_formats_with_the_offending_text() {
        for bad in [
            "2020-10-08 14:26:44",
            "1602167204",
            "",
            "2020-13-08T14:26:44Z",
            "2020-10-08T14:26:44",
        ] {
            let err = Timestamp::parse(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn deserializes_only_strings() {
        let err = serde_json::from_str::<Timestamp>("1602167204").unwrap_err().to_string();
        assert!(err.contains("expected an ISO-8601 timestamp string"), "{err}");
    }
}
