//! A container's secrets and configs as the manager keeps them: written with the container's
//! other volatile files when it is created, replaced in place when the worker brings a new
//! version ([`Manager::update_files`]), gone when the container exits or is removed.
//!
//! What is where:
//! - the content only in `DATA/run/ID/files`, on the agent's tmpfs, laid out by
//!   [`secret_files`] so that a rotation is one rename. A secret is refused when `DATA/run` is
//!   not a tmpfs (`AgentConfig::volatile_on_tmpfs`): it would reach the disk;
//! - which reference is which file, with the version each holds, in `DATA/run/ID/files.json`
//!   ([`FilesState`]: no content) and in memory (`Container::files`). `restore` reads it back, so
//!   a restarted agent knows what its containers have without fetching anything again;
//! - nothing of it in the container's record (`container.json`, on disk) or its create request.
//!
//! Why the versions live next to the files rather than in the record: they describe those
//! files, they change with every rotation (the record is written once), and they go when the
//! files go (the container exits, the host reboots). A state that lags the published files (an
//! agent killed between the rename and the state's write) reads as version 0 everywhere, so the
//! worker fetches and writes them again rather than trusting a guess.
//!
//! Pure parts ([`initial_state`], [`check_targets`], [`plan`], [`reconcile_state`]) are tested
//! directly; the manager's steps over the fakes in `containers/tests.rs`.

use super::{Container, Manager};
use crate::error::AgentError;
use crate::runtime::secret_files::{self, Content, Entry, FilesMount};
use crate::runtime::userns::IdRange;
use crate::runtime::{read_json, write_json_atomic, ContainerDir};
use hoist_proto::files::{FileContent, FileKind, FileVersion, OnUpdate, ResolvedRef};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The version of `files.json`'s layout.
pub const STATE_VERSION: u32 = 1;

/// What a container made for a task gets: its spec's references, resolved, and their content as
/// the controller sent it. Passed beside the create request, never stored; `Debug` shows no
/// content (`FileContent`'s own hides it).
#[derive(Debug, Clone, Default)]
pub struct ContainerFiles {
    pub refs: Vec<ResolvedRef>,
    pub content: Vec<FileContent>,
}

/// One reference as the container has it: file `i` of its generations is reference `i`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountedFile {
    pub kind: FileKind,
    pub name: String,
    pub target: String,
    pub mode: u32,
    /// The owner inside the container (a user-namespaced container's files hold these shifted).
    pub uid: u32,
    pub gid: u32,
    /// What a new version does to the file while the container runs.
    #[serde(default)]
    pub on_update: Update,
    /// The version the published generation holds.
    pub version: u64,
}

/// What a new version does to one of a running container's files (its reference's
/// `on_update`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Update {
    /// Replaced in place.
    #[default]
    Replace,
    /// Replaced in place, then this signal goes to the container's main process.
    Signal(i32),
    /// Kept as the container started with it: the service replaces its replicas instead
    /// (`on_update = "restart"`, the controller's doing).
    Keep,
}

impl From<OnUpdate> for Update {
    fn from(o: OnUpdate) -> Self {
        match o {
            OnUpdate::Replace => Update::Replace,
            OnUpdate::Signal(s) => Update::Signal(s),
            OnUpdate::Restart => Update::Keep,
        }
    }
}

/// `DATA/run/ID/files.json`: the references of a container and the versions it has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilesState {
    pub version: u32,
    /// The published generation (`..data -> ..vN`).
    pub generation: u64,
    pub files: Vec<MountedFile>,
}

impl FilesState {
    /// The version of each secret and config the container has (each once).
    pub fn versions(&self) -> Vec<FileVersion> {
        let mut by: BTreeMap<(FileKind, &str), u64> = BTreeMap::new();
        for f in &self.files {
            let v = by.entry((f.kind, f.name.as_str())).or_insert(f.version);
            *v = (*v).min(f.version);
        }
        by.into_iter()
            .map(|((kind, name), version)| FileVersion {
                kind,
                name: name.to_string(),
                version,
            })
            .collect()
    }
}

/// What a rotation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rotated {
    /// The files replaced, at their new versions.
    pub changed: Vec<FileVersion>,
    /// The signals sent to the container's main process, each once.
    pub signals: Vec<i32>,
}

/// `secret "db-pass"`.
pub fn describe(kind: FileKind, name: &str) -> String {
    format!("{kind} {name:?}")
}

