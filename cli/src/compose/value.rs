//! Reading typed values out of YAML nodes the way Compose accepts them: numbers where strings are
//! expected (`user: 1000`), strings where numbers are expected (`replicas: "${N:-2}"`, written
//! after interpolation), and `"true"`/`"false"` for booleans.

use serde_yaml_ng::{Mapping, Value};

/// What a wrong type says: `expected a string, found a list`.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// A string; numbers are written in decimal.
pub fn string(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(format!("expected a string, found {}", kind(other))),
    }
}

/// A string, a number or a boolean, as text (environment and label values).
pub fn scalar(v: &Value) -> Result<String, String> {
    match v {
        Value::Bool(b) => Ok(b.to_string()),
        other => string(other),
    }
}

/// An integer, written as a number or a string.
pub fn int(v: &Value) -> Result<i64, String> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| format!("{n} is not a whole number")),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a whole number")),
        other => Err(format!("expected a whole number, found {}", kind(other))),
    }
}

/// A boolean: `true`/`false`, also as strings.
pub fn boolean(v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s == "true" || s == "True" => Ok(true),
        Value::String(s) if s == "false" || s == "False" => Ok(false),
        other => Err(format!("expected true or false, found {}", kind(other))),
    }
}

/// A duration as Compose writes it (`"30s"`, `"1m30s"`, `"500ms"`); a bare `0` is allowed.
pub fn duration(v: &Value) -> Result<String, String> {
    let s = match v {
        Value::Number(n) if n.as_u64() == Some(0) => return Ok("0s".into()),
        Value::Number(n) => {
            return Err(format!(
                "{n} is a duration without a unit (write it like \"{n}s\")"
            ))
        }
        other => string(other)?,
    };
    match hoist_proto::quantity::parse_duration_ms(&s) {
        Some(_) => Ok(s),
        None => Err(format!(
            "{s:?} is not a duration (like \"30s\", \"1m30s\", \"500ms\")"
        )),
    }
}

/// A mapping (with string keys, checked by the caller as it reads them).
pub fn mapping(v: &Value) -> Result<&Mapping, String> {
    match v {
        Value::Mapping(m) => Ok(m),
        other => Err(format!("expected a mapping, found {}", kind(other))),
    }
}

/// A list.
pub fn list(v: &Value) -> Result<&[Value], String> {
    match v {
        Value::Sequence(s) => Ok(s),
        other => Err(format!("expected a list, found {}", kind(other))),
    }
}

/// The mapping's entries with their keys as strings; a non-string key is an error.
pub fn entries(m: &Mapping) -> Result<Vec<(&str, &Value)>, String> {
    m.iter()
        .map(|(k, v)| match k {
            Value::String(s) => Ok((s.as_str(), v)),
            other => Err(format!(
                "the key {} is not a string",
                super::yaml::describe_key(other)
            )),
        })
        .collect()
}

/// A command: a list of strings, or a string split as a shell would (quotes, backslashes).
pub fn command(v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::Null => Ok(vec![]),
        Value::String(s) => {
            shlex::split(s).ok_or_else(|| format!("{s:?} has an unclosed quote or a trailing \\"))
        }
        Value::Sequence(items) => items.iter().map(string).collect(),
        other => Err(format!(
            "expected a string or a list of strings, found {}",
            kind(other)
        )),
    }
}
