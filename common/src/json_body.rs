//! JSON request bodies, read strictly and the same way by every Hoist API (the controller's and
//! the agent's): one parser, so that a body one API refuses is never taken by the other.
//!
//! - The media type must be `application/json`, with at most a `charset=utf-8` parameter. A body
//!   sent as a form, as `text/plain`, in UTF-16, or with no type at all is refused (415), rather
//!   than guessed at: a client that mislabels its body is told so. An empty body with no type is
//!   the one exception (a `POST` without a body, as `curl -X POST` sends it): it reads as `{}`
//!   (whitespace alone is not an empty body: it is not a JSON document).
//! - A key given twice in any object is refused (400), naming the object and the key. serde
//!   refuses a repeated struct field but keeps the last of a repeated map key, so without this an
//!   `env` map would silently lose a value while a repeated `name` was refused.
//! - Anything after the value but whitespace is refused.
//! - Errors name the offending field's path (`resources.memory`), as `serde_path_to_error` finds it.
//! - A number with an integral value (`3.0`, `3e0`) reads as an integer, as JSON Schema's `integer`
//!   (which the OpenAPI documents use) takes it: [`crate::json_numbers`].
//!
//! Pure: the callers read the body and map [`BodyError`] to their own error answers.

use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::HashSet;
use std::fmt;

/// The one media type request bodies are read as.
pub const MEDIA_TYPE: &str = "application/json";

/// Why a body was not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// Not sent as JSON (HTTP 415); the message says what was sent.
    UnsupportedMediaType(String),
    /// Not a valid value of the expected type (HTTP 400). `path` is the field's, `None` for the
    /// body as a whole (bad syntax, a duplicate key at the top level).
    Invalid {
        path: Option<String>,
        message: String,
    },
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::UnsupportedMediaType(m) => f.write_str(m),
            BodyError::Invalid {
                path: Some(p),
                message,
            } => write!(f, "{p}: {message}"),
            BodyError::Invalid {
                path: None,
                message,
            } => f.write_str(message),
        }
    }
}

impl std::error::Error for BodyError {}

/// Checks a request's `Content-Type` (the header's raw value, `None` when absent) for a body of
/// `body_len` bytes; `what` names the body in the message.
pub fn check_content_type(
    value: Option<&[u8]>,
    body_is_empty: bool,
    what: &str,
) -> Result<(), BodyError> {
    let refuse = |sent: String| {
        Err(BodyError::UnsupportedMediaType(format!(
            "{what}: content-type must be {MEDIA_TYPE} (optionally with charset=utf-8), {sent}"
        )))
    };
    let Some(value) = value else {
        return if body_is_empty {
            Ok(())
        } else {
            refuse("and none was given".into())
        };
    };
    let text = String::from_utf8_lossy(value);
    if is_json_media_type(&text) {
        Ok(())
    } else {
        refuse(format!("not {text:?}"))
    }
}

/// Whether a `Content-Type` value is `application/json`, alone or with `charset=utf-8`
/// (case-insensitive, the charset possibly quoted, as RFC 9110 allows).
pub fn is_json_media_type(value: &str) -> bool {
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case(MEDIA_TYPE) {
        return false;
    }
    let mut charset_seen = false;
    for param in parts {
        let param = param.trim();
        if param.is_empty() {
            continue;
        }
        let Some((name, v)) = param.split_once('=') else {
            return false;
        };
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v);
        if !name.trim().eq_ignore_ascii_case("charset")
            || !v.eq_ignore_ascii_case("utf-8")
            || charset_seen
        {
            return false;
        }
        charset_seen = true;
    }
    true
}

/// Decodes a request body of a type `T`: checks the content type, refuses duplicate keys and
/// trailing data, and names the field of any error. An empty body reads as `{}`, so a body
/// whose fields all have defaults may be left out.
pub fn decode<T: DeserializeOwned>(
    content_type: Option<&[u8]>,
    body: &[u8],
    what: &str,
) -> Result<T, BodyError> {
    check_content_type(content_type, body.is_empty(), what)?;
    from_slice(if body.is_empty() { b"{}" } else { body }, what)
}

