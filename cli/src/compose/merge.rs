//! Merging, as the Compose specification's merge rules say, for several `-c` files and for
//! `extends`: mappings merge key by key, scalars are replaced, and sequences are appended
//! (exact duplicates dropped) except `command`, `entrypoint` and `healthcheck.test` (replaced)
//! and `volumes` (an entry replaces the earlier one with the same target). `environment`,
//! `labels`, `deploy.labels`, `networks` and `depends_on` are turned into mappings first
//! ([`normalize_service`]), so the list and map forms merge with each other. `!reset` removes
//! what the earlier file said; `!override` replaces it whole.

use super::syntax;
use serde_yaml_ng::{Mapping, Value};
use std::path::Path;

/// Rewrites one service of one file into the form merging expects: list forms of maps become
/// maps, single strings of lists become lists, and relative paths (`env_file`, bind mount
/// sources) become paths joined to the file's directory `dir`.
pub fn normalize_service(svc: &mut Mapping, dir: &Path) {
    for key in ["environment", "labels", "networks", "depends_on"] {
        if let Some(v) = svc.get_mut(key) {
            list_to_map(v, key == "labels");
        }
    }
    if let Some(Value::Mapping(deploy)) = svc.get_mut("deploy") {
        if let Some(v) = deploy.get_mut("labels") {
            list_to_map(v, true);
        }
    }
    for key in ["env_file", "tmpfs"] {
        if let Some(v @ Value::String(_)) = svc.get_mut(key) {
            *v = Value::Sequence(vec![v.clone()]);
        }
    }
    if let Some(Value::Sequence(files)) = svc.get_mut("env_file") {
        for f in files {
            match f {
                Value::String(p) => *p = rebase(dir, p),
                Value::Mapping(m) => {
                    if let Some(Value::String(p)) = m.get_mut("path") {
                        *p = rebase(dir, p);
                    }
                }
                _ => {}
            }
        }
    }
    if let Some(Value::Sequence(vols)) = svc.get_mut("volumes") {
        for v in vols {
            match v {
                Value::String(s) => {
                    if let Some(new) = syntax::rebase_short_volume(s, dir) {
                        *s = new;
                    }
                }
                Value::Mapping(m) => {
                    let bind = m.get("type").and_then(Value::as_str) == Some("bind");
                    if let (true, Some(Value::String(src))) = (bind, m.get_mut("source")) {
                        if syntax::is_relative_path(src) {
                            *src = rebase(dir, src);
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

/// `dir` joined with the relative path `p` (`./x` → `dir/x`); absolute paths and `~` as they are.
pub fn rebase(dir: &Path, p: &str) -> String {
    if p.starts_with('/') || p.starts_with('~') || dir.as_os_str().is_empty() {
        return p.to_string();
    }
    let joined = dir.join(p.strip_prefix("./").unwrap_or(p));
    syntax::clean_path(&joined.to_string_lossy())
}

/// `["A=1", "B"]` → `{A: "1", B: null}` (labels: `{B: ""}`).
fn list_to_map(v: &mut Value, empty_is_string: bool) {
    let Value::Sequence(list) = v else { return };
    if !list.iter().all(|i| matches!(i, Value::String(_))) {
        return; // left for the converter to refuse with the service and key
    }
    let mut m = Mapping::new();
    for item in list.iter() {
        let s = item.as_str().unwrap_or_default();
        let (k, val) = match s.split_once('=') {
            Some((k, v)) => (k, Value::String(v.to_string())),
            None if empty_is_string => (s, Value::String(String::new())),
            None => (s, Value::Null),
        };
        m.insert(Value::String(k.to_string()), val);
    }
    *v = Value::Mapping(m);
}

/// Merges the top level of `over` into `base`.
pub fn merge_root(base: &mut Mapping, over: Mapping) {
    for (k, v) in over {
        if k.as_str() == Some("services") {
            if let (Some(Value::Mapping(bs)), Value::Mapping(os)) = (base.get_mut("services"), &v) {
                for (name, svc) in os.clone() {
                    merge_entry(bs, name, svc, &["services"]);
                }
                continue;
            }
        }
        merge_entry(base, k, v, &[]);
    }
}

/// Merges service `over` onto service `base` (both normalized).
pub fn merge_service(base: Mapping, over: Mapping) -> Mapping {
    let mut out = base;
    for (k, v) in over {
        merge_entry(&mut out, k, v, &["services", "*"]);
    }
    out
}

fn merge_entry(base: &mut Mapping, k: Value, over: Value, parent: &[&str]) {
    let key = k.as_str().unwrap_or("").to_string();
    if let Value::Tagged(t) = &over {
        if t.tag == "reset" {
            base.shift_remove(&k);
            return;
        }
        if t.tag == "override" {
            base.insert(k, t.value.clone());
            return;
        }
    }
    let mut path: Vec<&str> = parent.to_vec();
    path.push(&key);
    // In place, so that a merged key keeps its position (services keep the first file's order).
    match base.get_mut(&k) {
        None => {
            base.insert(k, over);
        }
        Some(slot) => {
            let old = std::mem::take(slot);
            *slot = merge_value(old, over, &path);
        }
    }
}

fn merge_value(base: Value, over: Value, path: &[&str]) -> Value {
    match (base, over) {
        (Value::Mapping(mut b), Value::Mapping(o)) => {
            for (k, v) in o {
                merge_entry(&mut b, k, v, path);
            }
            Value::Mapping(b)
        }
        (Value::Sequence(b), Value::Sequence(o)) => Value::Sequence(merge_list(b, o, path)),
        (_, over) => over,
    }
}

fn merge_list(base: Vec<Value>, over: Vec<Value>, path: &[&str]) -> Vec<Value> {
    let in_service = path.len() >= 3 && path[0] == "services";
    let rest = if in_service { &path[2..] } else { path };
    match rest {
        ["command"] | ["entrypoint"] | ["healthcheck", "test"] if in_service => over,
        ["volumes"] if in_service => {
            let mut out = base;
            for v in over {
                let t = syntax::volume_target(&v);
                match out
                    .iter()
                    .position(|o| t.is_some() && syntax::volume_target(o) == t)
                {
                    Some(i) => out[i] = v,
                    None => out.push(v),
                }
            }
            out
        }
        _ => {
            let mut out = base;
            for v in over {
                if !out.contains(&v) {
                    out.push(v);
                }
            }
            out
        }
    }
}

/// Removes what `!reset` marks in a single file and unwraps `!override`; any other tag is an
/// error (path, message).
pub fn finish_tags(v: &mut Value, path: &str, errors: &mut Vec<(String, String)>) {
    match v {
        Value::Mapping(m) => {
            m.retain(|_, val| !matches!(val, Value::Tagged(t) if t.tag == "reset"));
            for (k, val) in m.iter_mut() {
                let key = k.as_str().map(str::to_string).unwrap_or_default();
                let sub = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                finish_tags(val, &sub, errors);
            }
        }
        Value::Sequence(list) => {
            list.retain(|val| !matches!(val, Value::Tagged(t) if t.tag == "reset"));
            for (i, val) in list.iter_mut().enumerate() {
                finish_tags(val, &format!("{path}[{i}]"), errors);
            }
        }
        Value::Tagged(t) if t.tag == "override" => {
            let mut inner = std::mem::replace(&mut t.value, Value::Null);
            finish_tags(&mut inner, path, errors);
            *v = inner;
        }
        Value::Tagged(t) => {
            errors.push((
                path.to_string(),
                format!(
                    "the YAML tag {} is not supported (only !reset and !override)",
                    t.tag
                ),
            ));
        }
        _ => {}
    }
}
