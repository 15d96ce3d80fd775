//! Durations written as `500ms`, `2s`, `1m`, `1h` (or combinations like `1m30s`).

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// A duration read from config text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct ConfigDuration(pub Duration);

impl ConfigDuration {
    /// The wrapped duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

/// Why a duration's text was refused; each variant holds the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing was written.
    #[error("empty duration")]
    Empty,
    /// A number without a unit (`5`).
    #[error("duration `{0}` needs a unit (ms, s, m, h)")]
    NoUnit(String),
    /// A unit without a number, or a number that does not parse.
    #[error("bad number in duration `{0}`")]
    BadNumber(String),
    /// A unit other than ns, us, ms, s, m, h.
    #[error("unknown unit `{unit}` in duration `{text}`")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The whole duration.
        text: String,
    },
    /// More than about 31 years.
    #[error("duration `{0}` is too large")]
    TooLarge(String),
}

/// Parses `500ms`, `2s`, `1.5s`, `1m30s`, `1h`; a bare number is an error
/// (units are required so `timeout: 5` cannot be misread).
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| DurationError::NoUnit(text.to_string()))?;
        let number: f64 = rest[..num_len]
            .parse()
            .map_err(|_| DurationError::BadNumber(text.to_string()))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            other => {
                return Err(DurationError::UnknownUnit {
                    unit: other.to_string(),
                    text: text.to_string(),
                });
            }
        };
        rest = &rest[unit_len..];
        let secs = number * scale;
        if !secs.is_finite() || secs > 1e9 {
            return Err(DurationError::TooLarge(text.to_string()));
        }
        total += Duration::from_secs_f64(secs);
    }
    Ok(total)
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ConfigDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 500ms, 2s, 1m")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                parse_duration(v).map(ConfigDuration).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(V)
    }
}

impl serde::Serialize for ConfigDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}ms", self.0.as_millis()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_combinations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("5"), Err(DurationError::NoUnit("5".into())));
        assert_eq!(
            parse_duration("5 parsecs"),
            Err(DurationError::UnknownUnit {
                unit: " parsecs".into(),
                text: "5 parsecs".into()
            })
        );
        assert_eq!(
            parse_duration("ms"),
            Err(DurationError::BadNumber("ms".into()))
        );
        assert_eq!(
            parse_duration("99999999999h"),
            Err(DurationError::TooLarge("99999999999h".into()))
        );
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
    }
}
