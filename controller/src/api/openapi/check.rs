//! A small JSON Schema check for the document's own tests: the keywords the document uses
//! (`$ref`, `type`, `const`, `enum`, `properties`, `required`, `additionalProperties`, `items`,
//! `oneOf`/`anyOf`, numeric bounds), stricter than JSON Schema in one way: an object schema that
//! lists properties must list every key the value has. Enough to tell that what the API answers is what the
//! document says. The lab test runs schemathesis, a full validator, against a live member.

use serde_json::Value;

/// Every place `value` breaks `schema` (resolved in `doc`), as `path: problem`.
pub fn problems(doc: &Value, schema: &Value, value: &Value) -> Vec<String> {
    let mut out = vec![];
    check(doc, schema, value, "$", &mut out);
    out
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let pointer = r.trim_start_matches('#');
            resolve(doc, doc.pointer(pointer).unwrap_or(&Value::Null))
        }
        None => schema,
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_ok(ty: &Value, v: &Value) -> bool {
    let name = type_name(v);
    let one = |t: &Value| t == name || (t == "number" && name == "integer");
    match ty {
        Value::String(_) => one(ty),
        Value::Array(ts) => ts.iter().any(one),
        _ => true,
    }
}

fn check(doc: &Value, schema: &Value, v: &Value, path: &str, out: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    if schema.as_object().is_none() {
        out.push(format!("{path}: no schema"));
        return;
    }
    if let Some(ty) = schema.get("type") {
        if !type_ok(ty, v) {
            out.push(format!("{path}: {v} is not of type {ty}"));
            return;
        }
    }
    if let Some(c) = schema.get("const") {
        if c != v {
            out.push(format!("{path}: {v} is not {c}"));
        }
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            out.push(format!("{path}: {v} is not one of {e:?}"));
        }
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(alts) = schema.get(key).and_then(Value::as_array) {
            let fits = alts
                .iter()
                .filter(|s| {
                    let mut o = vec![];
                    check(doc, s, v, path, &mut o);
                    o.is_empty()
                })
                .count();
            if fits == 0 || (key == "oneOf" && fits > 1) {
                out.push(format!("{path}: {v} fits {fits} of the {key} alternatives"));
            }
        }
    }
    if let Some(n) = v.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
            if n < min {
                out.push(format!("{path}: {n} < minimum {min}"));
            }
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
            if n > max {
                out.push(format!("{path}: {n} > maximum {max}"));
            }
        }
    }
    match v {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            for r in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if !r.as_str().is_some_and(|r| map.contains_key(r)) {
                    out.push(format!("{path}: {r} is required"));
                }
            }
            for (k, item) in map {
                let sub = format!("{path}.{k}");
                match (
                    props.and_then(|p| p.get(k)),
                    schema.get("additionalProperties"),
                ) {
                    (Some(s), _) => check(doc, s, item, &sub, out),
                    (None, Some(Value::Bool(false))) => {
                        out.push(format!("{sub}: not in the document"))
                    }
                    (None, Some(s @ Value::Object(_))) => check(doc, s, item, &sub, out),
                    // Strict: an object schema that lists properties lists them all.
                    (None, None) if props.is_some() => {
                        out.push(format!("{sub}: not in the document"))
                    }
                    (None, _) => {}
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check(doc, s, item, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}
