//! `hoist build`: a Dockerfile and a build context in, an OCI image in the content store out.
//!
//! Why it is shaped like this: every step maps an image *state* (config + layers) to the next one.
//! A state is stored as an unnamed manifest in the content store, and the cache maps a key over
//! everything that decides a step's result (`cache.rs`) to the state it produced. So a cached step
//! costs a lookup and a verified read, and the result of a build is simply the last state, named.
//!
//! - `dockerfile.rs` parses (pure), `vars.rs` substitutes (pure), `cache.rs` keys (pure + a dir).
//! - RUN runs in a container of Hoist's own runtime (the container manager, network `none` unless
//!   asked), on the state's layers, with the image config's env, user and workdir; the
//!   container's overlay upper directory is the step's change.
//! - COPY/ADD write through an overlay in a private mount namespace (`copy.rs`).
//! - `layer.rs` turns an upper directory into an OCI layer tar; the store keeps it like a pulled
//!   layer (gzip blob + unpacked snapshot).
//! - Metadata steps (ENV, LABEL, WORKDIR, USER, EXPOSE, CMD, ENTRYPOINT, STOPSIGNAL) change only
//!   the config and add an `empty_layer` history entry.

mod cache;
mod context;
mod copy;
pub mod dockerfile;
mod execute;
mod instruction;
pub(crate) mod layer;
mod sources;
mod vars;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use hoist_common::dockerignore;
use hoist_proto::{ApiError, BuildEvent, BuildRequest, BuildResult, ImageConfig};
use oci_spec::image::{
    Descriptor, HistoryBuilder, ImageConfiguration, ImageConfigurationBuilder, RootFsBuilder,
};
use tokio::sync::mpsc;

use self::cache::Cache;
use self::dockerfile::{Args, Cmd, Dockerfile, Instruction};
use self::instruction::{
    complete_history, exec_or_shell, normalize_port, quote_if_needed, resolve_dest,
};
use self::sources::expand_and_hash;
use super::pull;
use super::{oci, ImageStore};
use crate::containers::Manager;
use crate::error::AgentError;

pub use context::receive;
pub use dockerfile::ParseError;

/// Where the builder keeps its files under the agent's data dir.
pub fn build_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("build")
}

/// Removes what builds interrupted by an agent crash left in `build/tmp` (contexts, layer tars,
/// COPY scratch dirs). Called once at start-up, before any build can run.
pub fn clean_leftovers(data_dir: &Path) {
    let tmp = build_dir(data_dir).join("tmp");
    let Ok(entries) = std::fs::read_dir(&tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        if let Err(e) = removed {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove build leftover");
        }
    }
}

/// Parses the Dockerfile of a request: errors name the line.
pub fn parse(req: &BuildRequest) -> Result<Dockerfile, AgentError> {
    dockerfile::parse(&req.dockerfile).map_err(|e| AgentError::Invalid(e.to_string()))
}

/// Runs a build to completion, streaming events to `tx`; the last event is `Result` or `Error`.
pub async fn run(
    mgr: Arc<Manager>,
    store: Arc<ImageStore>,
    req: BuildRequest,
    df: Dockerfile,
    context: tempfile::TempDir,
    tx: mpsc::Sender<BuildEvent>,
) {
    let t0 = Instant::now();
    let dir = build_dir(&mgr.config.data_dir);
    let last = match Builder::new(mgr, store, &dir, req, &df, context.path(), tx.clone()) {
        Ok(mut b) => match b.build(&df, t0).await {
            Ok(result) => BuildEvent::Result(result),
            Err(e) => BuildEvent::Error(ApiError {
                code: e.code().into(),
                message: e.to_string(),
            }),
        },
        Err(e) => BuildEvent::Error(ApiError {
            code: e.code().into(),
            message: e.to_string(),
        }),
    };
    let _ = tx.send(last).await;
    let path = context.path().to_path_buf();
    if let Err(e) = tokio::task::spawn_blocking(move || context.close()).await {
        tracing::warn!(path = %path.display(), error = %e, "remove build context");
    }
}

/// The image state between steps.
#[derive(Debug, Clone)]
struct State {
    /// Cache key of the chain so far.
    key: String,
    config: ImageConfiguration,
    /// Docker's config fields OCI lacks (HEALTHCHECK, ONBUILD, SHELL).
    docker: oci::DockerExtensions,
    layers: Vec<Descriptor>,
}