/// The newest content of `kind`/`name` in `content`.
fn content_of(content: &[FileContent], kind: FileKind, name: &str) -> Option<usize> {
    content
        .iter()
        .enumerate()
        .filter(|(_, c)| c.kind == kind && c.name == name)
        .max_by_key(|(_, c)| c.version)
        .map(|(i, _)| i)
}

/// The state of a new container's files, generation 1: each reference with the version of its
/// content; an error names a reference without content. Pure.
pub fn initial_state(files: &ContainerFiles) -> Result<FilesState, String> {
    let mut out = Vec::with_capacity(files.refs.len());
    for r in &files.refs {
        let i = content_of(&files.content, r.kind, &r.source).ok_or_else(|| {
            format!(
                "{}: its content was not fetched",
                describe(r.kind, &r.source)
            )
        })?;
        out.push(MountedFile {
            kind: r.kind,
            name: r.source.clone(),
            target: r.target.clone(),
            mode: r.mode,
            uid: r.uid,
            gid: r.gid,
            on_update: r.on_update.into(),
            version: files.content[i].version,
        });
    }
    Ok(FilesState {
        version: STATE_VERSION,
        generation: 1,
        files: out,
    })
}

/// The files the runtime makes mount points of itself.
const GENERATED: [&str; 3] = ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"];
/// The kernel's file systems: no link can be made in them.
const KERNEL: [&str; 2] = ["/proc", "/sys"];

/// Whether `path` is `base` or below it (both clean and absolute).
fn at_or_below(path: &str, base: &str) -> bool {
    let base = base.trim_end_matches('/');
    path == base
        || (path.len() > base.len()
            && path.starts_with(base)
            && path.as_bytes()[base.len()] == b'/')
}

/// Checks that each reference's target can become a link: not where a mount goes (`mounts`:
/// the container's volumes, tmpfs mounts, the generated `/etc` files) nor above one, not at or
/// around the files' own mount point, not in `/proc` or `/sys`. Pure.
pub fn check_targets(refs: &[ResolvedRef], mounts: &[&str]) -> Result<(), String> {
    let clean = |p: &str| super::volumes::clean(p).unwrap_or_else(|| p.to_string());
    for r in refs {
        let t = clean(&r.target);
        let what = describe(r.kind, &r.source);
        if at_or_below(&t, secret_files::MOUNT_POINT) || at_or_below(secret_files::MOUNT_POINT, &t)
        {
            return Err(format!(
                "{what}: target {t} clashes with {}, where the container's secrets and configs are mounted",
                secret_files::MOUNT_POINT
            ));
        }
        if let Some(k) = KERNEL.iter().find(|k| at_or_below(&t, k)) {
            return Err(format!(
                "{what}: target {t} is in {k}, the kernel's file system"
            ));
        }
        for m in mounts
            .iter()
            .map(|m| clean(m))
            .chain(GENERATED.map(String::from))
        {
            if at_or_below(&m, &t) {
                return Err(format!(
                    "{what}: target {t} is where a mount goes ({m}); a file cannot replace it"
                ));
            }
        }
    }
    Ok(())
}

/// A rotation to do: per file, the index in the fetched content of its new version, or `None`
/// to keep it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub new_content: Vec<Option<usize>>,
    pub changed: Vec<FileVersion>,
    /// The signals of the changed references, each once, in the references' order.
    pub signals: Vec<i32>,
}

/// Which files of `state` `fetched` replaces: those it has at a higher version (never an older
/// one: a lagging controller does not take a file back), unless their reference keeps the
/// version the container started with ([`Update::Keep`]). Pure.
pub fn plan(state: &FilesState, fetched: &[FileContent]) -> Plan {
    let mut p = Plan::default();
    for f in &state.files {
        let new = content_of(fetched, f.kind, &f.name)
            .filter(|&i| fetched[i].version > f.version && f.on_update != Update::Keep);
        if let Some(i) = new {
            let v = FileVersion {
                kind: f.kind,
                name: f.name.clone(),
                version: fetched[i].version,
            };
            if !p.changed.contains(&v) {
                p.changed.push(v);
            }
            if let Update::Signal(s) = f.on_update {
                if !p.signals.contains(&s) {
                    p.signals.push(s);
                }
            }
        }
        p.new_content.push(new);
    }
    p
}

