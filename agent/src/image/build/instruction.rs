//! Pure helpers that turn an instruction's words into image config: exec vs shell form, ports,
//! COPY destinations, history for base layers that had none.

use oci_spec::image::{HistoryBuilder, ImageConfiguration};

use super::dockerfile::Args;
use crate::error::AgentError;
use hoist_common::dockerignore;

/// A base image without history for some of its layers (an imported rootfs has none) gets an
/// entry per such layer, so the built image's non-empty history entries match its layers, as
/// OCI tools expect.
pub(crate) fn complete_history(config: &mut ImageConfiguration) -> Result<(), AgentError> {
    let mut history = config.history().clone().unwrap_or_default();
    let described = history
        .iter()
        .filter(|h| h.empty_layer() != Some(true))
        .count();
    let layers = config.rootfs().diff_ids().len();
    if described >= layers {
        return Ok(());
    }
    let mut missing = Vec::new();
    for _ in described..layers {
        let mut entry = HistoryBuilder::default().comment("base layer without history");
        if let Some(created) = config.created() {
            entry = entry.created(created.clone());
        }
        missing.push(
            entry
                .build()
                .map_err(|e| AgentError::internal("history", e))?,
        );
    }
    missing.append(&mut history);
    config.set_history(Some(missing));
    Ok(())
}

/// Exec form as is; shell form through the image's SHELL (default `/bin/sh -c`).
pub(super) fn exec_or_shell(args: &Args, shell: Option<&[String]>) -> Vec<String> {
    match args {
        Args::Json(v) => v.clone(),
        Args::Text(t) => with_shell(t, shell),
    }
}

/// `command` run by `shell` (default `/bin/sh -c`).
pub(super) fn with_shell(command: &str, shell: Option<&[String]>) -> Vec<String> {
    let mut argv: Vec<String> = match shell {
        Some(s) if !s.is_empty() => s.to_vec(),
        _ => vec!["/bin/sh".into(), "-c".into()],
    };
    argv.push(command.to_owned());
    argv
}

pub(super) fn quote_if_needed(v: &str) -> String {
    if v.is_empty() || v.contains(char::is_whitespace) || v.contains('"') {
        format!("{v:?}")
    } else {
        v.to_owned()
    }
}

/// `80` → `80/tcp`; `53/udp` stays; anything else is an error.
pub(super) fn normalize_port(p: &str) -> Result<String, String> {
    let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if num.parse::<u16>().map_or(true, |n| n == 0)
        || !matches!(proto.as_str(), "tcp" | "udp" | "sctp")
    {
        return Err(format!("invalid port {p:?}: use PORT or PORT/tcp|udp"));
    }
    Ok(format!("{num}/{proto}"))
}

/// A COPY destination made absolute against the workdir; a trailing `/` (or `.`) means "into".
pub(super) fn resolve_dest(dest: &str, workdir: &str) -> String {
    let into = dest.ends_with('/') || dest == "." || dest.ends_with("/.");
    let joined = if dest.starts_with('/') {
        dest.to_owned()
    } else {
        format!("{workdir}/{dest}")
    };
    let clean = format!("/{}", dockerignore::clean(&joined).unwrap_or_default());
    if into && clean != "/" {
        format!("{clean}/")
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_resolve_against_the_workdir() {
        assert_eq!(resolve_dest("/app/", "/"), "/app/");
        assert_eq!(resolve_dest("app", "/srv"), "/srv/app");
        assert_eq!(resolve_dest(".", "/srv"), "/srv/");
        assert_eq!(resolve_dest("./", "/"), "/");
        assert_eq!(resolve_dest("../x", "/srv/a"), "/srv/x");
    }

    #[test]
    fn ports_are_normalised() {
        assert_eq!(normalize_port("80").unwrap(), "80/tcp");
        assert_eq!(normalize_port("53/UDP").unwrap(), "53/udp");
        assert!(normalize_port("http").is_err());
        assert!(normalize_port("0").is_err());
    }

    #[test]
    fn shell_and_exec_forms() {
        assert_eq!(
            exec_or_shell(&Args::Text("echo $HOME".into()), None),
            ["/bin/sh", "-c", "echo $HOME"]
        );
        assert_eq!(exec_or_shell(&Args::Json(vec!["a".into()]), None), ["a"]);
        let bash = ["/bin/bash".to_owned(), "-c".to_owned()];
        assert_eq!(
            exec_or_shell(&Args::Text("x".into()), Some(&bash)),
            ["/bin/bash", "-c", "x"]
        );
    }
}
