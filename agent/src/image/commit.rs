//! `hoist commit`: a container's writable layer becomes a new image, as `docker commit` makes it.
//!
//! The container's overlay upper directory is exactly what it changed; `build::layer` turns it
//! into an OCI layer tar (whiteouts, opaque directories, runtime mount points left out) and the
//! store keeps it like a built layer. The new image is the container's image plus that layer
//! (none when nothing changed, as Docker does for an empty diff), with:
//!
//! - the config Docker gives a committed image: the image's, with what the container was run
//!   with on top (command, entrypoint, env, workdir, user, labels, stop signal, published
//!   ports), then the `--change` instructions applied ([`apply_changes`]);
//! - a history entry `created_by: "hoist commit"` whose comment is the commit message.
//!
//! A running container is not paused (Docker pauses it by default): its upper directory is read
//! as it is, so a file the container writes during the commit may be caught half-written. Commit
//! a stopped container for a consistent image.
//!
//! The pure parts (the config of the container, each change) are tested directly; the rest is
//! store calls.

use std::path::Path;

use hoist_proto::{CommitRequest, CommitResult, CreateContainer, ImageConfig};
use oci_spec::image::{HistoryBuilder, ImageConfiguration};

use super::build::dockerfile::{self, Args};
use super::build::layer;
use super::{oci, ImageError, ImageStore, Reference};
use crate::error::AgentError;

/// The instructions `docker commit --change` accepts.
pub const CHANGE_INSTRUCTIONS: &[&str] = &[
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "LABEL",
    "ONBUILD",
    "USER",
    "VOLUME",
    "WORKDIR",
    "STOPSIGNAL",
];

/// Commits the container whose writable layer is `upper`, made from image `image_id` with the
/// create request `spec`. Blocking.
pub fn commit(
    store: &ImageStore,
    upper: &Path,
    image_id: &str,
    spec: &CreateContainer,
    req: &CommitRequest,
) -> Result<CommitResult, AgentError> {
    let reference = Reference::parse(&req.reference)?;
    let manifest = store.manifest_digest_of(image_id).map_err(|e| match e {
        ImageError::NotFound(_) => AgentError::NotFound(format!(
            "the container's image {image_id} is no longer on this host"
        )),
        e => e.into(),
    })?;
    let (base_manifest, base) = store.load_built_image(&manifest)?;
    // Everything that can be refused is checked before the layer is written.
    let mut config = container_config(&base.container_config(), spec);
    apply_changes(&mut config, &req.changes).map_err(AgentError::Invalid)?;

    let mut lowers = Vec::new();
    for diff_id in base.image.rootfs().diff_ids() {
        lowers.push(store.snapshot_path(diff_id)?);
    }
    let tar = tempfile::Builder::new()
        .prefix("commit-")
        .suffix(".tar")
        .tempfile_in(&store.tmp)
        .map_err(|e| AgentError::internal("create layer file", e))?;
    let stats = layer::write_diff(upper, &lowers, tar.path())
        .map_err(|e| AgentError::internal("write the container's layer", e))?;
    let added = if stats.entries + stats.whiteouts > 0 {
        Some(store.add_built_layer(tar.path())?)
    } else {
        None
    };
    drop(tar);

    let mut image = base.image;
    let now = crate::runtime::now_rfc3339();
    complete_history(&mut image)?;
    image.set_config(Some(oci::to_oci_config(&config)?));
    let mut entry = HistoryBuilder::default()
        .created(now.clone())
        .created_by("hoist commit");
    if let Some(m) = req.message.as_ref().filter(|m| !m.is_empty()) {
        entry = entry.comment(m.clone());
    }
    if let Some(a) = req.author.as_ref().filter(|a| !a.is_empty()) {
        entry = entry.author(a.clone());
        image.set_author(Some(a.clone()));
    }
    if added.is_none() {
        entry = entry.empty_layer(true);
    }
    let mut history = image.history().clone().unwrap_or_default();
    history.push(
        entry
            .build()
            .map_err(|e| AgentError::internal("history", e))?,
    );
    image.set_history(Some(history));
    image.set_created(Some(now));
    let mut layers = base_manifest.layers().clone();
    if let Some(l) = &added {
        image.rootfs_mut().diff_ids_mut().push(l.diff_id.clone());
        layers.push(l.descriptor.clone());
    }
    let file = oci::ConfigFile {
        image,
        docker: oci::docker_extensions(&config),
    };
    let manifest = store.write_built_image(&file, layers)?;
    let summary = store.name_built_image(&reference.to_string(), &manifest)?;
    Ok(CommitResult {
        id: summary.id,
        reference: reference.to_string(),
        layer_added: added.is_some(),
    })
}