/// The state as it holds for the files published: when the published generation is not the
/// state's (cut short between the rename and the state's write), the versions are unknown and
/// read as 0, to be fetched again. Pure.
pub fn reconcile_state(mut state: FilesState, published: Option<u64>) -> FilesState {
    if published != Some(state.generation) {
        state.generation = published.unwrap_or(0);
        for f in &mut state.files {
            f.version = 0;
        }
    }
    state
}

/// The host owner of a file: a user-namespaced container's ids shifted into its range.
fn host_owner(uid: u32, gid: u32, userns: Option<IdRange>) -> Result<(u32, u32), String> {
    match userns {
        Some(r) => r.shift(uid, gid),
        None => Ok((uid, gid)),
    }
}

fn io_err(what: &str) -> impl FnOnce(std::io::Error) -> AgentError + '_ {
    move |e| AgentError::internal(what.to_string(), e)
}

/// Checks what a container's create asks of its files before anything is made: targets
/// ([`check_targets`] against `mounts`), owners that map into the user namespace, and a tmpfs
/// for any secret.
pub(super) fn check_create(
    files: &ContainerFiles,
    mounts: &[&str],
    userns: Option<IdRange>,
    volatile_on_tmpfs: bool,
) -> Result<(), AgentError> {
    check_targets(&files.refs, mounts).map_err(AgentError::Invalid)?;
    for r in &files.refs {
        host_owner(r.uid, r.gid, userns)
            .map_err(|e| AgentError::Invalid(format!("{}: {e}", describe(r.kind, &r.source))))?;
    }
    if !volatile_on_tmpfs {
        if let Some(r) = files.refs.iter().find(|r| r.kind == FileKind::Secret) {
            return Err(AgentError::Conflict(format!(
                "{}: this node keeps no secrets: its directory for volatile files (DATA/run) is \
                 not a tmpfs, so the secret would be written to disk (see the agent's start-up log)",
                describe(r.kind, &r.source)
            )));
        }
    }
    Ok(())
}

/// Writes a new container's files, generation 1, into its volatile directory (which exists),
/// before its supervisor starts; answers their state and what the runtime mounts. Blocking.
pub(super) fn write_new(
    dir: &ContainerDir,
    files: &ContainerFiles,
    userns: Option<IdRange>,
) -> Result<(FilesState, FilesMount), AgentError> {
    let state = initial_state(files).map_err(AgentError::Invalid)?;
    let mut entries = Vec::with_capacity(state.files.len());
    for f in &state.files {
        let (uid, gid) = host_owner(f.uid, f.gid, userns)
            .map_err(|e| AgentError::Invalid(format!("{}: {e}", describe(f.kind, &f.name))))?;
        let i = content_of(&files.content, f.kind, &f.name).ok_or_else(|| {
            AgentError::Invalid(format!("{}: no content", describe(f.kind, &f.name)))
        })?;
        entries.push(Entry {
            content: Content::Bytes(&files.content[i].data),
            mode: f.mode,
            uid,
            gid,
        });
    }
    let root = dir.files();
    secret_files::create_dir(&root).map_err(io_err("secrets and configs"))?;
    secret_files::write_generation(&root, state.generation, None, &entries)
        .map_err(io_err("write secrets and configs"))?;
    secret_files::publish(&root, state.generation)
        .map_err(io_err("publish secrets and configs"))?;
    write_json_atomic(&dir.files_state(), &state).map_err(io_err("write files.json"))?;
    let mount = FilesMount {
        source: root,
        targets: state.files.iter().map(|f| f.target.clone()).collect(),
        owner: userns.map(|r| r.first),
    };
    Ok((state, mount))
}