impl State {
    /// The config containers (and RUN steps) get from this state.
    fn container_config(&self) -> ImageConfig {
        oci::ConfigFile {
            image: self.config.clone(),
            docker: self.docker.clone(),
        }
        .container_config()
    }

    fn file(&self) -> oci::ConfigFile {
        oci::ConfigFile {
            image: self.config.clone(),
            docker: self.docker.clone(),
        }
    }

    fn from_loaded(key: String, m: oci_spec::image::ImageManifest, c: oci::ConfigFile) -> Self {
        State {
            key,
            config: c.image,
            docker: c.docker,
            layers: m.layers().clone(),
        }
    }
}

struct Builder {
    mgr: Arc<Manager>,
    store: Arc<ImageStore>,
    cache: Cache,
    tmp: PathBuf,
    empty: PathBuf,
    context: PathBuf,
    req: BuildRequest,
    escape: char,
    tx: mpsc::Sender<BuildEvent>,
    /// ARGs declared so far → value (build arg, else default; `None`: declared without value).
    args: BTreeMap<String, Option<String>>,
    /// ARGs declared before FROM (usable in FROM, and as defaults when redeclared after it).
    meta_args: BTreeMap<String, Option<String>>,
    /// Whether this Dockerfile has set CMD (ENTRYPOINT resets only an inherited CMD).
    cmd_set: bool,
}

type StepResult<T> = Result<T, AgentError>;

/// `Dockerfile:N: message` as an invalid-request error.
fn line_err(inst: &Instruction, message: impl std::fmt::Display) -> AgentError {
    AgentError::Invalid(format!("Dockerfile:{}: {message}", inst.line))
}

impl Builder {
    fn new(
        mgr: Arc<Manager>,
        store: Arc<ImageStore>,
        dir: &Path,
        req: BuildRequest,
        df: &Dockerfile,
        context: &Path,
        tx: mpsc::Sender<BuildEvent>,
    ) -> StepResult<Self> {
        let io = |what: &str, e: std::io::Error| AgentError::internal(what, e);
        let cache = Cache::open(&dir.join("cache")).map_err(|e| io("open build cache", e))?;
        let tmp = dir.join("tmp");
        let empty = dir.join("empty");
        for d in [&tmp, &empty] {
            std::fs::create_dir_all(d).map_err(|e| io(&format!("create {}", d.display()), e))?;
        }
        Ok(Self {
            store,
            mgr,
            cache,
            tmp,
            empty,
            context: context.to_path_buf(),
            req,
            escape: df.escape,
            tx,
            args: BTreeMap::new(),
            meta_args: BTreeMap::new(),
            cmd_set: false,
        })
    }

    async fn emit(&self, ev: BuildEvent) {
        let _ = self.tx.send(ev).await;
    }

    /// A client that went away (Ctrl-C on `hoist build`) cancels the build: no further step
    /// starts, and a running RUN container is killed. Steps already done stay cached.
    fn check_cancelled(&self) -> StepResult<()> {
        if self.tx.is_closed() {
            return Err(AgentError::Conflict(
                "build cancelled: the client went away".into(),
            ));
        }
        Ok(())
    }