/// The config Docker gives a committed image before `--change`: the image's, with the
/// container's own settings on top (Docker commits the container's config, which `run` made
/// from the image's and its flags). Hoist's bookkeeping labels (`hoist.*`) stay behind.
pub fn container_config(image: &ImageConfig, spec: &CreateContainer) -> ImageConfig {
    let mut c = image.clone();
    if let Some(e) = &spec.entrypoint {
        c.entrypoint = Some(e.clone());
        // An explicit entrypoint drops the image's CMD, as it did for the container.
        c.cmd = None;
    }
    if !spec.cmd.is_empty() {
        c.cmd = Some(spec.cmd.clone());
    }
    for kv in &spec.env {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        set_env(&mut c.env, k, v);
    }
    if let Some(w) = spec.workdir.as_ref().filter(|w| !w.is_empty()) {
        c.working_dir = Some(w.clone());
    }
    if let Some(u) = spec.user.as_ref().filter(|u| !u.is_empty()) {
        c.user = Some(u.clone());
    }
    for (k, v) in &spec.labels {
        if !k.starts_with("hoist.") {
            c.labels.insert(k.clone(), v.clone());
        }
    }
    if let Some(s) = &spec.stop_signal {
        c.stop_signal = Some(s.clone());
    }
    for p in &spec.ports {
        let port = format!("{}/{}", p.container_port, p.protocol);
        if !c.exposed_ports.contains(&port) {
            c.exposed_ports.push(port);
        }
    }
    c.exposed_ports.sort();
    c
}

/// One `--change` instruction, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The keyword, upper case (`CMD`).
    pub keyword: String,
    pub args: Args,
    /// The text after the keyword, as written.
    pub rest: String,
}

/// Parses `--change` values with the Dockerfile parser (one value may hold several lines) and
/// refuses what `docker commit` refuses.
pub fn parse_changes(changes: &[String]) -> Result<Vec<Change>, String> {
    let mut out = Vec::new();
    for change in changes {
        let bad = |m: &str| format!("invalid --change {change:?}: {m}");
        let df = dockerfile::parse(&format!("FROM scratch\n{change}")).map_err(|e| {
            let messages: Vec<&str> = e.0.iter().map(|p| p.message.as_str()).collect();
            bad(&messages.join("; "))
        })?;
        if df.stages.len() != 1 {
            return Err(bad(&format!(
                "FROM cannot be changed by a commit (allowed: {})",
                CHANGE_INSTRUCTIONS.join(", ")
            )));
        }
        let mut found = false;
        for inst in &df.stages[0].instructions {
            let keyword = inst.cmd.name().to_owned();
            if !CHANGE_INSTRUCTIONS.contains(&keyword.as_str()) {
                return Err(bad(&format!(
                    "{keyword} cannot be changed by a commit (allowed: {})",
                    CHANGE_INSTRUCTIONS.join(", ")
                )));
            }
            let rest = inst
                .text
                .get(keyword.len()..)
                .unwrap_or_default()
                .trim()
                .to_owned();
            out.push(Change {
                keyword,
                args: inst.args.clone(),
                rest,
            });
            found = true;
        }
        if !found {
            return Err(bad("no instruction"));
        }
    }
    Ok(out)
}

/// Applies `--change` values to a config, in order, as Docker's builder would.
pub fn apply_changes(config: &mut ImageConfig, changes: &[String]) -> Result<(), String> {
    let parsed = parse_changes(changes)?;
    let mut cmd_set = false;
    for c in &parsed {
        apply_change(config, c, &mut cmd_set)
            .map_err(|m| format!("invalid --change \"{} {}\": {m}", c.keyword, c.rest))?;
    }
    Ok(())
}

