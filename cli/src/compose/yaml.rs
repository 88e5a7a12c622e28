//! Reading one Compose file's bytes into a YAML value, with bounds: the size (10 MiB, checked
//! before parsing), UTF-8 (the first bad byte's line and column), and the size of the value the
//! aliases expand to.
//!
//! serde_yaml_ng (libyaml underneath) limits nesting to 128 levels and alias jumps to 100 per
//! event of the document, but not what a jump copies: one large anchor aliased a thousand times
//! builds a thousand copies. So the value is built by our own visitor that counts every node and
//! every scalar byte it builds (aliases included, as they are replayed) and stops the parse at
//! [`MAX_NODES`] or [`MAX_SCALAR_BYTES`]: a billion-laughs file is refused after building at most
//! that much, in well under a second. YAML merge keys (`<<`) are applied here too, chained merges
//! included (serde_yaml_ng's `apply_merge` leaves a merged mapping's own `<<` unapplied).

use super::error::ComposeError;
use serde::de::{self, DeserializeSeed, Visitor};
use serde_yaml_ng::value::{Tag, TaggedValue};
use serde_yaml_ng::{Mapping, Value};
use std::cell::Cell;
use std::fmt;

/// The largest Compose file read, in bytes.
pub const MAX_FILE_BYTES: usize = 10 << 20;
/// The most YAML nodes (scalars, sequences, mappings) a file may expand to, aliases included.
pub const MAX_NODES: usize = 500_000;
/// The most scalar bytes a file may expand to, aliases included.
pub const MAX_SCALAR_BYTES: usize = 32 << 20;

/// Parses one file. `name` is how errors name it.
pub fn parse(name: &str, bytes: &[u8]) -> Result<Value, ComposeError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(ComposeError::one(
            name,
            format!(
                "the file is {} bytes, more than the {} a Compose file may have",
                bytes.len(),
                MAX_FILE_BYTES
            ),
        ));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let (line, col) = line_col(bytes, e.valid_up_to());
        ComposeError::one(
            format!("{name}:{line}:{col}"),
            "the file is not UTF-8 text (a Compose file must be UTF-8)",
        )
    })?;
    let budget = Budget {
        nodes: Cell::new(0),
        bytes: Cell::new(0),
    };
    let value = Seed(&budget)
        .deserialize(serde_yaml_ng::Deserializer::from_str(text))
        .map_err(|e| syntax_error(name, text, &e))?;
    let mut value = value;
    apply_merge(&mut value, 0)
        .map_err(|(path, m)| ComposeError::one(format!("{name}: {path}"), m))?;
    Ok(value)
}

/// `file:line:col: message` from a YAML error, with a hint for tabs.
fn syntax_error(name: &str, text: &str, e: &serde_yaml_ng::Error) -> ComposeError {
    let mut message = e.to_string();
    let Some(loc) = e.location() else {
        return ComposeError::one(name, message);
    };
    // The library's message ends with " at line L column C": the location goes in front.
    if let Some(i) = message.find(" at line ") {
        message.truncate(i);
    }
    if text[loc.index().min(text.len())..].starts_with('\t')
        || text
            .lines()
            .nth(loc.line().saturating_sub(1))
            .is_some_and(|l| l.trim_start_matches(' ').starts_with('\t'))
    {
        message.push_str(" (a tab? YAML indents with spaces only)");
    }
    ComposeError::one(format!("{name}:{}:{}", loc.line(), loc.column()), message)
}

/// The 1-based line and column (in characters) of byte `offset`.
pub fn line_col(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let col = String::from_utf8_lossy(&before[start..]).chars().count() + 1;
    (line, col)
}

struct Budget {
    nodes: Cell<usize>,
    bytes: Cell<usize>,
}

