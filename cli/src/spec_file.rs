//! Reading service specs from files: TOML, YAML or JSON (by extension, else by trying each), one
//! spec per file or a list under `services`. Specs are checked here before anything is sent.

use hoist_proto::service::ServiceSpec;
use serde::Deserialize;
use std::path::Path;

/// The file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Toml,
    Yaml,
    Json,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Many {
    services: Vec<ServiceSpec>,
}

fn guess(path: &Path) -> Option<Format> {
    match path.extension()?.to_str()? {
        "toml" => Some(Format::Toml),
        "yaml" | "yml" => Some(Format::Yaml),
        "json" => Some(Format::Json),
        _ => None,
    }
}

/// Parses `text` as one spec or `services = [...]`.
pub fn parse(text: &str, format: Format) -> Result<Vec<ServiceSpec>, String> {
    // A list is recognised by its top-level `services` key; otherwise the document is one spec.
    let value: serde_json::Value = match format {
        // The APIs' reader: a key given twice is an error, not last-wins (TOML and YAML refuse
        // it themselves).
        Format::Json => hoist_common::json_body::from_slice(text.as_bytes(), "the spec file")
            .map_err(|e| e.to_string())?,
        // Through YAML's own mapping, which refuses a key given twice (serde_json's keeps the
        // last).
        Format::Yaml => serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text)
            .and_then(serde_yaml_ng::from_value)
            .map_err(|e| e.to_string())?,
        Format::Toml => toml::from_str(text).map_err(|e| e.to_string())?,
    };
    let many = value.get("services").is_some();
    let decode = |v: serde_json::Value| -> Result<Vec<ServiceSpec>, String> {
        if many {
            serde_path_to_error::deserialize::<_, Many>(v)
                .map(|m| m.services)
                .map_err(|e| format!("{}: {}", e.path(), e.inner()))
        } else {
            serde_path_to_error::deserialize::<_, ServiceSpec>(v)
                .map(|s| vec![s])
                .map_err(|e| {
                    let path = e.path().to_string();
                    if path == "." {
                        e.inner().to_string()
                    } else {
                        format!("{path}: {}", e.inner())
                    }
                })
        }
    };
    decode(value)
}

/// Reads `path` (`-` is stdin) and checks every spec; the error lists every problem.
pub fn read(path: &Path) -> Result<Vec<ServiceSpec>, String> {
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).map_err(|e| format!("reading stdin: {e}"))?
    } else {
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?
    };
    let specs = match guess(path) {
        Some(f) => parse(&text, f),
        None => parse(&text, Format::Json)
            .or_else(|_| parse(&text, Format::Toml))
            .or_else(|_| parse(&text, Format::Yaml)),
    }
    .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut problems = Vec::new();
    for s in &specs {
        for e in s.validate() {
            problems.push(format!(
                "{}: {e}",
                if s.name.is_empty() {
                    "<unnamed>"
                } else {
                    &s.name
                }
            ));
        }
    }
    if problems.is_empty() {
        Ok(specs)
    } else {
        Err(format!(
            "{}: invalid spec:\n  {}",
            path.display(),
            problems.join("\n  ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_formats_agree() {
        let toml = "name = \"web\"\nimage = \"nginx:1\"\nreplicas = 3\n[resources]\ncpu = 0.5\nmemory = \"128Mi\"\n";
        let yaml =
            "name: web\nimage: nginx:1\nreplicas: 3\nresources:\n  cpu: 0.5\n  memory: 128Mi\n";
        let json = r#"{"name":"web","image":"nginx:1","replicas":3,"resources":{"cpu":0.5,"memory":"128Mi"}}"#;
        let a = parse(toml, Format::Toml).unwrap();
        assert_eq!(a, parse(yaml, Format::Yaml).unwrap());
        assert_eq!(a, parse(json, Format::Json).unwrap());
        assert_eq!(a[0].resources.cpu.as_ref().unwrap().as_str(), "0.5");
    }

    #[test]
    fn duplicate_keys_are_refused_in_every_format() {
        let e = |text: &str, f: Format| parse(text, f).unwrap_err();
        let json = e(
            r#"{"name":"web","image":"x","env":{"A":"1","A":"2"}}"#,
            Format::Json,
        );
        assert!(json.contains("duplicate"), "{json}");
        let yaml = e(
            "name: web\nimage: x\nenv:\n  A: \"1\"\n  A: \"2\"\n",
            Format::Yaml,
        );
        assert!(yaml.contains("duplicate"), "{yaml}");
        let toml = e(
            "name = \"web\"\nimage = \"x\"\n[env]\nA = \"1\"\nA = \"2\"\n",
            Format::Toml,
        );
        assert!(toml.contains("duplicate"), "{toml}");
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse(
            "name = \"web\"\nimage = \"x\"\n[resources]\nmemroy = \"1\"\n",
            Format::Toml,
        )
        .unwrap_err();
        assert!(
            e.starts_with("resources.memroy: unknown field `memroy`"),
            "{e}"
        );
        let many = parse(
            "services:\n- name: a\n  image: x\n- name: b\n  image: y\n",
            Format::Yaml,
        )
        .unwrap();
        assert_eq!(many.len(), 2);
    }
}