/// Writes the next generation of `state` with `plan`'s new content from `fetched`, publishes
/// it, records the new state and removes the old generation. Blocking.
fn rotate(
    dir: &ContainerDir,
    state: &FilesState,
    plan: &Plan,
    fetched: &[FileContent],
    userns: Option<IdRange>,
) -> Result<FilesState, AgentError> {
    let next_gen = state.generation + 1;
    let mut entries = Vec::with_capacity(state.files.len());
    for (f, new) in state.files.iter().zip(&plan.new_content) {
        let (uid, gid) = host_owner(f.uid, f.gid, userns)
            .map_err(|e| AgentError::Invalid(format!("{}: {e}", describe(f.kind, &f.name))))?;
        entries.push(Entry {
            content: match new {
                Some(i) => Content::Bytes(&fetched[*i].data),
                None => Content::Keep,
            },
            mode: f.mode,
            uid,
            gid,
        });
    }
    let root = dir.files();
    let previous = (state.generation > 0).then_some(state.generation);
    if let Err(e) = secret_files::write_generation(&root, next_gen, previous, &entries) {
        // Never published: whatever was written goes (the files directory itself stays).
        let _ = std::fs::remove_dir_all(root.join(secret_files::generation_name(next_gen)));
        return Err(AgentError::internal("write the new secrets and configs", e));
    }
    secret_files::publish(&root, next_gen)
        .map_err(io_err("publish the new secrets and configs"))?;
    let mut next = state.clone();
    next.generation = next_gen;
    for (f, new) in next.files.iter_mut().zip(&plan.new_content) {
        if let Some(i) = new {
            f.version = fetched[*i].version;
        }
    }
    write_json_atomic(&dir.files_state(), &next).map_err(io_err("write files.json"))?;
    if let Err(e) = secret_files::remove_other_generations(&root, next_gen) {
        tracing::warn!(dir = %root.display(), "remove the replaced secrets and configs: {e}");
    }
    Ok(next)
}

/// The files state of a running container found after an agent restart: `files.json` as it
/// holds for the generation published ([`reconcile_state`]). `None` when it has none.
pub(super) fn load(dir: &ContainerDir) -> Option<FilesState> {
    let state: FilesState = match read_json(&dir.files_state()) {
        Ok(Some(s)) => s,
        Ok(None) => {
            if dir.files().exists() {
                tracing::warn!(dir = %dir.run().display(), "secrets and configs without files.json: they stay as they are, never replaced");
            }
            return None;
        }
        Err(e) => {
            tracing::warn!(dir = %dir.run().display(), "files.json does not read ({e}): the secrets and configs stay as they are, never replaced");
            return None;
        }
    };
    if state.version > STATE_VERSION {
        tracing::warn!(dir = %dir.run().display(), version = state.version, "files.json of a newer agent: the secrets and configs stay as they are, never replaced");
        return None;
    }
    let published = secret_files::current_generation(&dir.files()).unwrap_or(None);
    let reconciled = reconcile_state(state.clone(), published);
    if reconciled != state {
        tracing::warn!(dir = %dir.run().display(), "a replacement of secrets and configs was cut short: they will be fetched again");
    }
    Some(reconciled)
}

