//! `hoist build`: a Dockerfile and a build context in, an OCI image in the content store out.
//!
//! Why it is shaped like this: every step maps an image *state* (config + layers) to the next one.
//! A state is stored as an unnamed manifest in the content store, and the cache maps a key over
//! everything that decides a step's result (`cache.rs`) to the state it produced. So a cached step
//! costs a lookup and a verified read, and the result of a build is simply the last state, named.
//!
//! - `dockerfile.rs` parses (pure) into stages; `stages.rs` plans which stages the target needs
//!   (pure); `vars.rs` substitutes (pure); `metadata.rs` applies config-only instructions (pure);
//!   `cache.rs` keys (pure + a dir).
//! - A stage's result is a state like any other: `COPY --from` and `RUN --mount=from=` read its
//!   layers through a read-only overlay, and its key (the whole chain that made it) is the
//!   content part of the step key, so nothing of a stage is hashed twice.
//! - `run_mount.rs` parses `RUN --mount` (pure), `run_mounts.rs` prepares them on the host (cache
//!   directories kept between builds, secrets, binds) and removes their mountpoints from the
//!   step's layer; `fetch.rs` downloads `ADD <URL>` sources (checksums verified) before any step.
//! - RUN runs in a container of Hoist's own runtime (the container manager, network `none` unless
//!   asked), on the state's layers, with the image config's env, user and workdir; the
//!   container's overlay upper directory is the step's change.
//! - COPY/ADD write through an overlay in a private mount namespace (`copy.rs`).
//! - `layer.rs` turns an upper directory into an OCI layer tar; the store keeps it like a pulled
//!   layer (gzip blob + unpacked snapshot).
//! - Metadata steps (ENV, LABEL, WORKDIR, USER, EXPOSE, CMD, ENTRYPOINT, STOPSIGNAL, VOLUME,
//!   HEALTHCHECK, SHELL, ONBUILD, MAINTAINER) change only the config and add an `empty_layer`
//!   history entry. An image's ONBUILD triggers run right after a FROM that uses it.

mod cache;
mod context;
mod copy;
pub mod dockerfile;
mod execute;
mod fetch;
pub(crate) mod instruction;
pub(crate) mod layer;
pub mod metadata;
mod run_mount;
mod run_mounts;
mod sources;
mod stages;
mod step;
mod vars;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use hoist_proto::{ApiError, BuildEvent, BuildRequest, BuildResult, ImageConfig};
use oci_spec::image::{Descriptor, ImageConfiguration, ImageConfigurationBuilder, RootFsBuilder};
use tokio::sync::mpsc;

use self::cache::Cache;
use self::dockerfile::{Args, Dockerfile, Instruction, Stage};
use self::instruction::complete_history;
use super::platform::Platform;
use super::pull;
use super::{oci, ImageStore};
use crate::containers::Manager;
use crate::error::AgentError;

pub use context::receive;
pub use dockerfile::{ParseError, ParseErrors};

/// Where the builder keeps its files under the agent's data dir.
pub fn build_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("build")
}

/// Removes what builds interrupted by an agent crash left in `build/tmp` (contexts, layer tars,
/// COPY scratch dirs, a step's mounts). Called once at start-up, before any build can run.
pub fn clean_leftovers(data_dir: &Path) {
    let tmp = build_dir(data_dir).join("tmp");
    // A step's host mounts (a stage's read-only overlay, a tmpfs, a secret's tmpfs) first,
    // deepest first, so removing the directories below cannot reach into them.
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut mounted: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(PathBuf::from)
        .filter(|p| p.starts_with(&tmp) && p != &tmp)
        .collect();
    mounted.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for m in mounted {
        if let Err(e) = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH) {
            tracing::warn!(path = %m.display(), error = %e, "cannot unmount build leftover");
        }
    }
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

/// Parses the Dockerfile of a request: errors name every bad line.
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
        Ok(mut b) => {
            let result = b.build(&df, t0).await;
            b.scratch_cleanup().await;
            match result {
                Ok(result) => BuildEvent::Result(result),
                Err(e) => BuildEvent::Error(ApiError {
                    code: e.code().into(),
                    message: e.to_string(),
                }),
            }
        }
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
        self.file().container_config()
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
    /// Cache mounts' directories (`RUN --mount=type=cache`), kept between builds.
    cache_mounts: PathBuf,
    context: PathBuf,
    req: BuildRequest,
    escape: char,
    tx: mpsc::Sender<BuildEvent>,
    /// ARGs of the current stage → value (build arg, else default; `None`: declared without value).
    args: BTreeMap<String, Option<String>>,
    /// ARGs declared before the first FROM, and the predefined platform ARGs.
    meta_args: BTreeMap<String, Option<String>>,
    /// ARG names some ARG instruction declared (for the unused build-arg warning).
    declared: std::collections::BTreeSet<String>,
    /// Whether the current stage has set CMD (ENTRYPOINT resets only an inherited CMD).
    cmd_set: bool,
    /// The result of each stage built so far, by index.
    stages: BTreeMap<usize, State>,
    /// `ADD <URL>` downloads, by URL.
    downloads: BTreeMap<String, fetch::Download>,
    /// Scratch directory of this build (downloads, secrets, heredocs); removed at the end.
    scratch: Option<tempfile::TempDir>,
    steps_done: usize,
    steps_total: usize,
    cached_steps: usize,
}

