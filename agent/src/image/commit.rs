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
use oci_spec::image::HistoryBuilder;

use super::build::dockerfile;
use super::build::instruction::complete_history;
use super::build::{layer, metadata};
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
/// create request `spec` (in a user namespace of host ids `ids`, mapped back). Blocking.
pub fn commit(
    store: &ImageStore,
    upper: &Path,
    image_id: &str,
    spec: &CreateContainer,
    ids: Option<crate::runtime::userns::IdRange>,
    req: &CommitRequest,
) -> Result<CommitResult, AgentError> {
    let reference = Reference::parse(&req.reference).map_err(ImageError::from)?;
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
    let stats = layer::write_diff(upper, &lowers, ids, tar.path())
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
        // Replaced in place, so the image's order stays.
        let key = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
        match c
            .env
            .iter_mut()
            .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
        {
            Some(e) => *e = kv.clone(),
            None => c.env.push(kv.clone()),
        }
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

/// Applies `--change` values to a config, in order, with the builder's rules for each
/// instruction ([`metadata::apply`]); one value may hold several lines. Refuses what
/// `docker commit` refuses, naming the change.
pub fn apply_changes(config: &mut ImageConfig, changes: &[String]) -> Result<(), String> {
    let mut cmd_set = false;
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
        let instructions = &df.stages[0].instructions;
        if instructions.is_empty() {
            return Err(bad("no instruction"));
        }
        for inst in instructions {
            let keyword = inst.cmd.name();
            if !CHANGE_INSTRUCTIONS.contains(&keyword) {
                return Err(bad(&format!(
                    "{keyword} cannot be changed by a commit (allowed: {})",
                    CHANGE_INSTRUCTIONS.join(", ")
                )));
            }
            // Variables resolve against the config's ENV so far, as in a Dockerfile.
            let env = config.env.clone();
            let lookup = |name: &str| {
                let prefix = format!("{name}=");
                env.iter()
                    .rev()
                    .find_map(|e| e.strip_prefix(&prefix).map(str::to_owned))
            };
            metadata::apply(inst, config, &lookup, '\\', &mut cmd_set)
                .map_err(|m| format!("invalid --change {:?}: {m}", inst.text))?;
        }
    }
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
        assert!(e.contains("unterminated double quote"), "{e}");
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
