//! One step after FROM: resolve the instruction (variables, sources, mounts), look its key up in
//! the cache, else run it (RUN, COPY/ADD) or apply it (metadata), and record the new state.

use std::path::PathBuf;

use oci_spec::image::HistoryBuilder;

use super::copy::{self, CopyFrom};
use super::dockerfile::{Args, Cmd, Dockerfile, Heredoc, Instruction};
use super::instruction::{resolve_dest, with_shell};
use super::run_mount::{self, RunMount};
use super::sources::expand_and_hash;
use super::{blocking, cache, fetch, line_err, metadata, stages, vars, Builder, State, StepResult};
use crate::error::AgentError;
use crate::image::oci;
use hoist_common::dockerignore;
use hoist_proto::NetworkMode;

/// What a step does besides changing the config.
pub(super) enum Work {
    Metadata,
    Run {
        argv: Vec<String>,
        env: Vec<String>,
        mounts: Vec<RunMount>,
        network: NetworkMode,
    },
    Copy(Box<copy::CopySpec>),
}

/// The argv of a shell-form RUN with heredocs, as BuildKit runs it: a RUN that is only a
/// heredoc runs its body (with the interpreter of its `#!` line, if any, reading it on stdin);
/// otherwise the shell gets the command line followed by the heredoc bodies, as a shell script
/// would have them.
pub(super) fn heredoc_argv(
    text: &str,
    heredocs: &[Heredoc],
    shell: Option<&[String]>,
) -> Vec<String> {
    let only_marker = heredocs.len() == 1 && {
        let t = text.trim().trim_start_matches("<<").trim_start_matches('-');
        t.trim_matches(['"', '\'']) == heredocs[0].name
    };
    if only_marker {
        let h = &heredocs[0];
        if let Some(first) = h.body.lines().next().and_then(|l| l.strip_prefix("#!")) {
            let end = format!("HOIST_{}_END", h.name);
            let rest = &h.body[h.body.find('\n').map_or(h.body.len(), |i| i + 1)..];
            return with_shell(&format!("{} <<'{end}'\n{rest}{end}\n", first.trim()), shell);
        }
        return with_shell(&h.body, shell);
    }
    let mut script = format!("{text}\n");
    for h in heredocs {
        script.push_str(&h.body);
        script.push_str(&h.name);
        script.push('\n');
    }
    with_shell(&script, shell)
}

impl Builder {
    /// Runs one instruction on `state`: `(new state, came from cache, layer made)`.
    pub(super) async fn step(
        &mut self,
        df: &Dockerfile,
        stage: usize,
        state: &State,
        inst: &Instruction,
    ) -> StepResult<(State, bool, Option<String>)> {
        let mut ours = state.container_config();
        // ARG changes the builder's scope, not the config; it still is a (cached) step with a
        // history entry, like Docker's classic builder.
        let arg_shown = match inst.cmd {
            Cmd::Arg => self.declare_arg(inst, Some(&ours))?,
            _ => Vec::new(),
        };
        let escape = self.escape;
        let lookup_cfg = ours.clone();
        // The instruction after substitution (for the cache key and the history), what else
        // decides the result (content), and the work.
        let mut content = None;
        let mut work = Work::Metadata;
        let resolved: String = if metadata::is_metadata(inst.cmd) {
            let mut cmd_set = self.cmd_set;
            let shown = {
                let lookup = |name: &str| self.lookup(name, Some(&lookup_cfg));
                metadata::apply(inst, &mut ours, &lookup, escape, &mut cmd_set)
                    .map_err(|e| line_err(inst, e))?
            };
            self.cmd_set = cmd_set;
            shown
        } else {
            match inst.cmd {
                Cmd::Arg => format!("ARG {}", arg_shown.join(" ")),
                Cmd::Run => {
                    let (shown, c, w) = self.plan_run(df, stage, inst, &ours).await?;
                    content = c;
                    work = w;
                    shown
                }
                Cmd::Copy | Cmd::Add => {
                    let (shown, c, w) = self.plan_copy(df, stage, inst, &ours).await?;
                    content = Some(c);
                    work = w;
                    shown
                }
                other => {
                    return Err(line_err(
                        inst,
                        format!("{} here is not supported", other.name()),
                    ))
                }
            }
        };

        let key = cache::step_key(&state.key, &resolved, content.as_deref());
        if !self.req.no_cache {
            if let Some(manifest) = self.cache.get(&key) {
                let store = self.store.clone();
                match blocking(move || Ok(store.load_built_image(&manifest)?)).await {
                    Ok((m, config)) => return Ok((State::from_loaded(key, m, config), true, None)),
                    Err(e) => tracing::info!(error = %e, "build cache entry unusable, rebuilding"),
                }
            }
        }

        let mut next = state.clone();
        next.key = key.clone();
        let layer = match work {
            Work::Metadata => None,
            Work::Run {
                argv,
                env,
                mounts,
                network,
            } => Some(
                self.run_step(df, stage, state, inst, argv, env, mounts, network, &ours)
                    .await?,
            ),
            Work::Copy(spec) => Some(self.copy_step(state, inst, *spec).await?),
        };
        let now = crate::runtime::now_rfc3339();
        next.config.set_config(Some(
            oci::to_oci_config(&ours).map_err(|e| line_err(inst, e))?,
        ));
        next.docker = oci::docker_extensions(&ours);
        let mut history = next.config.history().clone().unwrap_or_default();
        let mut entry = HistoryBuilder::default()
            .created(now.clone())
            .created_by(resolved)
            .comment("hoist build");
        if layer.is_none() {
            entry = entry.empty_layer(true);
        }
        history.push(
            entry
                .build()
                .map_err(|e| AgentError::internal("history", e))?,
        );
        next.config.set_history(Some(history));
        next.config.set_created(Some(now));
        let made = layer.as_ref().map(|l| l.diff_id.clone());
        if let Some(l) = layer {
            next.config.rootfs_mut().diff_ids_mut().push(l.diff_id);
            next.layers.push(l.descriptor);
        }
        let (store, cfg, layers, cache, k) = (
            self.store.clone(),
            next.file(),
            next.layers.clone(),
            self.cache.clone(),
            key,
        );
        blocking(move || -> StepResult<()> {
            let manifest = store.write_built_image(&cfg, layers)?;
            cache
                .put(&k, &manifest)
                .map_err(|e| AgentError::internal("write build cache", e))
        })
        .await?;
        Ok((next, false, made))
    }

