//! Parsers for the human-written quantities of a service spec: sizes, CPU amounts and durations.
//!
//! They live in `proto` so that the CLI can check a spec before sending it and the controller's
//! `apply` can re-check it deterministically, both with the same rules.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A quantity as the operator wrote it (`"512Mi"`, `"0.5"`, `2`), kept verbatim so that applying the
/// same file twice compares equal. JSON, TOML and YAML may give it as a number or a string; the
/// compact binary encoding always stores the string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Quantity(pub String);

impl Quantity {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Quantity {
    fn from(s: &str) -> Self {
        Quantity(s.to_string())
    }
}

impl std::fmt::Display for Quantity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

struct QuantityVisitor;

impl serde::de::Visitor<'_> for QuantityVisitor {
    type Value = Quantity;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a number or a string such as \"512Mi\" or \"0.5\"")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Quantity, E> {
        Ok(Quantity(v.to_string()))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Quantity, E> {
        Ok(Quantity(v))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Quantity, E> {
        Ok(Quantity(v.to_string()))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Quantity, E> {
        Ok(Quantity(v.to_string()))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Quantity, E> {
        Ok(Quantity(v.to_string()))
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            d.deserialize_any(QuantityVisitor)
        } else {
            d.deserialize_string(QuantityVisitor)
        }
    }
}

/// Parses a byte size the way Docker does (`docker run -m`, Compose files): a plain number of
/// bytes, or a number with a suffix `k`, `m`, `g` or `t` in any case, optionally followed by `b` or
/// `ib` (`64m`, `512MiB`, `1.5G`, `4kb`); every suffix is binary (`1k` = 1024). Kubernetes' `Ki`,
/// `Mi`, `Gi`, `Ti` mean the same. The one size rule of Hoist: specs, flags and the agent.
/// (Format 0 read a spec's single letters as decimal: [`crate::format::v0::parse_size_decimal_letters`].)
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || format!("{text:?} is not a size (like 512k, 64m, 1.5g, 512Mi)");
    let (num, unit) = split_unit(text).ok_or_else(bad)?;
    let unit = unit.to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('i'))
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    let mult: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return Err(bad()),
    };
    scale_decimal(num, mult).ok_or_else(bad)
}

/// `"1.5 GiB"` → `("1.5", "GiB")`; `None` without a number.
fn split_unit(text: &str) -> Option<(&str, &str)> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    (!num.is_empty()).then_some((num, unit.trim()))
}

/// Parses a CPU amount into thousandths of a CPU: `"2"`, `"0.5"`, `"500m"`.
pub fn parse_cpu_millis(text: &str) -> Option<u64> {
    let t = text.trim();
    if let Some(m) = t.strip_suffix('m') {
        if m.is_empty() || !m.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        return m.parse().ok();
    }
    scale_decimal(t, 1000)
}

/// Parses a ratio between 0 and 1 (`0.2`, `"0.25"`, `1`) into thousandths (200, 250, 1000).
pub fn parse_ratio_permille(text: &str) -> Option<u64> {
    scale_decimal(text.trim(), 1000).filter(|&p| p <= 1000)
}

/// Parses a duration into milliseconds: one or more `<number><unit>` parts with units `ms`, `s`,
/// `m`, `h` (`"1m30s"`, `"500ms"`, `"10s"`); a bare `"0"` is zero.
pub fn parse_duration_ms(text: &str) -> Option<u64> {
    let t = text.trim();
    if t == "0" {
        return Some(0);
    }
    if t.is_empty() {
        return None;
    }
    let mut rest = t;
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let (num, after) = rest.split_at(digits);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let mult = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return None,
        };
        total = total.checked_add(scale_decimal(num, mult)?)?;
        rest = next;
    }
    Some(total)
}

/// `num` (digits with at most one dot) times `mult`, rounded down; `None` on bad text or overflow.
fn scale_decimal(num: &str, mult: u64) -> Option<u64> {
    let (int, frac) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let int_v: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let value = int_v.checked_mul(mult)?;
    // The fraction exactly: its digits as an integer, times `mult`, over 10^digits.
    let frac = &frac[..frac.len().min(18)];
    if frac.is_empty() {
        return Some(value);
    }
    let digits: u128 = frac.parse().ok()?;
    let part = digits * u128::from(mult) / 10u128.pow(frac.len() as u32);
    value.checked_add(u64::try_from(part).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        for (text, bytes) in [
            ("512", 512),
            ("512Mi", 512 << 20),
            ("512MiB", 512 << 20),
            ("64m", 64 << 20),
            ("64M", 64 << 20),
            ("64mb", 64 << 20),
            ("1GiB", 1 << 30),
            ("1.5g", 3 << 29),
            ("1.5G", 3 << 29),
            ("2k", 2048),
            ("4kb", 4096),
            ("2Ki", 2048),
            ("7b", 7),
            ("1 t", 1 << 40),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
        for bad in ["12x", "", "Mi", "-1", "99999999999999Ti", "1.2.3k", "kb"] {
            let e = parse_size(bad).unwrap_err();
            assert!(e.contains("is not a size"), "{bad}: {e}");
        }
    }

    #[test]
    fn format_0_read_single_letters_as_decimal() {
        use crate::format::v0::parse_size_decimal_letters as old;
        assert_eq!(old("1.5G"), Some(1_500_000_000));
        assert_eq!(old("2k"), Some(2000));
        assert_eq!(old("64MB"), Some(64_000_000));
        assert_eq!(old("512Mi"), Some(512 << 20));
        assert_eq!(old("512"), Some(512));
        assert_eq!(old("12x"), None);
        // 0.1.0's rounding, kept: 1.5Gi is two bytes short of 3 << 29 there.
        assert_eq!(old("1.5Gi"), Some(1_610_612_734));
        assert_eq!(old("64mib"), Some(64 << 20));
        assert_eq!(old("64i"), None);
    }

    #[test]
    fn cpus() {
        assert_eq!(parse_cpu_millis("0.5"), Some(500));
        assert_eq!(parse_cpu_millis("2"), Some(2000));
        assert_eq!(parse_cpu_millis("250m"), Some(250));
        assert_eq!(parse_cpu_millis("m"), None);
        assert_eq!(parse_cpu_millis("abc"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("10s"), Some(10_000));
        assert_eq!(parse_duration_ms("1m30s"), Some(90_000));
        assert_eq!(parse_duration_ms("250ms"), Some(250));
        assert_eq!(parse_duration_ms("1.5s"), Some(1500));
        assert_eq!(parse_duration_ms("0"), Some(0));
        assert_eq!(parse_duration_ms("10"), None);
        assert_eq!(parse_duration_ms("5d"), None);
        assert_eq!(parse_duration_ms(""), None);
    }

    #[test]
    fn quantity_reads_numbers_and_strings_from_json() {
        let q: Quantity = serde_json::from_str("0.5").unwrap();
        assert_eq!(q.as_str(), "0.5");
        let q: Quantity = serde_json::from_str("\"512Mi\"").unwrap();
        assert_eq!(q.as_str(), "512Mi");
    }

    #[test]
    fn ratios() {
        assert_eq!(parse_ratio_permille("0.2"), Some(200));
        assert_eq!(parse_ratio_permille("1"), Some(1000));
        assert_eq!(parse_ratio_permille("0"), Some(0));
        assert_eq!(parse_ratio_permille("1.5"), None);
        assert_eq!(parse_ratio_permille("-0.1"), None);
        assert_eq!(parse_ratio_permille("half"), None);
    }
}
