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
        match DateTime::from_timestamp_millis(self.millis) {
            Some(time) => f.write_str(&time.to_rfc3339_opts(SecondsFormat::Millis, true)),
            None => write!(f, "{}ms", self.millis),
        }
    }
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
        serializer.collect_str(self)
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