    /// The state a `--from` names, seen from `stage`: an earlier stage's, or an image's.
    pub(super) async fn state_named(
        &self,
        df: &Dockerfile,
        stage: usize,
        inst: &Instruction,
        from: &str,
    ) -> StepResult<State> {
        match stages::resolve(df, stage, from).map_err(|e| line_err(inst, e))? {
            stages::Source::Stage(i) => self.stages.get(&i).cloned().ok_or_else(|| {
                line_err(
                    inst,
                    format!("stage {from:?} was not built (internal order error)"),
                )
            }),
            stages::Source::Image(name) => self.image_state(inst, &name).await,
        }
    }

    /// RUN: argv (shell form, heredocs), build-arg environment, mounts, network.
    async fn plan_run(
        &mut self,
        df: &Dockerfile,
        stage: usize,
        inst: &Instruction,
        ours: &hoist_proto::ImageConfig,
    ) -> StepResult<(String, Option<String>, Work)> {
        let shell = ours.shell.as_deref();
        let argv = match (&inst.args, inst.heredocs.is_empty()) {
            (Args::Text(t), false) => heredoc_argv(t, &inst.heredocs, shell),
            (args, _) => super::instruction::exec_or_shell(args, shell),
        };
        // Build args reach RUN as environment (not persisted in the image), so their values
        // are part of the key.
        let arg_env: Vec<String> = self
            .args
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
            .filter(|kv| {
                let key = kv.split('=').next().unwrap_or_default();
                !ours.env.iter().any(|e| e.split('=').next() == Some(key))
            })
            .collect();
        let lookup = |name: &str| self.lookup(name, Some(ours));
        let workdir = ours.working_dir.clone().unwrap_or_else(|| "/".into());
        let mut mounts = Vec::new();
        let mut shown_mounts = Vec::new();
        let mut content = Vec::new();
        for spec in inst.flag_all("mount") {
            let spec =
                vars::process_word(spec, &lookup, self.escape).map_err(|e| line_err(inst, e))?;
            let mut m = run_mount::parse(&spec).map_err(|e| line_err(inst, e))?;
            let raw_target = m.target.clone();
            m.target = run_mount::absolute_target(&m.target, &workdir).ok_or_else(|| {
                line_err(
                    inst,
                    format!("--mount target={}: outside the container's root", m.target),
                )
            })?;
            // A cache's id defaults to its target, as a path in the image.
            if m.kind == run_mount::MountKind::Cache && m.id == raw_target {
                m.id = m.target.clone();
            }
            shown_mounts.push(format!("--mount={spec}"));
            match (m.kind, &m.from) {
                (run_mount::MountKind::Bind, None) => {
                    let ctx = self.context.clone();
                    let src = if m.source.is_empty() {
                        ".".to_owned()
                    } else {
                        m.source.clone()
                    };
                    let (_, hash) = blocking(move || expand_and_hash(&ctx, &[src], &[]))
                        .await
                        .map_err(|e| line_err(inst, format!("--mount source: {e}")))?;
                    content.push(format!("bind:{}:{hash}", m.target));
                }
                (run_mount::MountKind::Bind, Some(from)) => {
                    let s = self.state_named(df, stage, inst, from).await?;
                    content.push(format!("bind:{}:{}", m.target, s.key));
                }
                _ => {}
            }
            mounts.push(m);
        }
        let network = match inst.flag("network") {
            Some("none") => NetworkMode::None,
            _ => self.req.network,
        };
        let mut shown = "RUN ".to_owned();
        if let Some(n) = inst.flag("network") {
            shown.push_str(&format!("--network={n} "));
        }
        for m in &shown_mounts {
            shown.push_str(m);
            shown.push(' ');
        }
        if !arg_env.is_empty() {
            shown.push_str(&format!("|{} ", arg_env.join(" ")));
        }
        shown.push_str(&serde_json::to_string(&argv).unwrap_or_default());
        let content = (!content.is_empty()).then(|| content.join("\n"));
        Ok((
            shown,
            content,
            Work::Run {
                argv,
                env: arg_env,
                mounts,
                network,
            },
        ))
    }