    async fn build(&mut self, df: &Dockerfile, t0: Instant) -> StepResult<BuildResult> {
        let steps: Vec<&Instruction> = df
            .instructions
            .iter()
            .skip_while(|i| i.cmd != Cmd::From)
            .collect();
        for inst in df.instructions.iter().take_while(|i| i.cmd != Cmd::From) {
            self.declare_arg(inst, None)?;
        }
        let total = steps.len();
        let mut state: Option<State> = None;
        let mut cached_steps = 0;
        for (n, inst) in steps.iter().enumerate() {
            self.check_cancelled()?;
            let t = Instant::now();
            self.emit(BuildEvent::Step {
                number: n + 1,
                total,
                instruction: inst.text.clone(),
            })
            .await;
            let (next, cached, layer) = match (&state, inst.cmd) {
                (None, Cmd::From) => (self.from(inst).await?, false, None),
                (Some(s), _) => self.step(s, inst).await?,
                (None, _) => return Err(line_err(inst, "expected FROM")),
            };
            if cached {
                cached_steps += 1;
                self.emit(BuildEvent::Cached).await;
            } else {
                self.emit(BuildEvent::Done {
                    layer,
                    seconds: t.elapsed().as_secs_f64(),
                })
                .await;
            }
            state = Some(next);
        }
        let state = state.ok_or_else(|| AgentError::Invalid("Dockerfile: no FROM".into()))?;
        let unused: Vec<&String> = self
            .req
            .build_args
            .keys()
            .filter(|k| !self.args.contains_key(*k) && !self.meta_args.contains_key(*k))
            .collect();
        if !unused.is_empty() {
            let names: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
            self.emit(BuildEvent::Warning(format!(
                "build args not consumed by any ARG: {}",
                names.join(", ")
            )))
            .await;
        }
        let (store, st, tags) = (self.store.clone(), state.clone(), self.req.tags.clone());
        let (manifest, id) = blocking(move || -> StepResult<(String, String)> {
            let manifest = store.write_built_image(&st.file(), st.layers.clone())?;
            for tag in &tags {
                store.name_built_image(tag, &manifest)?;
            }
            let (m, _) = store.load_built_image(&manifest)?;
            Ok((manifest, m.config().digest().to_string()))
        })
        .await?;
        Ok(BuildResult {
            id,
            manifest_digest: manifest,
            tags: self.req.tags.clone(),
            steps: total,
            cached_steps,
            layers: state.layers.len(),
            seconds: t0.elapsed().as_secs_f64(),
        })
    }

