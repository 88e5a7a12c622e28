//! `.env` and `env_file` files, as Compose reads them: `KEY=VALUE` lines (an `export ` prefix
//! allowed), `#` comments (after a space when on a value's line), single quotes literal, double
//! quotes with `\n \t \r \" \\ \$` escapes and interpolation, unquoted values trimmed and
//! interpolated, quoted values spanning lines, and a bare `KEY` taking the variable's value from
//! the environment (left out when it has none). Interpolation sees the earlier lines of the file,
//! then `env`.

use super::interpolate::Vars;
use std::collections::BTreeMap;

/// What a file sets, in order, and the variables it used that were not set.
pub type Parsed = (Vec<(String, String)>, Vec<String>);

/// Parses `text`; an error names its 1-based line.
pub fn parse(text: &str, env: &BTreeMap<String, String>) -> Result<Parsed, (usize, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut seen: BTreeMap<String, String> = env.clone();
    let mut unset = Vec::new();
    // One budget for the whole file: lines that repeat each other must not multiply.
    let mut budget = super::interpolate::MAX_INTERPOLATED_BYTES;
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let lineno = i + 1;
        let line = lines[i].trim();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let Some(eq) = line.find('=') else {
            let key = line;
            check_key(key).map_err(|m| (lineno, m))?;
            if let Some(v) = env.get(key) {
                out.push((key.to_string(), v.clone()));
            }
            continue;
        };
        let key = line[..eq].trim();
        check_key(key).map_err(|m| (lineno, m))?;
        let raw = line[eq + 1..].trim_start();
        let value = if let Some(q @ ('\'' | '"')) = raw.chars().next() {
            // The value runs to the matching quote, maybe on a later line.
            let mut body = raw[1..].to_string();
            let close = loop {
                if let Some(end) = find_close(&body, q) {
                    break end;
                }
                if i >= lines.len() {
                    return Err((lineno, format!("{key}: the {q} quote is not closed")));
                }
                body.push('\n');
                body.push_str(lines[i]);
                i += 1;
            };
            let trailing = body[close + 1..].trim();
            if !(trailing.is_empty() || trailing.starts_with('#')) {
                return Err((lineno, format!("{key}: text after the closing quote")));
            }
            let body = &body[..close];
            if q == '\'' {
                body.to_string()
            } else {
                let unescaped = unescape(body);
                interpolate(&unescaped, &seen, &mut unset, &mut budget).map_err(|m| (lineno, m))?
            }
        } else {
            let value = match raw.find(" #") {
                Some(c) => raw[..c].trim_end(),
                None => raw.trim_end(),
            };
            interpolate(value, &seen, &mut unset, &mut budget).map_err(|m| (lineno, m))?
        };
        // Later lines see this one, unless the environment sets it (the environment wins).
        if !env.contains_key(key) {
            seen.insert(key.to_string(), value.clone());
        }
        out.push((key.to_string(), value));
    }
    Ok((out, unset))
}

fn interpolate(
    text: &str,
    vars: &BTreeMap<String, String>,
    unset: &mut Vec<String>,
    budget: &mut usize,
) -> Result<String, String> {
    let mut v = Vars::with_budget(vars, *budget);
    let r = v.interpolate(text);
    *budget = v.budget_left();
    unset.extend(v.unset);
    r
}

fn check_key(key: &str) -> Result<(), String> {
    let ok = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!("{key:?} is not a variable name"))
    }
}

/// The index of the closing quote `q` in `s`, backslash-escaped ones skipped for `"`.
fn find_close(s: &str, q: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' && q == '"' {
            escaped = true;
        } else if c == q {
            return Some(i);
        }
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            // `\$` stays escaped for interpolation.
            Some('$') => out.push_str("$$"),
            Some(o) => out.push(o),
            None => out.push('\\'),
        }
    }
    out
}
