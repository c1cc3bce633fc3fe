//! `duration` — the one Go/Helm-style duration grammar of helm-tfops (`250ms`, `90s`, `10m`,
//! `1h30m`): parser, formatter, serde adapter, clap value parser, and [`GoDuration`], a parsed
//! value that keeps the text as written (the post-renderer passes it through unchanged).
//!
//! The grammar is the one of Go's `time.ParseDuration` restricted to non-negative values:
//! one or more `<number><unit>` groups, units `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`,
//! numbers may carry a decimal fraction (`1.5h`). A bare `0` is accepted. Formatting produces
//! the shortest Go-like form (`1h30m`, `90s` → `1m30s`, `250ms`).
//!
//! Flux and tofu-controller CRD fields (`spec.interval`, `spec.timeout`…) accept less: their
//! OpenAPI pattern is `^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`. [`GoDuration::check_flux_field`]
//! tells whether a value may go into such a field.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The input was empty (or only whitespace).
    #[error("empty duration")]
    Empty,
    /// A group had no number before its unit, or the number was malformed.
    #[error("invalid duration {input:?}: expected a number at position {position}")]
    ExpectedNumber { input: String, position: usize },
    /// A number was not followed by a known unit.
    #[error("invalid duration {input:?}: missing or unknown unit at position {position} (use ns, us, ms, s, m or h)")]
    BadUnit { input: String, position: usize },
    /// Negative durations make no sense for timeouts and budgets.
    #[error("invalid duration {input:?}: must not be negative")]
    Negative { input: String },
    /// The value does not fit in 64-bit nanoseconds.
    #[error("invalid duration {input:?}: too large")]
    Overflow { input: String },
}

/// Parse a Go-style duration such as `90s`, `10m`, `1h30m`, `250ms` or `1.5h`.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if s.starts_with('-') {
        return Err(DurationError::Negative {
            input: input.to_string(),
        });
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let bytes = s.as_bytes();
    let mut pos = 0usize;
    let mut total_nanos: u128 = 0;
    while pos < bytes.len() {
        // Number: digits, optional '.', digits.
        let start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        let int_part = &s[start..pos];
        let mut frac_part = "";
        if pos < bytes.len() && bytes[pos] == b'.' {
            pos += 1;
            let fstart = pos;
            while pos < bytes.len() && bytes[pos].is_ascii_digit() {
                pos += 1;
            }
            frac_part = &s[fstart..pos];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(DurationError::ExpectedNumber {
                input: input.to_string(),
                position: start,
            });
        }
        // Unit: everything up to the next digit or '.'.
        let ustart = pos;
        while pos < bytes.len() && !bytes[pos].is_ascii_digit() && bytes[pos] != b'.' {
            pos += 1;
        }
        let unit_nanos: u128 = match &s[ustart..pos] {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            _ => {
                return Err(DurationError::BadUnit {
                    input: input.to_string(),
                    position: ustart,
                })
            }
        };
        let overflow = || DurationError::Overflow {
            input: input.to_string(),
        };
        let int_val: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse::<u128>().map_err(|_| overflow())?
        };
        let mut group = int_val.checked_mul(unit_nanos).ok_or_else(overflow)?;
        if !frac_part.is_empty() {
            // Keep at most 18 fractional digits; beyond that nothing is representable anyway.
            let digits = &frac_part[..frac_part.len().min(18)];
            let frac_val: u128 = digits.parse::<u128>().map_err(|_| overflow())?;
            let scale = 10u128.pow(digits.len() as u32);
            group = group
                .checked_add(frac_val * unit_nanos / scale)
                .ok_or_else(overflow)?;
        }
        total_nanos = total_nanos.checked_add(group).ok_or_else(overflow)?;
        if total_nanos > u64::MAX as u128 {
            return Err(overflow());
        }
    }
    let secs = (total_nanos / 1_000_000_000) as u64;
    let nanos = (total_nanos % 1_000_000_000) as u32;
    Ok(Duration::new(secs, nanos))
}