    /// Declares the ARGs of `inst`: before FROM (`config` None) into the meta scope, after it
    /// into the build's, where defaults see the ENV of the state so far.
    fn declare_arg(
        &mut self,
        inst: &Instruction,
        config: Option<&ImageConfig>,
    ) -> StepResult<Vec<String>> {
        let before_from = config.is_none();
        let Args::Text(raw) = &inst.args else {
            return Err(line_err(inst, "ARG takes NAME[=default]"));
        };
        let mut shown = Vec::new();
        let words = {
            let lookup = |name: &str| self.lookup(name, config);
            vars::process_words(raw, &lookup, self.escape).map_err(|e| line_err(inst, e))?
        };
        for word in words {
            let (name, default) = match word.split_once('=') {
                Some((n, d)) => (n.to_owned(), Some(d.to_owned())),
                None => (word.clone(), None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(line_err(inst, format!("invalid ARG name {name:?}")));
            }
            let inherited = if before_from {
                None
            } else {
                self.meta_args.get(&name).cloned().flatten()
            };
            let value = self
                .req
                .build_args
                .get(&name)
                .cloned()
                .or(default)
                .or(inherited);
            shown.push(match &value {
                Some(v) => format!("{name}={v}"),
                None => name.clone(),
            });
            if before_from {
                self.meta_args.insert(name, value);
            } else {
                self.args.insert(name, value);
            }
        }
        Ok(shown)
    }

    /// ENV of the state first (it wins over ARG, like Docker), then ARGs in scope.
    fn lookup(&self, name: &str, config: Option<&ImageConfig>) -> Option<String> {
        if let Some(c) = config {
            let prefix = format!("{name}=");
            if let Some(v) = c.env.iter().rev().find_map(|e| e.strip_prefix(&prefix)) {
                return Some(v.to_owned());
            }
        }
        match config {
            Some(_) => self.args.get(name).cloned().flatten(),
            None => self.meta_args.get(name).cloned().flatten(),
        }
    }

    async fn from(&mut self, inst: &Instruction) -> StepResult<State> {
        let Args::Text(raw) = &inst.args else {
            return Err(line_err(inst, "FROM takes an image name"));
        };
        let image = {
            let lookup = |name: &str| self.lookup(name, None);
            vars::process_word(raw.trim(), &lookup, self.escape).map_err(|e| line_err(inst, e))?
        };
        if image == "scratch" {
            let config = ImageConfigurationBuilder::default()
                .rootfs(
                    RootFsBuilder::default()
                        .typ("layers")
                        .diff_ids(Vec::<String>::new())
                        .build()
                        .map_err(|e| AgentError::internal("rootfs", e))?,
                )
                .build()
                .map_err(|e| AgentError::internal("image config", e))?;
            return Ok(State {
                key: cache::base_key(None),
                config,
                docker: Default::default(),
                layers: Vec::new(),
            });
        }
        let store = self.store.clone();
        let name = image.clone();
        let (progress, _ignored) = mpsc::unbounded_channel();
        let regs = self.mgr.config.registries();
        match pull::pull_if_missing(self.store.clone(), &regs, &image, progress).await {
            Ok(true) => {
                self.emit(BuildEvent::Output(hoist_proto::StreamChunk {
                    stream: Some("stdout".into()),
                    data: Some(format!(" ---> pulled base image {image}\n")),
                    time: None,
                    exit_code: None,
                }))
                .await
            }
            Ok(false) => {}
            Err(e) => {
                return Err(line_err(
                    inst,
                    format!(
                        "base image {image:?} is not on this host and could not be pulled: {e}"
                    ),
                ))
            }
        }
        let found = blocking(move || -> StepResult<_> {
            let manifest = store.manifest_digest_of(&name)?;
            let (m, c) = store.load_built_image(&manifest)?;
            Ok((manifest, m, c))
        })
        .await;
        let (manifest, m, mut config) = found.map_err(|e| line_err(inst, e))?;
        complete_history(&mut config.image)?;
        Ok(State::from_loaded(
            cache::base_key(Some(&manifest)),
            m,
            config,
        ))
    }

    /// One step after FROM: `(new state, came from cache, layer made)`.
    async fn step(
        &mut self,
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
        let lookup = |name: &str| self.lookup(name, Some(&lookup_cfg));
        let word = |raw: &str| vars::process_word(raw.trim(), &lookup, escape);
        let text = |inst: &Instruction| match &inst.args {
            Args::Text(t) => Ok(t.clone()),
            Args::Json(_) => Err(line_err(
                inst,
                format!("{} does not take a JSON array", inst.cmd.name()),
            )),
        };
        // The instruction after substitution (for the cache key and the history) and, for
        // metadata steps, the config change.
        let mut content = None;
        let mut work = Work::Metadata;
        let resolved: String = match inst.cmd {
            Cmd::Env | Cmd::Label => {
                let pairs = vars::key_values(&text(inst)?, &lookup, escape)
                    .map_err(|e| line_err(inst, e))?;
                for (k, v) in &pairs {
                    if inst.cmd == Cmd::Env {
                        let prefix = format!("{k}=");
                        ours.env.retain(|e| !e.starts_with(&prefix));
                        ours.env.push(format!("{k}={v}"));
                    } else {
                        ours.labels.insert(k.clone(), v.clone());
                    }
                }
                let shown: Vec<String> = pairs
                    .iter()
                    .map(|(k, v)| format!("{k}={}", quote_if_needed(v)))
                    .collect();
                format!("{} {}", inst.cmd.name(), shown.join(" "))
            }
            Cmd::Workdir => {
                let w = word(&text(inst)?).map_err(|e| line_err(inst, e))?;
                let base = ours.working_dir.clone().unwrap_or_else(|| "/".into());
                let joined = if w.starts_with('/') {
                    w
                } else {
                    format!("{base}/{w}")
                };
                let clean = format!("/{}", dockerignore::clean(&joined).unwrap_or_default());
                ours.working_dir = Some(clean.clone());
                format!("WORKDIR {clean}")
            }
            Cmd::User => {
                let u = word(&text(inst)?).map_err(|e| line_err(inst, e))?;
                ours.user = Some(u.clone());
                format!("USER {u}")
            }
            Cmd::StopSignal => {
                let s = word(&text(inst)?).map_err(|e| line_err(inst, e))?;
                crate::containers::prepare::parse_signal(&s).map_err(|e| line_err(inst, e))?;
                ours.stop_signal = Some(s.clone());
                format!("STOPSIGNAL {s}")
            }
            Cmd::Expose => {
                let words = vars::process_words(&text(inst)?, &lookup, escape)
                    .map_err(|e| line_err(inst, e))?;
                let mut ports = Vec::new();
                for w in words {
                    let p = normalize_port(&w).map_err(|e| line_err(inst, e))?;
                    if !ours.exposed_ports.contains(&p) {
                        ours.exposed_ports.push(p.clone());
                    }
                    ports.push(p);
                }
                ours.exposed_ports.sort();
                format!("EXPOSE {}", ports.join(" "))
            }
            Cmd::Cmd | Cmd::Entrypoint => {
                let argv = exec_or_shell(&inst.args);
                if inst.cmd == Cmd::Cmd {
                    ours.cmd = Some(argv.clone());
                    self.cmd_set = true;
                } else {
                    ours.entrypoint = Some(argv.clone());
                    if !self.cmd_set {
                        ours.cmd = None;
                    }
                }
                format!(
                    "{} {}",
                    inst.cmd.name(),
                    serde_json::to_string(&argv).unwrap_or_default()
                )
            }
            Cmd::Run => {
                let argv = exec_or_shell(&inst.args);
                // Build args reach RUN as environment (not persisted in the image), so their
                // values are part of the key.
                let arg_env: Vec<String> = self
                    .args
                    .iter()
                    .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
                    .filter(|kv| {
                        let key = kv.split('=').next().unwrap_or_default();
                        !ours.env.iter().any(|e| e.split('=').next() == Some(key))
                    })
                    .collect();
                let shown = format!(
                    "RUN {}{}",
                    if arg_env.is_empty() {
                        String::new()
                    } else {
                        format!("|{} ", arg_env.join(" "))
                    },
                    serde_json::to_string(&argv).unwrap_or_default()
                );
                work = Work::Run { argv, env: arg_env };
                shown
            }
            Cmd::Copy | Cmd::Add => {
                let add = inst.cmd == Cmd::Add;
                let mut words = match &inst.args {
                    Args::Json(v) => v
                        .iter()
                        .map(|w| vars::process_word(w, &lookup, escape))
                        .collect::<Result<Vec<_>, _>>(),
                    Args::Text(t) => vars::process_words(t, &lookup, escape),
                }
                .map_err(|e| line_err(inst, e))?;
                if words.len() < 2 {
                    return Err(line_err(
                        inst,
                        format!("{} needs a source and a destination", inst.cmd.name()),
                    ));
                }
                let dest_raw = words.pop().unwrap_or_default();
                let workdir = ours.working_dir.clone().unwrap_or_else(|| "/".into());
                let dest = resolve_dest(&dest_raw, &workdir);
                let chown = inst
                    .flag("chown")
                    .map(&word)
                    .transpose()
                    .map_err(|e| line_err(inst, e))?;
                let chmod = inst
                    .flag("chmod")
                    .map(|m| {
                        u32::from_str_radix(m, 8)
                            .ok()
                            .filter(|m| *m <= 0o7777)
                            .ok_or_else(|| {
                                line_err(inst, format!("--chmod={m}: not an octal mode"))
                            })
                    })
                    .transpose()?;
                for w in &words {
                    if w.starts_with("http://") || w.starts_with("https://") {
                        return Err(line_err(inst, format!(
                            "ADD of URLs is not supported ({w}): download it beforehand or in a RUN step"
                        )));
                    }
                }
                let ctx = self.context.clone();
                let srcs = words.clone();
                let (sources, hash) = blocking(move || expand_and_hash(&ctx, &srcs))
                    .await
                    .map_err(|e| line_err(inst, e))?;
                content = Some(hash);
                let mut shown = inst.cmd.name().to_owned();
                if let Some(c) = &chown {
                    shown.push_str(&format!(" --chown={c}"));
                }
                if let Some(m) = chmod {
                    shown.push_str(&format!(" --chmod={m:o}"));
                }
                shown.push_str(&format!(" {} {dest}", words.join(" ")));
                work = Work::Copy {
                    sources,
                    dest,
                    chown,
                    chmod,
                    add,
                };
                shown
            }
            Cmd::Arg => format!("ARG {}", arg_shown.join(" ")),
            Cmd::From => return Err(line_err(inst, "multi-stage builds are not supported")),
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
            Work::Run { argv, env } => Some(self.run_step(state, inst, argv, env).await?),
            Work::Copy {
                sources,
                dest,
                chown,
                chmod,
                add,
            } => Some(
                self.copy_step(
                    state,
                    inst,
                    copy::CopySpec {
                        lowers: Vec::new(),
                        upper: PathBuf::new(),
                        work: PathBuf::new(),
                        mountpoint: PathBuf::new(),
                        context: self.context.clone(),
                        sources,
                        dest,
                        chown,
                        chmod,
                        extract_archives: add,
                    },
                )
                .await?,
            ),
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
}

/// What a step does besides changing the config.
enum Work {
    Metadata,
    Run {
        argv: Vec<String>,
        env: Vec<String>,
    },
    Copy {
        sources: Vec<String>,
        dest: String,
        chown: Option<String>,
        chmod: Option<u32>,
        add: bool,
    },
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AgentError> + Send + 'static,
) -> Result<T, AgentError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AgentError::internal("build task", e))?
}