/// Removes a container's files and their state (it exited: nothing reads them any more).
/// Blocking.
pub(super) fn discard(dir: &ContainerDir) {
    if let Err(e) = secret_files::remove(&dir.files()) {
        tracing::warn!("secrets and configs of an exited container: {e}");
    }
    match std::fs::remove_file(dir.files_state()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(path = %dir.files_state().display(), "remove: {e}"),
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Container {
    /// The container's secrets and configs, as it has them (no content).
    pub fn files(&self) -> Option<FilesState> {
        lock(&self.files).clone()
    }
}

impl Manager {
    /// The versions of the secrets and configs a container has; empty when it has none (or is
    /// unknown).
    pub fn file_versions(&self, key: &str) -> Vec<FileVersion> {
        self.get(key)
            .ok()
            .and_then(|c| c.files())
            .map(|s| s.versions())
            .unwrap_or_default()
    }

    /// Replaces the files of a running container that `fetched` has newer versions of: every
    /// file at once (one rename), then the signals their references ask for. The container is
    /// not restarted. Rotations of one container run one at a time.
    pub async fn update_files(
        &self,
        key: &str,
        fetched: Vec<FileContent>,
    ) -> Result<Rotated, AgentError> {
        let c = self.get(key)?;
        let _one = c.files_lock.lock().await;
        let Some(state) = c.files() else {
            return Err(AgentError::Conflict(format!(
                "container {} has no secrets or configs",
                c.record.name
            )));
        };
        if !c.state().is_running() {
            return Err(AgentError::Conflict(format!(
                "container {} is not running",
                c.record.name
            )));
        }
        let plan = plan(&state, &fetched);
        if plan.changed.is_empty() {
            return Ok(Rotated::default());
        }
        let (dir, userns) = (c.dir.clone(), c.record.userns);
        let p = plan.clone();
        let next = tokio::task::spawn_blocking(move || rotate(&dir, &state, &p, &fetched, userns))
            .await
            .map_err(|e| AgentError::internal("replace secrets and configs", e))??;
        *lock(&c.files) = Some(next);
        tracing::info!(id = %c.record.id, name = %c.record.name, files = %list(&plan.changed), "secrets and configs replaced");
        for &signal in &plan.signals {
            if let Err(e) = self.signal(&c, signal).await {
                tracing::warn!(id = %c.record.id, signal, "signal after replacing secrets and configs: {e}");
            }
        }
        Ok(Rotated {
            changed: plan.changed,
            signals: plan.signals,
        })
    }

    /// Removes an exited container's files (under the rotation lock: never beside a rotation).
    pub(super) async fn discard_files(&self, c: &Container) {
        let _one = c.files_lock.lock().await;
        if lock(&c.files).take().is_none() && !c.dir.files().exists() {
            return;
        }
        let dir = c.dir.clone();
        let _ = tokio::task::spawn_blocking(move || discard(&dir)).await;
    }
}

/// `secret "db-pass" v3, config "app.conf" v1`: what a log line may say of files.
pub fn list(files: &[FileVersion]) -> String {
    files
        .iter()
        .map(|f| format!("{} v{}", describe(f.kind, &f.name), f.version))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(kind: FileKind, source: &str, target: &str, on_update: OnUpdate) -> ResolvedRef {
        ResolvedRef {
            kind,
            source: source.into(),
            target: target.into(),
            mode: 0o400,
            uid: 0,
            gid: 0,
            on_update,
        }
    }

    fn content(kind: FileKind, name: &str, version: u64, data: &str) -> FileContent {
        FileContent {
            kind,
            name: name.into(),
            version,
            data: data.as_bytes().to_vec(),
        }
    }

    fn fv(kind: FileKind, name: &str, version: u64) -> FileVersion {
        FileVersion {
            kind,
            name: name.into(),
            version,
        }
    }

    fn two() -> ContainerFiles {
        ContainerFiles {
            refs: vec![
                r(
                    FileKind::Secret,
                    "db-pass",
                    "/run/secrets/db-pass",
                    OnUpdate::Signal(1),
                ),
                r(
                    FileKind::Config,
                    "app.conf",
                    "/etc/app.conf",
                    OnUpdate::Replace,
                ),
                // The same secret twice, at another target.
                r(
                    FileKind::Secret,
                    "db-pass",
                    "/srv/pass",
                    OnUpdate::Signal(10),
                ),
            ],
            content: vec![
                content(FileKind::Secret, "db-pass", 3, "s3cret"),
                content(FileKind::Config, "app.conf", 1, "x = 1"),
            ],
        }
    }

    #[test]
    fn a_new_container_has_each_reference_at_the_version_fetched() {
        let s = initial_state(&two()).unwrap();
        assert_eq!(s.generation, 1);
        assert_eq!(
            s.files
                .iter()
                .map(|f| (f.target.as_str(), f.version, f.on_update))
                .collect::<Vec<_>>(),
            [
                ("/run/secrets/db-pass", 3, Update::Signal(1)),
                ("/etc/app.conf", 1, Update::Replace),
                ("/srv/pass", 3, Update::Signal(10))
            ]
        );
        assert_eq!(
            s.versions(),
            [
                fv(FileKind::Secret, "db-pass", 3),
                fv(FileKind::Config, "app.conf", 1)
            ]
        );
        let mut missing = two();
        missing.content.remove(1);
        assert_eq!(
            initial_state(&missing).unwrap_err(),
            "config \"app.conf\": its content was not fetched"
        );
        // The state file holds no content.
        let json = serde_json::to_string(&s).unwrap();
        assert!(
            !json.contains("s3cret") && !json.contains("x = 1"),
            "{json}"
        );
    }

    #[test]
    fn only_newer_versions_are_rotated_and_signals_are_sent_once() {
        let s = initial_state(&two()).unwrap();
        // Nothing newer: nothing to do (an older answer does not take a file back).
        let same = [
            content(FileKind::Secret, "db-pass", 2, "older"),
            content(FileKind::Config, "app.conf", 1, "x = 1"),
        ];
        assert_eq!(
            plan(&s, &same),
            Plan {
                new_content: vec![None, None, None],
                ..Plan::default()
            }
        );
        // The config only: no signal (its reference asks for none).
        let conf = [
            content(FileKind::Secret, "db-pass", 3, "s3cret"),
            content(FileKind::Config, "app.conf", 2, "x = 2"),
        ];
        let p = plan(&s, &conf);
        assert_eq!(p.new_content, [None, Some(1), None]);
        assert_eq!(p.changed, [fv(FileKind::Config, "app.conf", 2)]);
        assert!(p.signals.is_empty());
        // The secret: both of its references, each signal once, the version said once.
        let secret = [
            content(FileKind::Secret, "db-pass", 4, "n3w"),
            content(FileKind::Secret, "db-pass", 5, "n3wer"),
        ];
        let p = plan(&s, &secret);
        assert_eq!(p.new_content, [Some(1), None, Some(1)]);
        assert_eq!(p.changed, [fv(FileKind::Secret, "db-pass", 5)]);
        assert_eq!(p.signals, [1, 10]);
        // A reference that restarts the service keeps what the container started with.
        let mut f = two();
        f.refs[1].on_update = OnUpdate::Restart;
        let s = initial_state(&f).unwrap();
        assert_eq!(s.files[1].on_update, Update::Keep);
        let p = plan(&s, &conf);
        assert_eq!(p.new_content, [None, None, None]);
        assert!(p.changed.is_empty());
        // The state file says what each does, content aside.
        let json = serde_json::to_string(&s).unwrap();
        assert!(
            json.contains(r#""on_update":{"signal":1}"#) && json.contains(r#""on_update":"keep""#),
            "{json}"
        );
    }

    #[test]
    fn a_state_behind_the_published_files_reads_as_unknown() {
        let s = initial_state(&two()).unwrap();
        assert_eq!(reconcile_state(s.clone(), Some(1)), s);
        let lagging = reconcile_state(s.clone(), Some(2));
        assert_eq!(lagging.generation, 2);
        assert!(lagging.files.iter().all(|f| f.version == 0));
        assert_eq!(reconcile_state(s, None).generation, 0);
    }

    #[test]
    fn targets_that_cannot_become_links_are_refused() {
        let one = |target: &str| vec![r(FileKind::Secret, "db-pass", target, OnUpdate::Replace)];
        let mounts = ["/data", "/run/app/sock", "/var/lib/db/"];
        check_targets(&one("/run/secrets/db-pass"), &mounts).unwrap();
        check_targets(&one("/data/pass"), &mounts).unwrap();
        check_targets(&one("/dev/pass"), &mounts).unwrap();
        for (target, says) in [
            ("/data", "where a mount goes (/data)"),
            ("/run/app", "where a mount goes (/run/app/sock)"),
            ("/var/lib/db", "where a mount goes (/var/lib/db)"),
            ("/etc/hosts", "where a mount goes (/etc/hosts)"),
            ("/etc", "where a mount goes (/etc/hosts)"),
            ("/run", "/run/.hoist-files"),
            ("/run/.hoist-files/x", "/run/.hoist-files"),
            ("/proc/x", "in /proc"),
            ("/sys", "in /sys"),
        ] {
            let e = check_targets(&one(target), &mounts).unwrap_err();
            assert!(
                e.starts_with("secret \"db-pass\": target ") && e.contains(says),
                "{target}: {e}"
            );
        }
    }

    #[test]
    fn owners_must_map_into_a_user_namespace_and_secrets_need_a_tmpfs() {
        let mut f = two();
        let range = IdRange {
            first: 100_000,
            count: 1000,
        };
        check_create(&f, &[], Some(range), true).unwrap();
        f.refs[1].uid = 5000;
        let e = check_create(&f, &[], Some(range), true).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("config \"app.conf\": owner 5000:0"),
            "{e}"
        );
        check_create(&f, &[], None, true).unwrap();
        let e = check_create(&f, &[], None, false).unwrap_err();
        assert!(e.to_string().contains("not a tmpfs"), "{e}");
        // Configs alone may live anywhere.
        f.refs.retain(|r| r.kind == FileKind::Config);
        check_create(&f, &[], None, false).unwrap();
        assert_eq!(host_owner(1, 2, Some(range)), Ok((100_001, 100_002)));
        assert_eq!(host_owner(1, 2, None), Ok((1, 2)));
    }

    #[test]
    fn the_log_says_names_and_versions_only() {
        assert_eq!(
            list(&[
                fv(FileKind::Secret, "db-pass", 3),
                fv(FileKind::Config, "app.conf", 1)
            ]),
            "secret \"db-pass\" v3, config \"app.conf\" v1"
        );
        assert!(!format!("{:?}", two()).contains("s3cret"));
    }
}
