//! `hoist stack config`: prints what Compose files become, contacting no one (as `docker compose
//! config` does). The YAML it prints is a spec file that `hoist service apply -f` reads.

use super::Loaded;
use crate::output;
use hoist_proto::service::ServiceSpec;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Loads `files` as stack `stack` and prints the specs (see [`render`]); warnings go to stderr.
pub fn config(stack: &str, files: &[PathBuf], format: output::Format) -> anyhow::Result<i32> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let loaded = super::load_from_disk(stack, files, &env).map_err(|e| {
        let n = e.problems.len();
        anyhow::anyhow!(
            "{n} problem{} in the Compose files:\n{e}",
            if n == 1 { "" } else { "s" }
        )
    })?;
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    print!("{}", render(&loaded, format)?);
    Ok(0)
}

#[derive(Serialize)]
struct SpecFile<'a> {
    services: &'a [ServiceSpec],
}

#[derive(Serialize)]
struct Everything<'a> {
    services: &'a [ServiceSpec],
    volumes: &'a [String],
    warnings: &'a [String],
}

/// YAML: a `services:` list in the spec's field order, after a comment naming the stack's
/// volumes; JSON (`-o json`): one document with services, volumes and warnings.
pub fn render(loaded: &Loaded, format: output::Format) -> anyhow::Result<String> {
    Ok(match format {
        output::Format::Json => {
            let mut s = serde_json::to_string_pretty(&Everything {
                services: &loaded.services,
                volumes: &loaded.volumes,
                warnings: &loaded.warnings,
            })?;
            s.push('\n');
            s
        }
        output::Format::Table => {
            let mut s = String::new();
            if !loaded.volumes.is_empty() {
                s.push_str(&format!("# volumes: {}\n", loaded.volumes.join(", ")));
            }
            s.push_str(&serde_yaml_ng::to_string(&SpecFile {
                services: &loaded.services,
            })?);
            s
        }
    })
}