/// Format a duration the way Go prints it, shortest form: `0s`, `250ms`, `90s` → `1m30s`,
/// `5400s` → `1h30m`, `1h0m5s` → `1h0m5s` (Go keeps the zero minutes between h and s).
pub fn format_duration(d: Duration) -> String {
    let total_nanos = d.as_nanos();
    if total_nanos == 0 {
        return "0s".to_string();
    }
    if total_nanos < 1_000_000_000 {
        // Sub-second: pick the largest unit that gives an integer or a short fraction.
        return if total_nanos.is_multiple_of(1_000_000) {
            format!("{}ms", total_nanos / 1_000_000)
        } else if total_nanos.is_multiple_of(1_000) {
            format!("{}us", total_nanos / 1_000)
        } else {
            format!("{total_nanos}ns")
        };
    }
    let secs = d.as_secs();
    let sub = d.subsec_nanos();
    let h = secs / 3600;
    let m = (secs % 3600) / 60;
    let s = secs % 60;
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if (h > 0 || m > 0) && (m > 0 || s > 0 || sub > 0) {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || sub > 0 {
        if sub > 0 {
            let frac = format!("{sub:09}");
            let frac = frac.trim_end_matches('0');
            out.push_str(&format!("{s}.{frac}s"));
        } else {
            out.push_str(&format!("{s}s"));
        }
    }
    out
}

/// Serde adapter: (de)serialise a `Duration` as a Go-style duration string.
pub mod serde_go {
    use super::{format_duration, parse_duration};
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    /// Serialise as e.g. `"1m30s"`.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    /// Deserialise from e.g. `"90s"`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

/// clap value parser: `#[arg(value_parser = tfops_api::duration::parse_arg)]`.
pub fn parse_arg(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

/// A parsed duration that remembers its original spelling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoDuration {
    text: String,
    value: Duration,
}

impl GoDuration {
    /// Parse `text` (the full grammar); the text is kept as written.
    pub fn parse(text: &str) -> Result<Self, DurationError> {
        Ok(GoDuration {
            value: parse_duration(text)?,
            text: text.to_string(),
        })
    }

    /// A duration spelled the Go way (`1m30s`).
    pub fn from_duration(value: Duration) -> Self {
        GoDuration {
            text: format_duration(value),
            value,
        }
    }

    /// A duration of whole seconds, spelled `<n>s`.
    pub fn from_secs(secs: u64) -> Self {
        GoDuration {
            text: format!("{secs}s"),
            value: Duration::from_secs(secs),
        }
    }

    /// The original text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value.
    pub fn as_duration(&self) -> Duration {
        self.value
    }

    /// Whole seconds (rounded up).
    pub fn as_secs(&self) -> u64 {
        self.value.as_secs() + u64::from(self.value.subsec_nanos() > 0)
    }

    /// Milliseconds (rounded down).
    pub fn as_millis(&self) -> u64 {
        u64::try_from(self.value.as_millis()).unwrap_or(u64::MAX)
    }

    /// `Err` with the reason when the text does not match the pattern of Flux / tofu-controller
    /// CRD duration fields (`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`: no bare `0`, no `ns`/`us`, no
    /// sign, no space, no leading `.`).
    pub fn check_flux_field(&self) -> Result<(), String> {
        let b = self.text.as_bytes();
        let bad = || {
            format!(
                "{:?} is not accepted by Flux/tofu-controller fields: use e.g. 90s, 10m, 1h30m (units ms, s, m, h)",
                self.text
            )
        };
        if b.is_empty() {
            return Err(bad());
        }
        let mut i = 0;
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
            if b[i..].starts_with(b"ms") {
                i += 2;
            } else if i < b.len() && matches!(b[i], b's' | b'm' | b'h') {
                i += 1;
            } else {
                return Err(bad());
            }
        }
        Ok(())
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for GoDuration {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, DurationError> {
        GoDuration::parse(s)
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

    fn p(s: &str) -> Duration {
        parse_duration(s).unwrap()
    }

    #[test]
    fn parses_go_forms() {
        assert_eq!(p("90s"), Duration::from_secs(90));
        assert_eq!(p("10m"), Duration::from_secs(600));
        assert_eq!(p("1h30m"), Duration::from_secs(5400));
        assert_eq!(p("250ms"), Duration::from_millis(250));
        assert_eq!(p("1.5h"), Duration::from_secs(5400));
        assert_eq!(p("0"), Duration::ZERO);
        assert_eq!(p("0s"), Duration::ZERO);
        assert_eq!(p("1h0m5s"), Duration::from_secs(3605));
        assert_eq!(p("2us"), Duration::from_micros(2));
        assert_eq!(p("2µs"), Duration::from_micros(2));
        assert_eq!(p("7ns"), Duration::from_nanos(7));
        assert_eq!(p(" 5m "), Duration::from_secs(300));
        assert_eq!(p(".5s"), Duration::from_millis(500));
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert!(matches!(
            parse_duration("-5s"),
            Err(DurationError::Negative { .. })
        ));
        assert!(matches!(
            parse_duration("10"),
            Err(DurationError::BadUnit { .. })
        ));
        assert!(matches!(
            parse_duration("10x"),
            Err(DurationError::BadUnit { .. })
        ));
        assert!(matches!(
            parse_duration("m"),
            Err(DurationError::ExpectedNumber { .. })
        ));
        assert!(matches!(
            parse_duration("ten minutes"),
            Err(DurationError::ExpectedNumber { .. })
        ));
        assert!(matches!(
            parse_duration("99999999999999999999h"),
            Err(DurationError::Overflow { .. })
        ));
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_secs(600)), "10m");
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(format_duration(Duration::from_secs(3605)), "1h0m5s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_secs(240)), "4m");
    }

    #[test]
    fn go_duration_keeps_its_text() {
        for (t, ms) in [
            ("90s", 90_000),
            ("10m", 600_000),
            ("1h30m", 5_400_000),
            ("1.5h", 5_400_000),
            ("500ms", 500),
            ("1h0m0s", 3_600_000),
            ("0s", 0),
            ("0", 0),
            ("500us", 0),
        ] {
            let d = GoDuration::parse(t).unwrap();
            assert_eq!(d.as_millis(), ms, "{t}");
            assert_eq!(d.as_str(), t);
            assert_eq!(d.to_string(), t);
        }
        assert_eq!(GoDuration::parse("1500ms").unwrap().as_secs(), 2);
        assert_eq!(GoDuration::from_secs(240).as_str(), "240s");
        assert_eq!(
            GoDuration::from_duration(Duration::from_secs(90)).as_str(),
            "1m30s"
        );
        let json = serde_json::to_string(&GoDuration::parse("1h30m").unwrap()).unwrap();
        assert_eq!(json, "\"1h30m\"");
        assert!(serde_json::from_str::<GoDuration>("\"10 minutes\"").is_err());
    }

    #[test]
    fn flux_fields_take_the_crd_pattern_only() {
        for ok in ["90s", "10m", "1h30m", "1.5h", "500ms", "0s"] {
            assert!(
                GoDuration::parse(ok).unwrap().check_flux_field().is_ok(),
                "{ok}"
            );
        }
        for no in ["0", "500us", "7ns", ".5s", " 5m", "+5m", "1.h5m"] {
            if let Ok(d) = GoDuration::parse(no) {
                let e = d.check_flux_field().unwrap_err();
                assert!(e.contains("Flux"), "{no}: {e}");
            }
        }
        assert!(parse_arg("soon").unwrap_err().contains("soon"));
    }

    proptest::proptest! {
        #[test]
        fn format_then_parse_round_trips(nanos in 0u64..(1u64 << 50)) {
            let d = Duration::from_nanos(nanos);
            proptest::prop_assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,12}") {
            let _ = parse_duration(&s);
        }
    }
}