/// Decodes JSON strictly (duplicate keys and trailing data refused, errors with the field's
/// path), without a content type to check: the agent's build request line, files.
pub fn from_slice<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, BodyError> {
    // First the duplicates: a repeated map key would otherwise be decoded without a word.
    // A syntax error found here is left to the typed pass, whose message names the field.
    let de = &mut serde_json::Deserializer::from_slice(body);
    if let Err(e) = serde_path_to_error::deserialize::<_, Unique>(&mut *de) {
        if e.inner().is_data() {
            return Err(invalid(e, what));
        }
    }
    let body = crate::json_numbers::integral_floats_as_integers(body);
    let de = &mut serde_json::Deserializer::from_slice(&body);
    let value: T = serde_path_to_error::deserialize(&mut *de).map_err(|e| invalid(e, what))?;
    de.end().map_err(|e| BodyError::Invalid {
        path: None,
        message: format!("{what}: {}", strip_position(&e.to_string())),
    })?;
    Ok(value)
}

fn invalid(e: serde_path_to_error::Error<serde_json::Error>, what: &str) -> BodyError {
    let path = e.path().to_string();
    let message = strip_position(&e.into_inner().to_string());
    if path.is_empty() || path == "." || path == "?" {
        BodyError::Invalid {
            path: None,
            message: format!("{what}: {message}"),
        }
    } else {
        BodyError::Invalid {
            path: Some(path),
            message,
        }
    }
}

/// serde_json appends " at line L column C"; the path already says where.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Any JSON value whose objects have no key twice; reading it is the duplicate check.
struct Unique;