/// One change. `cmd_set` says whether a CMD came earlier (an ENTRYPOINT drops the image's CMD,
/// not one set by the same commit).
pub fn apply_change(c: &mut ImageConfig, ch: &Change, cmd_set: &mut bool) -> Result<(), String> {
    let text = || match &ch.args {
        Args::Text(t) => Ok(t.as_str()),
        Args::Json(_) => Err(format!("{} does not take a JSON array", ch.keyword)),
    };
    let one_word = |t: &str, env: &[String]| -> Result<String, String> {
        let w = words(t.trim(), env, false)?.pop().unwrap_or_default();
        if w.is_empty() {
            return Err(format!("{} needs an argument", ch.keyword));
        }
        Ok(w)
    };
    match ch.keyword.as_str() {
        "CMD" | "ENTRYPOINT" => {
            let argv = match &ch.args {
                Args::Json(v) => v.clone(),
                Args::Text(t) => {
                    let mut sh = c
                        .shell
                        .clone()
                        .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
                    sh.push(t.clone());
                    sh
                }
            };
            if ch.keyword == "CMD" {
                c.cmd = Some(argv);
                *cmd_set = true;
            } else {
                c.entrypoint = Some(argv);
                if !*cmd_set {
                    c.cmd = None;
                }
            }
        }
        "ENV" => {
            for (k, v) in key_values(text()?, &c.env)? {
                set_env(&mut c.env, &k, &v);
            }
        }
        "LABEL" => {
            for (k, v) in key_values(text()?, &c.env)? {
                c.labels.insert(k, v);
            }
        }
        "EXPOSE" => {
            let ports = words(text()?, &c.env, true)?;
            if ports.is_empty() {
                return Err("EXPOSE needs a port".into());
            }
            for p in ports {
                let p = normalize_port(&p)?;
                if !c.exposed_ports.contains(&p) {
                    c.exposed_ports.push(p);
                }
            }
            c.exposed_ports.sort();
        }
        "USER" => c.user = Some(one_word(text()?, &c.env)?),
        "WORKDIR" => {
            let w = one_word(text()?, &c.env)?;
            let joined = if w.starts_with('/') {
                w
            } else {
                format!("{}/{w}", c.working_dir.as_deref().unwrap_or("/"))
            };
            let clean = hoist_common::dockerignore::clean(&joined).unwrap_or_default();
            c.working_dir = Some(format!("/{clean}"));
        }
        "STOPSIGNAL" => {
            let s = one_word(text()?, &c.env)?;
            hoist_proto::signal::parse_signal(&s)?;
            c.stop_signal = Some(s);
        }
        "VOLUME" => {
            let paths = match &ch.args {
                Args::Json(v) => v.clone(),
                Args::Text(t) => words(t, &c.env, true)?,
            };
            if paths.is_empty() || paths.iter().any(|p| p.trim().is_empty()) {
                return Err("VOLUME needs paths".into());
            }
            for p in paths {
                if !c.volumes.contains(&p) {
                    c.volumes.push(p);
                }
            }
            c.volumes.sort();
        }
        "ONBUILD" => {
            let trigger = ch.rest.trim();
            let first = trigger
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            match first.as_str() {
                "" => return Err("ONBUILD needs an instruction".into()),
                "ONBUILD" | "FROM" | "MAINTAINER" => {
                    return Err(format!("{first} is not allowed as an ONBUILD trigger"))
                }
                _ => c.on_build.push(trigger.to_owned()),
            }
        }
        other => {
            return Err(format!(
                "{other} cannot be changed by a commit (allowed: {})",
                CHANGE_INSTRUCTIONS.join(", ")
            ))
        }
    }
    Ok(())
}

/// Sets `key=value` in an env list, replacing an earlier value of `key`.
fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let prefix = format!("{key}=");
    env.retain(|e| !e.starts_with(&prefix) && e != key);
    env.push(format!("{key}={value}"));
}

/// `80` → `80/tcp`; `53/udp` stays (the builder's rule).
fn normalize_port(p: &str) -> Result<String, String> {
    let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if num.parse::<u16>().map_or(true, |n| n == 0)
        || !matches!(proto.as_str(), "tcp" | "udp" | "sctp")
    {
        return Err(format!("invalid port {p:?}: use PORT or PORT/tcp|udp"));
    }
    Ok(format!("{num}/{proto}"))
}