impl Budget {
    fn charge<E: de::Error>(&self, scalar_bytes: usize) -> Result<(), E> {
        let n = self.nodes.get() + 1;
        let b = self.bytes.get().saturating_add(scalar_bytes);
        self.nodes.set(n);
        self.bytes.set(b);
        if n > MAX_NODES {
            return Err(E::custom(format!(
                "the file expands to more than {MAX_NODES} values (an alias bomb?)"
            )));
        }
        if b > MAX_SCALAR_BYTES {
            return Err(E::custom(format!(
                "the file expands to more than {MAX_SCALAR_BYTES} bytes of text (an alias bomb?)"
            )));
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
struct Seed<'b>(&'b Budget);

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.0.charge(0)?;
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.0.charge(0)?;
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.0.charge(0)?;
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.0.charge(0)?;
        Ok(Value::Number(v.into()))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.0.charge(v.len())?;
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.0.charge(v.len())?;
        Ok(Value::String(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.0.charge(0)?;
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.0.charge(0)?;
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(self)? {
            out.push(v);
        }
        Ok(Value::Sequence(out))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.0.charge(0)?;
        let mut out = Mapping::new();
        while let Some(k) = map.next_key_seed(self)? {
            let v = map.next_value_seed(self)?;
            if out.contains_key(&k) {
                return Err(de::Error::custom(format!(
                    "duplicate key {}",
                    describe_key(&k)
                )));
            }
            out.insert(k, v);
        }
        Ok(Value::Mapping(out))
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        use de::VariantAccess;
        self.0.charge(0)?;
        let (tag, contents): (String, _) = data.variant()?;
        if tag.is_empty() {
            return Err(de::Error::custom("an empty YAML tag"));
        }
        let value = contents.newtype_variant_seed(self)?;
        Ok(Value::Tagged(Box::new(TaggedValue {
            tag: Tag::new(tag),
            value,
        })))
    }
}

/// A key as an error message shows it.
pub fn describe_key(k: &Value) -> String {
    match k {
        Value::String(s) => format!("{s:?}"),
        other => serde_yaml_ng::to_string(other)
            .map(|s| s.trim_end().to_string())
            .unwrap_or_else(|_| "?".into()),
    }
}

/// Applies YAML merge keys (`<<: *base`, `<<: [*a, *b]`): keys written in the mapping win, then
/// the first merged mapping's, and so on. Merged mappings have their own merges applied first.
fn apply_merge(v: &mut Value, depth: usize) -> Result<(), (String, String)> {
    if depth > 200 {
        return Err(("".into(), "the file nests too deeply".into()));
    }
    match v {
        Value::Mapping(m) => {
            if let Some(merge) = m.shift_remove("<<") {
                let sources = match merge {
                    Value::Mapping(src) => vec![Value::Mapping(src)],
                    Value::Sequence(list) => list,
                    _ => {
                        return Err((
                            "<<".into(),
                            "a merge key takes a mapping or a list of mappings".into(),
                        ))
                    }
                };
                for mut src in sources {
                    apply_merge(&mut src, depth + 1)?;
                    let Value::Mapping(src) = src else {
                        return Err((
                            "<<".into(),
                            "a merge key takes a mapping or a list of mappings".into(),
                        ));
                    };
                    for (k, val) in src {
                        if !m.contains_key(&k) {
                            m.insert(k, val);
                        }
                    }
                }
            }
            for (k, val) in m.iter_mut() {
                apply_merge(val, depth + 1)
                    .map_err(|(p, e)| (join_path(&describe_plain(k), &p), e))?;
            }
        }
        Value::Sequence(list) => {
            for (i, val) in list.iter_mut().enumerate() {
                apply_merge(val, depth + 1)
                    .map_err(|(p, e)| (join_path(&format!("[{i}]"), &p), e))?;
            }
        }
        Value::Tagged(t) => apply_merge(&mut t.value, depth + 1)?,
        _ => {}
    }
    Ok(())
}

fn describe_plain(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        other => describe_key(other),
    }
}

fn join_path(head: &str, tail: &str) -> String {
    if tail.is_empty() {
        head.to_string()
    } else if tail.starts_with('[') {
        format!("{head}{tail}")
    } else {
        format!("{head}.{tail}")
    }
}