impl<'de> de::Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueVisitor)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Unique;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_str<E>(self, _: &str) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_unit<E>(self) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Unique, A::Error> {
        while seq.next_element::<Unique>()?.is_some() {}
        Ok(Unique)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Unique, A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if seen.contains(&key) {
                return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
            }
            map.next_value::<Unique>()?;
            seen.insert(key);
        }
        Ok(Unique)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Spec {
        name: String,
        #[serde(default)]
        env: BTreeMap<String, String>,
        #[serde(default)]
        inner: Option<Inner>,
        #[serde(default)]
        list: Vec<Inner>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Inner {
        #[serde(default)]
        a: u32,
    }

    fn json(ct: &str, body: &str) -> Result<Spec, BodyError> {
        decode(Some(ct.as_bytes()), body.as_bytes(), "spec")
    }

    fn invalid_at(e: BodyError) -> (Option<String>, String) {
        match e {
            BodyError::Invalid { path, message } => (path, message),
            other => panic!("not invalid: {other:?}"),
        }
    }

    #[test]
    fn media_types() {
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=UTF-8",
            "application/json; charset=\"utf-8\"",
            "application/json ; charset=utf-8 ;",
        ] {
            assert!(is_json_media_type(ok), "{ok}");
        }
        for bad in [
            "",
            "application/x-www-form-urlencoded",
            "application/json; charset=utf-16",
            "application/jsonx",
            "application/merge-patch+json",
            "text/json",
            "text/plain",
            "application/json; charset=utf-8; charset=utf-8",
            "application/json; boundary=x",
            "application/json; charset",
            "application/json, text/plain",
        ] {
            assert!(!is_json_media_type(bad), "{bad}");
        }
    }

    #[test]
    fn content_type_is_required_for_a_body() {
        let e = decode::<Spec>(None, br#"{"name":"a"}"#, "spec").unwrap_err();
        assert_eq!(
            e,
            BodyError::UnsupportedMediaType(
                "spec: content-type must be application/json (optionally with \
                 charset=utf-8), and none was given"
                    .into()
            )
        );
        let e = json("application/x-www-form-urlencoded", r#"{"name":"a"}"#).unwrap_err();
        assert!(
            matches!(&e, BodyError::UnsupportedMediaType(m) if m.contains("not \"application/x-www-form-urlencoded\"")),
            "{e:?}"
        );
        let e = json("application/json; charset=utf-16", r#"{"name":"a"}"#).unwrap_err();
        assert!(matches!(e, BodyError::UnsupportedMediaType(_)), "{e:?}");
        // A declared foreign type is refused even without a body; no type and no body is `{}`.
        assert!(matches!(
            decode::<BTreeMap<String, u32>>(Some(b"text/plain"), b"", "x"),
            Err(BodyError::UnsupportedMediaType(_))
        ));
        assert_eq!(
            decode::<BTreeMap<String, u32>>(None, b"", "x").unwrap(),
            BTreeMap::new()
        );
        assert!(matches!(
            decode::<BTreeMap<String, u32>>(None, b" \n", "x"),
            Err(BodyError::UnsupportedMediaType(_))
        ));
        assert!(matches!(
            decode::<BTreeMap<String, u32>>(Some(b"application/json"), b" \n", "x"),
            Err(BodyError::Invalid { path: None, .. })
        ));
        // An integral number reads as an integer; a fraction does not.
        let m: BTreeMap<String, u32> =
            decode(Some(b"application/json"), br#"{"a": 3.0, "b": 2e1}"#, "x").unwrap();
        assert_eq!((m["a"], m["b"]), (3, 20));
        assert!(
            decode::<BTreeMap<String, u32>>(Some(b"application/json"), br#"{"a": 3.5}"#, "x")
                .is_err()
        );
        assert_eq!(
            json("application/json; charset=utf-8", r#"{"name":"a"}"#)
                .unwrap()
                .name,
            "a"
        );
    }

    #[test]
    fn duplicate_keys_are_refused_everywhere() {
        // A struct field, a map key, nested in an object and in a list; escapes are decoded
        // before keys are compared.
        let (path, msg) =
            invalid_at(json("application/json", r#"{"name":"a","name":"b"}"#).unwrap_err());
        assert_eq!((path, msg.as_str()), (None, "spec: duplicate key \"name\""));
        let (path, msg) = invalid_at(
            json(
                "application/json",
                r#"{"name":"a","env":{"A":"1","B":"2","A":"3"}}"#,
            )
            .unwrap_err(),
        );
        assert_eq!(
            (path.as_deref(), msg.as_str()),
            (Some("env"), "duplicate key \"A\"")
        );
        let (path, _) = invalid_at(
            json(
                "application/json",
                r#"{"name":"a","inner":{"a":1,"\u0061":2}}"#,
            )
            .unwrap_err(),
        );
        assert_eq!(path.as_deref(), Some("inner"));
        let (path, _) = invalid_at(
            json(
                "application/json",
                r#"{"name":"a","list":[{"a":1},{"a":1,"a":2}]}"#,
            )
            .unwrap_err(),
        );
        assert_eq!(path.as_deref(), Some("list[1]"));
        // Duplicates inside a value the type ignores, or a field it refuses, are found too.
        let e = decode::<serde_json::Value>(
            Some(b"application/json"),
            br#"[1, {"x": {"y": 1, "y": 1}}]"#,
            "v",
        )
        .unwrap_err();
        assert_eq!(invalid_at(e).0.as_deref(), Some("[1].x"));
        // Same keys in different objects are fine.
        let ok = json(
            "application/json",
            r#"{"name":"a","inner":{"a":1},"list":[{"a":1},{"a":2}],"env":{"a":"x"}}"#,
        )
        .unwrap();
        assert_eq!(ok.list.len(), 2);
    }

    #[test]
    fn errors_name_the_field_and_trailing_data_is_refused() {
        let (path, msg) =
            invalid_at(json("application/json", r#"{"name":"a","inner":{"a":"x"}}"#).unwrap_err());
        assert_eq!(path.as_deref(), Some("inner.a"));
        assert_eq!(msg, "invalid type: string \"x\", expected u32");
        let (path, msg) =
            invalid_at(json("application/json", r#"{"name":"a","nmae":"b"}"#).unwrap_err());
        assert_eq!(path.as_deref(), Some("nmae"));
        assert!(msg.starts_with("unknown field `nmae`"), "{msg}");
        let (path, msg) = invalid_at(json("application/json", r#"{"name":"a"} {}"#).unwrap_err());
        assert_eq!((path, msg.as_str()), (None, "spec: trailing characters"));
        let (path, msg) = invalid_at(json("application/json", "{not json").unwrap_err());
        assert_eq!(path, None);
        assert!(msg.starts_with("spec: key must be a string"), "{msg}");
        // Deep nesting is refused by serde_json's recursion limit, not by the stack.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(
            decode::<serde_json::Value>(Some(b"application/json"), deep.as_bytes(), "v").is_err()
        );
    }
}