    /// COPY/ADD: where the sources are (context, heredocs, downloads, a stage, an image), the
    /// destination, and the content that decides the result.
    async fn plan_copy(
        &mut self,
        df: &Dockerfile,
        stage: usize,
        inst: &Instruction,
        ours: &hoist_proto::ImageConfig,
    ) -> StepResult<(String, String, Work)> {
        let add = inst.cmd == Cmd::Add;
        let escape = self.escape;
        let (mut words, chown, from, excludes) = {
            let lookup = |name: &str| self.lookup(name, Some(ours));
            let words = match &inst.args {
                Args::Json(v) => v
                    .iter()
                    .map(|w| vars::process_word(w, &lookup, escape))
                    .collect::<Result<Vec<_>, _>>(),
                Args::Text(t) => vars::process_words(t, &lookup, escape),
            }
            .map_err(|e| line_err(inst, e))?;
            let word = |raw: &str| vars::process_word(raw.trim(), &lookup, escape);
            let chown = inst
                .flag("chown")
                .map(word)
                .transpose()
                .map_err(|e| line_err(inst, e))?;
            let from = inst
                .flag("from")
                .map(word)
                .transpose()
                .map_err(|e| line_err(inst, e))?;
            let excludes = inst
                .flag_all("exclude")
                .into_iter()
                .map(word)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| line_err(inst, e))?;
            (words, chown, from, excludes)
        };
        if words.len() < 2 {
            return Err(line_err(
                inst,
                format!("{} needs a source and a destination", inst.cmd.name()),
            ));
        }
        let dest_raw = words.pop().unwrap_or_default();
        let workdir = ours.working_dir.clone().unwrap_or_else(|| "/".into());
        let dest = resolve_dest(&dest_raw, &workdir);
        let chmod = inst
            .flag("chmod")
            .map(|m| {
                u32::from_str_radix(m, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| line_err(inst, format!("--chmod={m}: not an octal mode")))
            })
            .transpose()?;
        let parents = inst.flag_set("parents");

        let heredoc_words: Vec<&String> = words.iter().filter(|w| w.starts_with("<<")).collect();
        let url_words: Vec<&String> = words.iter().filter(|w| fetch::is_url(w)).collect();
        if url_words.is_empty() && inst.flag("checksum").is_some() {
            return Err(line_err(inst, "ADD --checksum only applies to URL sources"));
        }
        if !url_words.is_empty() && from.is_some() {
            return Err(line_err(inst, "COPY --from cannot copy URLs"));
        }
        let special = heredoc_words.len() + url_words.len();
        if special > 0 && special != words.len() {
            return Err(line_err(
                inst,
                format!(
                    "{} cannot mix heredocs or URLs with other sources in one instruction",
                    inst.cmd.name()
                ),
            ));
        }