/// `ENV`/`LABEL` arguments: `K=V K2="v 2"`, or the old `KEY value with spaces` form.
fn key_values(s: &str, env: &[String]) -> Result<Vec<(String, String)>, String> {
    let s = s.trim();
    let first = s.split_whitespace().next().unwrap_or_default();
    if first.is_empty() {
        return Err("needs KEY=VALUE".into());
    }
    if !first.contains('=') {
        let (key, rest) = s
            .split_once(char::is_whitespace)
            .ok_or_else(|| format!("{key:?} needs a value (KEY=VALUE or KEY VALUE)", key = s))?;
        let value = words(rest.trim(), env, false)?.pop().unwrap_or_default();
        return Ok(vec![(key.to_owned(), value)]);
    }
    words(s, env, true)?
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => Err(format!("{w:?} is not KEY=VALUE")),
        })
        .collect()
}

fn lookup(env: &[String], name: &str) -> Option<String> {
    let prefix = format!("{name}=");
    env.iter()
        .rev()
        .find_map(|e| e.strip_prefix(&prefix))
        .map(str::to_owned)
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

/// Docker's word processing for the changes that take words: `'...'` literal, `"..."` with `\"`,
/// `\\` and `\$`, a backslash escapes outside quotes, and `$VAR`, `${VAR}`, `${VAR:-default}`,
/// `${VAR:+alternative}` from the config's env. `split`: whitespace outside quotes separates
/// words (else the whole text is one word).
fn words(s: &str, env: &[String], split: bool) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if split && c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\\' => {
                in_word = true;
                cur.push(chars.next().unwrap_or('\\'));
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => cur.push(ch),
                        None => return Err(format!("unterminated quote in {s:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.peek() {
                            Some(&n) if matches!(n, '"' | '\\' | '$') => {
                                cur.push(n);
                                chars.next();
                            }
                            _ => cur.push('\\'),
                        },
                        Some('$') => cur.push_str(&variable(&mut chars, env, s)?),
                        Some(ch) => cur.push(ch),
                        None => return Err(format!("unterminated quote in {s:?}")),
                    }
                }
            }
            '$' => {
                let v = variable(&mut chars, env, s)?;
                in_word |= !v.is_empty();
                cur.push_str(&v);
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word || !split {
        out.push(cur);
    }
    Ok(out)
}

/// The value of the variable after a `$` (a lone `$` stays itself).
fn variable(chars: &mut Chars<'_>, env: &[String], whole: &str) -> Result<String, String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    match chars.peek().copied() {
        Some('{') => {
            chars.next();
            let mut name = String::new();
            loop {
                match chars.next() {
                    Some('}') if !name.is_empty() => {
                        return Ok(lookup(env, &name).unwrap_or_default())
                    }
                    Some(':') if !name.is_empty() => {
                        let op = chars.next();
                        let mut word = String::new();
                        loop {
                            match chars.next() {
                                Some('}') => break,
                                Some(c) => word.push(c),
                                None => return Err(format!("missing }} in {whole:?}")),
                            }
                        }
                        let value = lookup(env, &name).filter(|v| !v.is_empty());
                        return match op {
                            Some('-') => Ok(value.unwrap_or(word)),
                            Some('+') => Ok(value.map(|_| word).unwrap_or_default()),
                            _ => Err(format!(
                                "unsupported substitution in {whole:?}: use ${{VAR}}, ${{VAR:-x}} or ${{VAR:+x}}"
                            )),
                        };
                    }
                    Some(c) if is_name(c) => name.push(c),
                    _ => return Err(format!("bad substitution in {whole:?}")),
                }
            }
        }
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {
            let mut name = String::new();
            while let Some(&c) = chars.peek() {
                if !is_name(c) {
                    break;
                }
                name.push(c);
                chars.next();
            }
            Ok(lookup(env, &name).unwrap_or_default())
        }
        _ => Ok("$".into()),
    }
}

