//! JSON numbers by value: `2.0` and `2e0` are the integer 2, as JSON Schema (and JavaScript, and
//! Python's `json`) take them, while serde refuses a number written with a fraction or an
//! exponent where an integer is expected. The API documents counts as `integer`, so a client that
//! writes `"replicas": 3.0` sent what the document allows; [`integral_floats_as_integers`]
//! rewrites such numbers before the typed decode. Only the number tokens change: keys, their
//! order and repetitions, strings and everything else stay byte for byte, so strict parsing
//! (duplicate keys, unknown fields) sees the body as sent.

use std::borrow::Cow;

/// `body` with every number that has a fraction or an exponent but an integral value that fits
/// an `i64` or a `u64` written as an integer (`3.0` → `3`, `-1e3` → `-1000`). Decided on the
/// digits, not through a float, so that `9007199254740993.0` stays that number. Not JSON stays
/// as it is, for the parser to refuse.
pub fn integral_floats_as_integers(body: &[u8]) -> Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut i = 0;
    let mut in_string = false;
    while i < body.len() {
        let b = body[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        if b != b'-' && !b.is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < body.len() && matches!(body[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
            i += 1;
        }
        let token = &body[start..i];
        if !token.iter().any(|c| matches!(c, b'.' | b'e' | b'E')) {
            continue;
        }
        let Some(integer) = as_integer(token) else {
            continue;
        };
        let out = out.get_or_insert_with(|| Vec::with_capacity(body.len()));
        out.extend_from_slice(&body[copied..start]);
        out.extend_from_slice(integer.as_bytes());
        copied = i;
    }
    match out {
        None => Cow::Borrowed(body),
        Some(mut out) => {
            out.extend_from_slice(&body[copied..]);
            Cow::Owned(out)
        }
    }
}

/// The integer a number token (`-12.50e1`) spells, if it is one that fits 64 bits.
fn as_integer(token: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(token).ok()?;
    let (negative, text) = match text.strip_prefix('-') {
        Some(t) => (true, t),
        None => (false, text),
    };
    let (mantissa, exp) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits_ok = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !digits_ok(int) || !digits_ok(frac) || !(-40..=40).contains(&exp) {
        return None;
    }
    let frac = frac.trim_end_matches('0');
    let mut digits = String::from(int);
    if exp >= 0 {
        let exp = exp as usize;
        if frac.len() > exp {
            return None;
        }
        digits.push_str(frac);
        digits.extend(std::iter::repeat_n('0', exp - frac.len()));
    } else {
        let cut = (-exp) as usize;
        if !frac.is_empty() {
            return None;
        }
        let keep = digits.len().saturating_sub(cut);
        if !digits[keep..].bytes().all(|b| b == b'0') {
            return None;
        }
        digits.truncate(keep);
    }
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Some("0".into());
    }
    let text = if negative {
        format!("-{digits}")
    } else {
        digits.to_string()
    };
    (text.parse::<i64>().is_ok() || text.parse::<u64>().is_ok()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::integral_floats_as_integers as norm;

    fn s(b: &[u8]) -> String {
        String::from_utf8(norm(b).into_owned()).unwrap()
    }

    #[test]
    fn integral_numbers_become_integers_and_nothing_else_changes() {
        assert_eq!(
            s(br#"{"replicas": 3.0, "id": 2e3, "n": -1.0E0, "z": -0.0, "e": 9007199254740993.0, "c": 1500e-2, "d": 12.50e1}"#),
            r#"{"replicas": 3, "id": 2000, "n": -1, "z": 0, "e": 9007199254740993, "c": 15, "d": 125}"#
        );
        for same in [
            &br#"{"ratio": 0.25, "big": 1e300, "odd": 9007199254740991.4, "far": 1e20}"#[..],
            br#"{"s": "3.0 \"4.0\" \\", "a": [1, 2], "k": 3, "k": 4}"#,
            b"{not json 5.0",
        ] {
            let out = norm(same);
            if same.starts_with(b"{not") {
                assert_eq!(&*out, b"{not json 5");
            } else {
                assert_eq!(&*out, same, "{}", String::from_utf8_lossy(same));
            }
        }
        assert!(matches!(
            norm(br#"{"a": 1}"#),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn the_rewrite_is_what_serde_reads_as_the_same_value() {
        let body = br#"{"a": 5609.0, "b": [1.5, 2.0e1]}"#;
        let v: serde_json::Value = serde_json::from_slice(&norm(body)).unwrap();
        assert_eq!(v, serde_json::json!({"a": 5609, "b": [1.5, 20]}));
        let n: u64 = serde_json::from_slice(&norm(b"44323595.0")).unwrap();
        assert_eq!(n, 44_323_595);
    }
}