        let (copy_from, sources, content, extract) = if !heredoc_words.is_empty() {
            // Heredocs become files named by their delimiter, in a directory of their own.
            let dir = self.scratch_dir()?.join(format!("heredoc-{}", inst.line));
            std::fs::create_dir_all(&dir).map_err(|e| AgentError::internal("heredoc dir", e))?;
            let mut names = Vec::new();
            for h in &inst.heredocs {
                let body = if h.expand {
                    let lookup = |name: &str| self.lookup(name, Some(ours));
                    vars::expand_text(&h.body, &lookup, escape).map_err(|e| line_err(inst, e))?
                } else {
                    h.body.clone()
                };
                std::fs::write(dir.join(&h.name), body)
                    .map_err(|e| AgentError::internal("write heredoc", e))?;
                set_mode(&dir.join(&h.name), 0o644)?;
                names.push(h.name.clone());
            }
            let d = dir.clone();
            let (sources, hash) = blocking(move || expand_and_hash(&d, &names, &[]))
                .await
                .map_err(|e| line_err(inst, e))?;
            (CopyFrom::Context(dir), sources, hash, false)
        } else if !url_words.is_empty() {
            let dir = self.scratch_dir()?.join(format!("add-{}", inst.line));
            std::fs::create_dir_all(&dir).map_err(|e| AgentError::internal("download dir", e))?;
            let mut names = Vec::new();
            let mut digests = Vec::new();
            for url in url_words.iter().map(|u| u.to_string()).collect::<Vec<_>>() {
                let d = self.fetch(inst, &url).await?;
                let target = dir.join(&d.name);
                let _ = std::fs::remove_file(&target);
                std::fs::hard_link(&d.path, &target)
                    .or_else(|_| std::fs::copy(&d.path, &target).map(|_| ()))
                    .map_err(|e| AgentError::internal("place download", e))?;
                // Docker gives a downloaded file mode 600.
                set_mode(&target, 0o600)?;
                names.push(d.name.clone());
                digests.push(format!("{url}={}", d.digest));
            }
            (CopyFrom::Context(dir), names, digests.join("\n"), false)
        } else if let Some(from) = &from {
            let src = self.state_named(df, stage, inst, from).await?;
            let lowers = self.readonly_lowers(&src)?;
            let mut sources = Vec::new();
            for w in &words {
                sources.push(dockerignore::clean(w).ok_or_else(|| {
                    line_err(
                        inst,
                        format!("source {w:?} is outside the root of {from:?}"),
                    )
                })?);
            }
            let mountpoint = PathBuf::new(); // set by copy_step
            (
                CopyFrom::Layers { lowers, mountpoint },
                sources,
                format!("from:{}", src.key),
                false,
            )
        } else {
            let ctx = self.context.clone();
            let srcs = words.clone();
            let ex = excludes.clone();
            let (sources, hash) = blocking(move || expand_and_hash(&ctx, &srcs, &ex))
                .await
                .map_err(|e| line_err(inst, e))?;
            (CopyFrom::Context(self.context.clone()), sources, hash, add)
        };

        let mut shown = inst.cmd.name().to_owned();
        if let Some(f) = &from {
            shown.push_str(&format!(" --from={f}"));
        }
        if let Some(c) = &chown {
            shown.push_str(&format!(" --chown={c}"));
        }
        if let Some(m) = chmod {
            shown.push_str(&format!(" --chmod={m:o}"));
        }
        if parents {
            shown.push_str(" --parents");
        }
        for e in &excludes {
            shown.push_str(&format!(" --exclude={e}"));
        }
        shown.push_str(&format!(" {} {dest}", words.join(" ")));
        let spec = copy::CopySpec {
            lowers: Vec::new(),
            upper: PathBuf::new(),
            work: PathBuf::new(),
            mountpoint: PathBuf::new(),
            from: copy_from,
            sources,
            dest,
            chown,
            chmod,
            extract_archives: extract,
            parents,
            excludes,
        };
        Ok((shown, content, Work::Copy(Box::new(spec))))
    }
}

fn set_mode(path: &std::path::Path, mode: u32) -> StepResult<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| AgentError::internal(format!("chmod {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(name: &str, body: &str) -> Heredoc {
        Heredoc {
            name: name.into(),
            body: body.into(),
            expand: true,
        }
    }

    #[test]
    fn a_run_that_is_only_a_heredoc_runs_its_body() {
        assert_eq!(
            heredoc_argv("<<EOF", &[doc("EOF", "echo a\necho b\n")], None),
            ["/bin/sh", "-c", "echo a\necho b\n"]
        );
        assert_eq!(
            heredoc_argv(
                "<<-\"EOF\"",
                &[doc("EOF", "#!/usr/bin/env python3\nprint(1)\n")],
                None
            ),
            [
                "/bin/sh",
                "-c",
                "/usr/bin/env python3 <<'HOIST_EOF_END'\nprint(1)\nHOIST_EOF_END\n"
            ]
        );
    }

    #[test]
    fn a_command_with_heredocs_gets_them_as_a_script_would() {
        assert_eq!(
            heredoc_argv(
                "cat <<A > /a && cat <<B > /b",
                &[doc("A", "one\n"), doc("B", "two\n")],
                None
            ),
            [
                "/bin/sh",
                "-c",
                "cat <<A > /a && cat <<B > /b\none\nA\ntwo\nB\n"
            ]
        );
    }
}