/// A base image without history for some of its layers (an imported rootfs has none) gets an
/// entry per such layer first, so that the non-empty entries still match the layers.
fn complete_history(config: &mut ImageConfiguration) -> Result<(), AgentError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_proto::{PortMapping, Protocol};

    fn image() -> ImageConfig {
        ImageConfig {
            env: vec!["PATH=/bin".into(), "MODE=prod".into()],
            cmd: Some(vec!["sh".into()]),
            working_dir: Some("/srv".into()),
            labels: [("from".to_owned(), "image".to_owned())].into(),
            ..ImageConfig::default()
        }
    }

    fn changed(changes: &[&str]) -> Result<ImageConfig, String> {
        let mut c = image();
        let owned: Vec<String> = changes.iter().map(|s| s.to_string()).collect();
        apply_changes(&mut c, &owned)?;
        Ok(c)
    }

    #[test]
    fn the_container_settings_go_on_top_of_the_image() {
        let spec = CreateContainer {
            image: "busybox".into(),
            cmd: vec!["sh".into(), "-c".into(), "echo hi > /x".into()],
            env: vec!["MODE=test".into(), "EXTRA=1".into()],
            user: Some("1000".into()),
            labels: [
                ("team".to_owned(), "a".to_owned()),
                ("hoist.task".to_owned(), "t1".to_owned()),
            ]
            .into(),
            ports: vec![PortMapping {
                host_port: 8080,
                container_port: 80,
                protocol: Protocol::Tcp,
            }],
            ..CreateContainer::default()
        };
        let c = container_config(&image(), &spec);
        assert_eq!(c.cmd.unwrap(), ["sh", "-c", "echo hi > /x"]);
        assert_eq!(c.env, ["PATH=/bin", "MODE=test", "EXTRA=1"]);
        assert_eq!(c.user.as_deref(), Some("1000"));
        assert_eq!(c.working_dir.as_deref(), Some("/srv"));
        assert_eq!(c.exposed_ports, ["80/tcp"]);
        assert_eq!(
            c.labels.keys().collect::<Vec<_>>(),
            ["from", "team"],
            "hoist.* labels are the agent's own"
        );
        // An entrypoint without a command drops the image's CMD, as it did when the container ran.
        let spec = CreateContainer {
            entrypoint: Some(vec!["/bin/app".into()]),
            ..CreateContainer::default()
        };
        let c = container_config(&image(), &spec);
        assert_eq!(
            (c.entrypoint.unwrap(), c.cmd),
            (vec!["/bin/app".into()], None)
        );
        // Nothing given: the image's config unchanged.
        assert_eq!(
            container_config(&image(), &CreateContainer::default()),
            image()
        );
    }

    #[test]
    fn cmd_and_entrypoint_in_both_forms() {
        let c = changed(&[r#"CMD ["cat", "/new.txt"]"#]).unwrap();
        assert_eq!(c.cmd.unwrap(), ["cat", "/new.txt"]);
        let c = changed(&["CMD echo $HOME"]).unwrap();
        assert_eq!(c.cmd.unwrap(), ["/bin/sh", "-c", "echo $HOME"]);
        // ENTRYPOINT alone drops the image's CMD; after a CMD of the same commit it keeps it.
        let c = changed(&[r#"ENTRYPOINT ["/app"]"#]).unwrap();
        assert_eq!((c.entrypoint.unwrap(), c.cmd), (vec!["/app".into()], None));
        let c = changed(&[r#"CMD ["-v"]"#, r#"ENTRYPOINT ["/app"]"#]).unwrap();
        assert_eq!(c.cmd.unwrap(), ["-v"]);
        // SHELL of the image is used for the shell form.
        let mut c = image();
        c.shell = Some(vec!["/bin/bash".into(), "-ec".into()]);
        apply_changes(&mut c, &["CMD make".into()]).unwrap();
        assert_eq!(c.cmd.unwrap(), ["/bin/bash", "-ec", "make"]);
    }

    #[test]
    fn env_and_label_with_quotes_and_substitution() {
        let c = changed(&[
            r#"ENV GREETING="hello world" NEXT=$MODE-2 BRACED=${MODE}x"#,
            "ENV OLD form with spaces",
            r#"LABEL org.example.name="demo app" plain=1"#,
            "ENV MODE=dev",
        ])
        .unwrap();
        assert_eq!(
            c.env,
            [
                "PATH=/bin",
                "GREETING=hello world",
                "NEXT=prod-2",
                "BRACED=prodx",
                "OLD=form with spaces",
                "MODE=dev"
            ]
        );
        assert_eq!(c.labels["org.example.name"], "demo app");
        assert_eq!(c.labels["plain"], "1");
        let c = changed(&[r"ENV A='$MODE' B=\$MODE C=${NOPE:-dflt} D=${MODE:+set}"]).unwrap();
        assert_eq!(&c.env[2..], ["A=$MODE", "B=$MODE", "C=dflt", "D=set"]);
    }

    #[test]
    fn the_other_instructions() {
        let c = changed(&[
            "EXPOSE 80 53/udp",
            "EXPOSE 80",
            "USER app:staff",
            "WORKDIR sub/../app",
            "STOPSIGNAL SIGQUIT",
        ])
        .unwrap();
        assert_eq!(c.exposed_ports, ["53/udp", "80/tcp"]);
        assert_eq!(c.user.as_deref(), Some("app:staff"));
        assert_eq!(c.working_dir.as_deref(), Some("/srv/app"));
        assert_eq!(c.stop_signal.as_deref(), Some("SIGQUIT"));
        let c = changed(&["WORKDIR /abs"]).unwrap();
        assert_eq!(c.working_dir.as_deref(), Some("/abs"));
    }

    /// VOLUME and ONBUILD through `apply_change` directly: whether the Dockerfile parser knows
    /// them is the parser's business.
    #[test]
    fn volume_and_onbuild() {
        let mut c = image();
        let mut cmd_set = false;
        let ch = |keyword: &str, args: Args, rest: &str| Change {
            keyword: keyword.into(),
            args,
            rest: rest.into(),
        };
        for change in [
            ch(
                "VOLUME",
                Args::Json(vec!["/data".into(), "/logs".into()]),
                r#"["/data", "/logs"]"#,
            ),
            ch("VOLUME", Args::Text("/cache /data".into()), "/cache /data"),
            ch(
                "ONBUILD",
                Args::Text("RUN echo built".into()),
                "RUN echo built",
            ),
        ] {
            apply_change(&mut c, &change, &mut cmd_set).unwrap();
        }
        assert_eq!(c.volumes, ["/cache", "/data", "/logs"]);
        assert_eq!(c.on_build, ["RUN echo built"]);
        let bad = ch("ONBUILD", Args::Text("FROM x".into()), "FROM x");
        assert!(apply_change(&mut c, &bad, &mut cmd_set)
            .unwrap_err()
            .contains("FROM is not allowed"));
    }

    #[test]
    fn refusals_say_which_change_and_why() {
        let e = changed(&["RUN rm -rf /"]).unwrap_err();
        assert!(e.contains("RUN cannot be changed by a commit"), "{e}");
        assert!(e.contains("\"RUN rm -rf /\""), "{e}");
        let e = changed(&["FROM busybox"]).unwrap_err();
        assert!(e.starts_with("invalid --change \"FROM busybox\""), "{e}");
        let e = changed(&["BOGUS x"]).unwrap_err();
        assert!(e.contains("unknown instruction"), "{e}");
        let e = changed(&["EXPOSE http"]).unwrap_err();
        assert!(e.contains("invalid port"), "{e}");
        let e = changed(&["STOPSIGNAL SIGNOPE"]).unwrap_err();
        assert!(e.contains("is not a signal"), "{e}");
        let e = changed(&[r#"ENV ["A=1"]"#]).unwrap_err();
        assert!(e.contains("does not take a JSON array"), "{e}");
        let e = changed(&["ENV A=\"open"]).unwrap_err();
        assert!(e.contains("unterminated quote"), "{e}");
        assert!(changed(&[""]).unwrap_err().contains("no instruction"));
    }

    #[test]
    fn one_value_may_hold_several_lines() {
        let c = changed(&["ENV A=1\nUSER nobody"]).unwrap();
        assert_eq!(c.user.as_deref(), Some("nobody"));
        assert!(c.env.contains(&"A=1".to_owned()));
    }

    #[test]
    fn volume_and_onbuild_through_the_parser() {
        let mut c = ImageConfig::default();
        apply_changes(
            &mut c,
            &[
                "VOLUME /data".into(),
                r#"VOLUME ["/logs"]"#.into(),
                "ONBUILD RUN echo hi".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.volumes, ["/data", "/logs"]);
        assert_eq!(c.on_build, ["RUN echo hi"]);
        for refused in ["HEALTHCHECK NONE", "SHELL [\"/bin/bash\", \"-c\"]"] {
            let e = apply_changes(&mut c, &[refused.into()]).unwrap_err();
            assert!(e.contains("cannot be changed by a commit"), "{e}");
        }
    }
}