type StepResult<T> = Result<T, AgentError>;

/// `Dockerfile:N: message` as an invalid-request error.
fn line_err(inst: &Instruction, message: impl std::fmt::Display) -> AgentError {
    AgentError::Invalid(format!("Dockerfile:{}: {message}", inst.line))
}

/// The platform ARGs BuildKit predefines in the global scope: the build and target platform are
/// both this host's (a foreign `--platform` is refused).
fn platform_args() -> BTreeMap<String, Option<String>> {
    let host = Platform::default();
    let mut out = BTreeMap::new();
    for prefix in ["BUILD", "TARGET"] {
        out.insert(format!("{prefix}PLATFORM"), Some(host.to_string()));
        out.insert(format!("{prefix}OS"), Some(host.os.clone()));
        out.insert(format!("{prefix}ARCH"), Some(host.architecture.clone()));
        out.insert(
            format!("{prefix}VARIANT"),
            Some(host.variant.clone().unwrap_or_default()),
        );
    }
    out
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
        let cache_mounts = dir.join("cache-mounts");
        for d in [&tmp, &empty, &cache_mounts] {
            std::fs::create_dir_all(d).map_err(|e| io(&format!("create {}", d.display()), e))?;
        }
        Ok(Self {
            store,
            mgr,
            cache,
            tmp,
            empty,
            cache_mounts,
            context: context.to_path_buf(),
            req,
            escape: df.escape,
            tx,
            args: BTreeMap::new(),
            meta_args: platform_args(),
            declared: Default::default(),
            cmd_set: false,
            stages: BTreeMap::new(),
            downloads: BTreeMap::new(),
            scratch: None,
            steps_done: 0,
            steps_total: 0,
            cached_steps: 0,
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

    /// This build's scratch directory (created on first use, inside `build/tmp`).
    fn scratch_dir(&mut self) -> StepResult<PathBuf> {
        if self.scratch.is_none() {
            let dir = tempfile::Builder::new()
                .prefix("build-")
                .tempdir_in(&self.tmp)
                .map_err(|e| AgentError::internal("create build scratch dir", e))?;
            self.scratch = Some(dir);
        }
        Ok(self
            .scratch
            .as_ref()
            .map(|d| d.path().to_path_buf())
            .unwrap_or_default())
    }

    async fn scratch_cleanup(&mut self) {
        if let Some(dir) = self.scratch.take() {
            let _ = tokio::task::spawn_blocking(move || dir.close()).await;
        }
    }

    async fn build(&mut self, df: &Dockerfile, t0: Instant) -> StepResult<BuildResult> {
        for inst in &df.meta_args {
            self.declare_arg(inst, None)?;
        }
        let target = stages::target(df, self.req.target.as_deref()).map_err(AgentError::Invalid)?;
        let plan = {
            let resolve = |inst: &Instruction, raw: &str| -> Result<String, String> {
                let lookup = |name: &str| self.lookup(name, None);
                vars::process_word(raw.trim(), &lookup, self.escape)
                    .map_err(|e| format!("{}: {e}", inst.cmd.name()))
            };
            stages::plan(df, target, &resolve).map_err(|e| AgentError::Invalid(e.to_string()))?
        };
        self.steps_total = plan
            .iter()
            .map(|&i| 1 + df.stages[i].instructions.len())
            .sum();
        self.prefetch(df, &plan).await?;
        for &i in &plan {
            let state = self.build_stage(df, &df.stages[i]).await?;
            self.stages.insert(i, state);
        }
        let state = self
            .stages
            .get(&target)
            .cloned()
            .ok_or_else(|| AgentError::Invalid("Dockerfile: no FROM".into()))?;
        let unused: Vec<&str> = self
            .req
            .build_args
            .keys()
            .filter(|k| !self.declared.contains(*k))
            .map(String::as_str)
            .collect();
        if !unused.is_empty() {
            self.emit(BuildEvent::Warning(format!(
                "build args not consumed by any ARG: {}",
                unused.join(", ")
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
            steps: self.steps_done,
            cached_steps: self.cached_steps,
            layers: state.layers.len(),
            seconds: t0.elapsed().as_secs_f64(),
        })
    }

    /// One stage: its FROM, the base image's ONBUILD triggers, then its instructions.
    async fn build_stage(&mut self, df: &Dockerfile, stage: &Stage) -> StepResult<State> {
        self.args.clear();
        self.cmd_set = false;
        self.announce(&stage.from).await?;
        let t = Instant::now();
        let mut state = self.from(df, stage).await?;
        self.emit(BuildEvent::Done {
            layer: None,
            seconds: t.elapsed().as_secs_f64(),
        })
        .await;
        let triggers = std::mem::take(&mut state.docker.on_build).unwrap_or_default();
        let mut insts = Vec::new();
        for trigger in &triggers {
            let inst = dockerfile::parse_one(stage.from.line, trigger).map_err(|e| {
                line_err(
                    &stage.from,
                    format!("ONBUILD trigger {trigger:?} of the base image: {e}"),
                )
            })?;
            insts.push(inst);
        }
        self.steps_total += insts.len();
        insts.extend(stage.instructions.iter().cloned());
        for inst in &insts {
            self.announce(inst).await?;
            let t = Instant::now();
            let (next, cached, layer) = self.step(df, stage.index, &state, inst).await?;
            if cached {
                self.cached_steps += 1;
                self.emit(BuildEvent::Cached).await;
            } else {
                self.emit(BuildEvent::Done {
                    layer,
                    seconds: t.elapsed().as_secs_f64(),
                })
                .await;
            }
            state = next;
        }
        Ok(state)
    }

    async fn announce(&mut self, inst: &Instruction) -> StepResult<()> {
        self.check_cancelled()?;
        self.steps_done += 1;
        self.emit(BuildEvent::Step {
            number: self.steps_done,
            total: self.steps_total,
            instruction: inst.text.clone(),
        })
        .await;
        Ok(())
    }

    /// Declares the ARGs of `inst`: before FROM (`config` None) into the meta scope, in a stage
    /// into the stage's, where defaults see the ENV of the state so far.
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
            self.declared.insert(name.clone());
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

    /// The state a FROM starts from: an earlier stage, `scratch`, or an image (pulled if
    /// missing, on this host's platform).
    async fn from(&mut self, df: &Dockerfile, stage: &Stage) -> StepResult<State> {
        let inst = &stage.from;
        let image = {
            let lookup = |name: &str| self.lookup(name, None);
            vars::process_word(stage.base.trim(), &lookup, self.escape)
                .map_err(|e| line_err(inst, e))?
        };
        if let Some(p) = inst.flag("platform") {
            let lookup = |name: &str| self.lookup(name, None);
            let p = vars::process_word(p, &lookup, self.escape).map_err(|e| line_err(inst, e))?;
            let want =
                Platform::parse(&p).map_err(|e| line_err(inst, format!("--platform: {e}")))?;
            let host = Platform::default();
            if want.os != host.os || want.architecture != host.architecture {
                return Err(line_err(
                    inst,
                    format!(
                        "FROM --platform={want}: this host builds and runs {host} only (RUN steps of a {want} image cannot run here)"
                    ),
                ));
            }
        }
        if let Ok(stages::Source::Stage(i)) = stages::resolve(df, stage.index, &image) {
            let state = self.stages.get(&i).cloned().ok_or_else(|| {
                line_err(
                    inst,
                    format!("stage {image:?} was not built (internal order error)"),
                )
            })?;
            return Ok(state);
        }
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
        self.image_state(inst, &image).await
    }

    /// The state of image `image` (pulled if missing), e.g. for FROM or `COPY --from=image`.
    async fn image_state(&self, inst: &Instruction, image: &str) -> StepResult<State> {
        let (progress, _ignored) = mpsc::unbounded_channel();
        let regs = self.mgr.config.registries();
        match pull::pull_if_missing(self.store.clone(), &regs, image, None, progress).await {
            Ok(true) => {
                self.emit(BuildEvent::Output(hoist_proto::StreamChunk {
                    stream: Some("stdout".into()),
                    data: Some(format!(" ---> pulled image {image}\n")),
                    time: None,
                    exit_code: None,
                }))
                .await
            }
            Ok(false) => {}
            Err(e) => {
                return Err(line_err(
                    inst,
                    format!("image {image:?} is not on this host and could not be pulled: {e}"),
                ))
            }
        }
        let store = self.store.clone();
        let name = image.to_owned();
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
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AgentError> + Send + 'static,
) -> Result<T, AgentError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AgentError::internal("build task", e))?
}
