//! Go/Helm-style durations (`90s`, `10m`, `1h30m`, `1.5h`, `500ms`) as accepted by Flux and
//! tofu-controller (`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`). The text is kept as written.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A validated duration that remembers its original spelling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoDuration {
    text: String,
    millis: u64,
}

impl GoDuration {
    /// Parse `text`; `Err` explains what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || {
            format!("invalid duration {text:?}: expected e.g. 90s, 10m, 1h30m (units ms, s, m, h)")
        };
        let b = text.as_bytes();
        if b.is_empty() {
            return Err(bad());
        }
        let mut i = 0;
        let mut total: f64 = 0.0;
        while i < b.len() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i == start {
                return Err(bad());
            }
            if i < b.len() && b[i] == b'.' {
                i += 1;
                let frac = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                if i == frac {
                    return Err(bad());
                }
            }
            let number: f64 = text[start..i].parse().map_err(|_| bad())?;
            let unit_ms = if b[i..].starts_with(b"ms") {
                i += 2;
                1.0
            } else if i < b.len() && b[i] == b's' {
                i += 1;
                1000.0
            } else if i < b.len() && b[i] == b'm' {
                i += 1;
                60_000.0
            } else if i < b.len() && b[i] == b'h' {
                i += 1;
                3_600_000.0
            } else {
                return Err(bad());
            };
            total += number * unit_ms;
        }
        if !total.is_finite() || total > u64::MAX as f64 / 2.0 {
            return Err(bad());
        }
        Ok(GoDuration {
            text: text.to_string(),
            millis: total.round() as u64,
        })
    }

    /// A duration of whole seconds, spelled `<n>s`.
    pub fn from_secs(secs: u64) -> Self {
        GoDuration {
            text: format!("{secs}s"),
            millis: secs.saturating_mul(1000),
        }
    }

    /// The original text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whole seconds (rounded up).
    pub fn as_secs(&self) -> u64 {
        self.millis.div_ceil(1000)
    }

    /// Milliseconds.
    pub fn as_millis(&self) -> u64 {
        self.millis
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for GoDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        GoDuration::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_go_durations() {
        for (t, ms) in [
            ("90s", 90_000),
            ("10m", 600_000),
            ("1h30m", 5_400_000),
            ("1.5h", 5_400_000),
            ("500ms", 500),
            ("1h0m0s", 3_600_000),
            ("0s", 0),
        ] {
            let d = GoDuration::parse(t).unwrap();
            assert_eq!(d.as_millis(), ms, "{t}");
            assert_eq!(d.as_str(), t);
        }
        assert_eq!(GoDuration::parse("1500ms").unwrap().as_secs(), 2);
    }

    #[test]
    fn rejects_garbage() {
        for t in [
            "", "10", "m", "10x", "1.h", "-5s", "10 m", " 10m", "1d", "10mm",
        ] {
            assert!(GoDuration::parse(t).is_err(), "{t:?} accepted");
        }
    }
}
