//! Variable interpolation, as `docker compose` does it: `$VAR`, `${VAR}`, `${VAR:-default}`
//! (unset or empty), `${VAR-default}` (unset), `${VAR:?message}` / `${VAR?message}` (an error),
//! `${VAR:+alt}` / `${VAR+alt}`, and `$$` for a literal `$`. Defaults may themselves hold
//! variables (`${A:-${B}}`). A `$` followed by anything else is an error, as in Compose. An unset
//! variable without a default becomes the empty string, with a warning.

use serde_yaml_ng::Value;
use std::collections::BTreeMap;

/// The most text interpolation may produce for one file (the YAML tree, or a `.env` file with
/// its lines): `B=${A}${A}...` chained over ten lines of a `.env` would otherwise ask for
/// gigabytes from a kilobyte of input.
pub const MAX_INTERPOLATED_BYTES: usize = 32 << 20;
/// How deeply `${A:-${B:-...}}` may nest.
const MAX_DEPTH: usize = 32;

/// The variables a file sees and what interpolation noticed.
#[derive(Debug)]
pub struct Vars<'a> {
    pub vars: &'a BTreeMap<String, String>,
    /// Variables that were unset and had no default (each once).
    pub unset: Vec<String>,
    /// Bytes interpolation may still produce.
    budget: usize,
    depth: usize,
}

impl<'a> Vars<'a> {
    pub fn new(vars: &'a BTreeMap<String, String>) -> Self {
        Self::with_budget(vars, MAX_INTERPOLATED_BYTES)
    }

    /// Interpolation that may produce at most `budget` bytes in all.
    pub fn with_budget(vars: &'a BTreeMap<String, String>, budget: usize) -> Self {
        Vars {
            vars,
            unset: Vec::new(),
            budget,
            depth: 0,
        }
    }

    /// What is left of the budget.
    pub fn budget_left(&self) -> usize {
        self.budget
    }

    /// Counts `n` more bytes of output against the budget.
    fn charge(&mut self, n: usize) -> Result<(), String> {
        self.budget = self.budget.checked_sub(n).ok_or_else(|| {
            format!(
                "interpolation makes more than {} MiB of text (variables that repeat each other?)",
                MAX_INTERPOLATED_BYTES >> 20
            )
        })?;
        Ok(())
    }

    /// Interpolates `text`; the error says what is wrong (the caller says where).
    pub fn interpolate(&mut self, text: &str) -> Result<String, String> {
        if !text.contains('$') {
            return Ok(text.to_string());
        }
        if self.depth >= MAX_DEPTH {
            return Err(format!(
                "variables nest more than {MAX_DEPTH} levels deep (${{A:-${{B:-...}}}})"
            ));
        }
        self.depth += 1;
        let r = self.interpolate_text(text);
        self.depth -= 1;
        let out = r?;
        self.charge(out.len())?;
        Ok(out)
    }

    fn interpolate_text(&mut self, text: &str) -> Result<String, String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            if let Some(r) = after.strip_prefix('$') {
                out.push('$');
                rest = r;
            } else if let Some(r) = after.strip_prefix('{') {
                let end = closing_brace(r).ok_or_else(|| {
                    format!(
                        "{text:?}: \"${{\" without its closing \"}}\" (write $$ for a literal $)"
                    )
                })?;
                let v = self.braced(&r[..end], text)?;
                self.charge(v.len())?;
                out.push_str(&v);
                rest = &r[end + 1..];
            } else if after.starts_with(|c: char| c == '_' || c.is_ascii_alphabetic()) {
                let len = after
                    .find(|c: char| !(c == '_' || c.is_ascii_alphanumeric()))
                    .unwrap_or(after.len());
                let v = self.get_or_warn(&after[..len]);
                self.charge(v.len())?;
                out.push_str(&v);
                rest = &after[len..];
            } else {
                return Err(format!(
                    "{text:?}: invalid interpolation (write $$ for a literal $)"
                ));
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    fn get_or_warn(&mut self, name: &str) -> String {
        match self.vars.get(name) {
            Some(v) => v.clone(),
            None => {
                if !self.unset.iter().any(|u| u == name) {
                    self.unset.push(name.to_string());
                }
                String::new()
            }
        }
    }

    /// The inside of `${...}`.
    fn braced(&mut self, inner: &str, whole: &str) -> Result<String, String> {
        let len = inner
            .find(|c: char| !(c == '_' || c.is_ascii_alphanumeric()))
            .unwrap_or(inner.len());
        let name = &inner[..len];
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(format!(
                "{whole:?}: \"${{{inner}}}\" does not start with a variable name"
            ));
        }
        let op = &inner[len..];
        let value = self.vars.get(name).cloned();
        let set = value.is_some();
        let nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
        let (kind, word) = if op.is_empty() {
            return Ok(self.get_or_warn(name));
        } else if let Some(w) = op.strip_prefix(":-") {
            ('-', (!nonempty).then_some(w))
        } else if let Some(w) = op.strip_prefix('-') {
            ('-', (!set).then_some(w))
        } else if let Some(w) = op.strip_prefix(":?") {
            ('?', (!nonempty).then_some(w))
        } else if let Some(w) = op.strip_prefix('?') {
            ('?', (!set).then_some(w))
        } else if let Some(w) = op.strip_prefix(":+") {
            ('+', Some(if nonempty { w } else { "" }))
        } else if let Some(w) = op.strip_prefix('+') {
            ('+', Some(if set { w } else { "" }))
        } else {
            return Err(format!(
                "{whole:?}: \"${{{inner}}}\" has an unknown operator (:-, -, :?, ?, :+ or +)"
            ));
        };
        match (kind, word) {
            (_, None) => Ok(value.unwrap_or_default()),
            ('?', Some(message)) => {
                let message = self.interpolate(message)?;
                Err(if message.is_empty() {
                    format!("required variable {name} is missing a value")
                } else {
                    format!("required variable {name} is missing a value: {message}")
                })
            }
            (_, Some(w)) => self.interpolate(w),
        }
    }
}

/// The index of the `}` closing a `${` whose inside starts `s`, nested `${...}` skipped.
fn closing_brace(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'$' if bytes.get(i + 1) == Some(&b'$') => i += 1,
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Interpolates every string value under `v` (mapping keys are left as they are); `path` is the
/// dotted path of `v` for errors. Top-level `x-` extension keys are skipped: what they hold is
/// used through aliases, which were expanded before, in the places interpolated here.
pub fn interpolate_tree(
    v: &mut Value,
    path: &str,
    vars: &mut Vars<'_>,
    errors: &mut Vec<(String, String)>,
) {
    match v {
        Value::String(s) => match vars.interpolate(s) {
            Ok(new) => *s = new,
            Err(e) => errors.push((path.to_string(), e)),
        },
        Value::Sequence(list) => {
            for (i, item) in list.iter_mut().enumerate() {
                interpolate_tree(item, &format!("{path}[{i}]"), vars, errors);
            }
        }
        Value::Mapping(m) => {
            for (k, item) in m.iter_mut() {
                let key = match k {
                    Value::String(s) => s.clone(),
                    other => super::yaml::describe_key(other),
                };
                if path.is_empty() && key.starts_with("x-") {
                    continue;
                }
                let sub = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                interpolate_tree(item, &sub, vars, errors);
            }
        }
        Value::Tagged(t) => interpolate_tree(&mut t.value, path, vars, errors),
        _ => {}
    }
}
