//! Applying reconciliation actions with the container manager: each action runs in its own task
//! (at most a few at once), and the task it concerns is marked busy until it finishes so the next
//! reconciliation pass leaves it alone. Creation failures are remembered per task — they are
//! terminal, reported as `failed`, and the controller replaces the task.
//!
//! A task whose spec references secrets or configs gets their content fetched right before its
//! container is created ([`super::files`]), and a running one gets newer versions in place
//! ([`Action::UpdateFiles`]): that runs beside the task's other actions without making it busy
//! (its container keeps running and reporting as it is), one at a time per container, and a
//! failed one is tried again after a back-off rather than at every reconciliation pass.
//!
//! The executor works through [`Containers`], what it needs of the node: [`Local`] (the container
//! manager and the image store) in the agent, a recording fake (`crate::testing`) in tests; and
//! through a [`FileSource`] for the content of secrets and configs.

use super::container::{create_request, observe};
use super::files::{self, FileSource};
use super::reconcile::{Action, ObservedTask, Phase};
use crate::containers::files::{list, ContainerFiles, Rotated};
use crate::containers::Manager;
use crate::error::{AgentError, ErrorKind};
use crate::image::registry::RegistryConfig;
use crate::image::{pull, ImageStore};
use futures::future::BoxFuture;
use hoist_proto::files::{FileContent, FileVersion};
use hoist_proto::node::Assignment;
use hoist_proto::{ContainerInfo, CreateContainer, Created, RegistryAuth};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore};

/// What the executor does on its node: list, create, stop and remove containers, and make sure
/// an image is there.
pub trait Containers: Send + Sync + std::fmt::Debug {
    /// Every container, running or not.
    fn list(&self) -> Vec<ContainerInfo>;
    /// Creates and starts a container, with its secrets and configs when it has some.
    fn create(
        &self,
        req: CreateContainer,
        files: Option<ContainerFiles>,
    ) -> BoxFuture<'_, Result<Created, AgentError>>;
    /// Stops a container: its stop signal, its grace period to exit, then SIGKILL.
    fn stop<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), AgentError>>;
    /// Removes a container, killing it first if it runs.
    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), AgentError>>;
    /// Whether the image is in the local store.
    fn has_image<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<bool, String>>;
    /// Pulls the image (with `auth`, the service's credentials, when given) unless it is
    /// there; answers whether it pulled.
    fn pull_if_missing<'a>(
        &'a self,
        image: &'a str,
        auth: Option<&'a RegistryAuth>,
    ) -> BoxFuture<'a, Result<bool, String>>;
    /// The versions of the secrets and configs a container has (none when it has none).
    fn file_versions(&self, id: &str) -> Vec<FileVersion>;
    /// Replaces the files of a running container that `content` has newer versions of.
    fn update_files<'a>(
        &'a self,
        id: &'a str,
        content: Vec<FileContent>,
    ) -> BoxFuture<'a, Result<Rotated, AgentError>>;
}

/// The node's own containers and images.
#[derive(Debug)]
pub struct Local {
    pub containers: Arc<Manager>,
    pub images: Arc<ImageStore>,
    /// Registries named with `--insecure-registry` are pulled from over plain HTTP.
    pub registries: RegistryConfig,
}

impl Containers for Local {
    fn list(&self) -> Vec<ContainerInfo> {
        self.containers.list(true)
    }

    fn create(
        &self,
        mut req: CreateContainer,
        files: Option<ContainerFiles>,
    ) -> BoxFuture<'_, Result<Created, AgentError>> {
        // On a node of the overlay a replica is on the cluster network (with the cluster DNS).
        if self.containers.config.cluster_dns.is_some()
            && req.network == hoist_proto::NetworkMode::Bridge
        {
            req.network = hoist_proto::NetworkMode::Cluster;
        }
        Box::pin(async move {
            Ok(self
                .containers
                .create_with_files(req, false, files)
                .await?
                .1)
        })
    }

    fn file_versions(&self, id: &str) -> Vec<FileVersion> {
        self.containers.file_versions(id)
    }

    fn update_files<'a>(
        &'a self,
        id: &'a str,
        content: Vec<FileContent>,
    ) -> BoxFuture<'a, Result<Rotated, AgentError>> {
        Box::pin(self.containers.update_files(id, content))
    }

    fn stop<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), AgentError>> {
        Box::pin(async move { self.containers.stop(id, None).await.map(drop) })
    }

    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), AgentError>> {
        Box::pin(self.containers.remove(id, true))
    }

    fn has_image<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            pull::is_present(&self.images, image)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn pull_if_missing<'a>(
        &'a self,
        image: &'a str,
        auth: Option<&'a RegistryAuth>,
    ) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            let (progress, _ignored) = tokio::sync::mpsc::unbounded_channel();
            pull::pull_if_missing(
                self.images.clone(),
                &self.registries,
                image,
                auth.cloned(),
                progress,
            )
            .await
            .map_err(|e| e.to_string())
        })
    }
}

/// Container operations run at once.
const PARALLEL: usize = 8;

/// A container's replacement of files: in flight, or when it may be tried again.
#[derive(Debug, Clone, Copy)]
struct Rotation {
    in_flight: bool,
    failures: u32,
    not_before: Instant,
}

#[derive(Debug)]
pub struct Executor {
    node: Arc<dyn Containers>,
    /// The content of tasks' secrets and configs.
    files: Arc<dyn FileSource>,
    /// The waits between attempts of one fetch ([`files::RETRY_DELAYS`]).
    fetch_delays: Vec<Duration>,
    /// Containers whose files are being replaced, or whose last replacement failed.
    rotations: Mutex<BTreeMap<String, Rotation>>,
    busy: Mutex<BTreeSet<String>>,
    failures: Mutex<BTreeMap<String, String>>,
    limit: Semaphore,
    /// One image pull at a time: replicas of one service wait for the first pull, not repeat it.
    pulls: tokio::sync::Mutex<()>,
    /// Woken when an action finishes, so reconciliation looks again at once.
    pub done: Notify,
    /// Whether this node's routing mesh serves ingress ports (overlay nodes): replicas then
    /// publish only their `host`-mode ports themselves.
    mesh: std::sync::atomic::AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Executor {
    /// Ingress ports are served by the routing mesh from now on (see `mesh`).
    pub fn use_mesh(&self) {
        self.mesh.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn new(node: Arc<dyn Containers>, files: Arc<dyn FileSource>) -> Arc<Self> {
        Self::with_fetch_delays(node, files, files::RETRY_DELAYS.to_vec())
    }

    /// [`Executor::new`] waiting `fetch_delays` between attempts of a fetch (tests wait less).
    pub fn with_fetch_delays(
        node: Arc<dyn Containers>,
        files: Arc<dyn FileSource>,
        fetch_delays: Vec<Duration>,
    ) -> Arc<Self> {
        Arc::new(Executor {
            node,
            files,
            fetch_delays,
            rotations: Mutex::new(BTreeMap::new()),
            busy: Mutex::new(BTreeSet::new()),
            failures: Mutex::new(BTreeMap::new()),
            limit: Semaphore::new(PARALLEL),
            pulls: tokio::sync::Mutex::new(()),
            done: Notify::new(),
            mesh: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The orchestrated containers, plus tasks with an action in flight or a failed creation.
    pub fn observed(&self) -> Vec<ObservedTask> {
        let mut v: Vec<ObservedTask> = self.node.list().iter().filter_map(observe).collect();
        for o in &mut v {
            if let Some(c) = &o.container_id {
                o.files = self.node.file_versions(c);
            }
        }
        let live: BTreeSet<&str> = v.iter().filter_map(|o| o.container_id.as_deref()).collect();
        lock(&self.rotations).retain(|c, r| r.in_flight || live.contains(c.as_str()));
        let have: BTreeSet<String> = v.iter().map(|o| o.task_id.clone()).collect();
        let busy = lock(&self.busy).clone();
        for task_id in busy {
            v.push(placeholder(task_id, Phase::Busy));
        }
        for (task_id, message) in lock(&self.failures).iter() {
            if !have.contains(task_id) {
                v.push(placeholder(
                    task_id.clone(),
                    Phase::CreateFailed {
                        message: message.clone(),
                    },
                ));
            }
        }
        v
    }

    /// Forgets creation failures of tasks no longer assigned.
    pub fn forget(&self, assigned: impl Fn(&str) -> bool) {
        lock(&self.failures).retain(|t, _| assigned(t));
    }

    pub fn apply(self: &Arc<Self>, actions: Vec<Action>) {
        for action in actions {
            let task_id = match &action {
                Action::Start { task } | Action::Restart { task, .. } => task.task_id.clone(),
                Action::Remove { task_id, .. } => task_id.clone(),
                Action::UpdateFiles { task, container_id } => {
                    self.rotate(task.clone(), container_id.clone());
                    continue;
                }
            };
            if !lock(&self.busy).insert(task_id.clone()) {
                continue;
            }
            let me = self.clone();
            tokio::spawn(async move {
                let permit = me.limit.acquire().await;
                me.run(action).await;
                drop(permit);
                lock(&me.busy).remove(&task_id);
                me.done.notify_one();
            });
        }
    }

    /// Replaces a running container's files with the newer versions its assignment names, in
    /// a task of its own: unless one is in flight for the container, or the last one failed
    /// and its back-off has not passed.
    fn rotate(self: &Arc<Self>, task: Assignment, container: String) {
        {
            let now = Instant::now();
            let mut rotations = lock(&self.rotations);
            let r = rotations.entry(container.clone()).or_insert(Rotation {
                in_flight: false,
                failures: 0,
                not_before: now,
            });
            if r.in_flight || r.not_before > now {
                return;
            }
            r.in_flight = true;
        }
        let me = self.clone();
        // Not under the container operations' limit: a fetch that waits for the controller
        // must not hold up starts and removals.
        tokio::spawn(async move {
            let result = me.update_files(&task, &container).await;
            let mut rotations = lock(&me.rotations);
            match result {
                Ok(()) => {
                    rotations.remove(&container);
                }
                Err(message) => {
                    let r = rotations.entry(container.clone()).or_insert(Rotation {
                        in_flight: false,
                        failures: 0,
                        not_before: Instant::now(),
                    });
                    r.in_flight = false;
                    r.failures = r.failures.saturating_add(1);
                    let wait = super::backoff(r.failures.min(6));
                    r.not_before = Instant::now() + wait;
                    if r.failures == 1 || r.failures.is_multiple_of(10) {
                        tracing::warn!(task = %task.task_id, %container, failures = r.failures,
                            "replacing secrets and configs failed (the container keeps the versions it has; trying again in {wait:?}): {message}");
                    }
                }
            }
            drop(rotations);
            me.done.notify_one();
        });
    }

    /// Fetches the files of `task` that `container` has older versions of and replaces them.
    async fn update_files(&self, task: &Assignment, container: &str) -> Result<(), String> {
        let wanted = files::stale(&files::followed(task), &self.node.file_versions(container));
        if wanted.is_empty() {
            return Ok(());
        }
        tracing::info!(task = %task.task_id, %container, files = %list(&wanted), "new versions of secrets and configs: fetching");
        let refs = files::refs_of(task)?;
        let got = files::fetch_for(&*self.files, task, &refs, &self.fetch_delays).await?;
        let rotated = self
            .node
            .update_files(container, got.files)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(task = %task.task_id, %container, files = %list(&rotated.changed),
            signals = ?rotated.signals, "secrets and configs replaced in the running container");
        Ok(())
    }

    /// The secrets and configs of `task`, fetched (none when its spec references none).
    async fn task_files(&self, task: &Assignment) -> Result<Option<ContainerFiles>, String> {
        let refs = files::refs_of(task)?;
        if refs.is_empty() {
            return Ok(None);
        }
        let got = files::fetch_for(&*self.files, task, &refs, &self.fetch_delays).await?;
        let versions: Vec<FileVersion> = got
            .files
            .iter()
            .map(|f| FileVersion {
                kind: f.kind,
                name: f.name.clone(),
                version: f.version,
            })
            .collect();
        tracing::info!(task = %task.task_id, files = %list(&versions), "secrets and configs fetched");
        Ok(Some(ContainerFiles {
            refs,
            content: got.files,
        }))
    }

    async fn run(&self, action: Action) {
        match action {
            Action::Start { task } => {
                tracing::info!(task = %task.task_id, service = %task.service, slot = task.slot, "starting task");
                self.start(&task, &[]).await;
            }
            Action::Restart {
                task,
                old_container,
                restarts_ms,
            } => {
                tracing::info!(task = %task.task_id, service = %task.service, restarts = restarts_ms.len(), "restarting task");
                if let Err(e) = self.node.remove(&old_container).await {
                    if e.kind() != ErrorKind::NotFound {
                        tracing::warn!(task = %task.task_id, "remove the exited container {old_container}: {e}");
                        return;
                    }
                }
                self.start(&task, &restarts_ms).await;
            }
            Action::Remove {
                task_id,
                container_id,
                reason,
            } => {
                tracing::info!(task = %task_id, container = %container_id, "removing task: {reason}");
                let res = match self.node.stop(&container_id).await {
                    Ok(()) => self.node.remove(&container_id).await,
                    Err(e) => Err(e),
                };
                match res {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => tracing::warn!(task = %task_id, "remove {container_id}: {e}"),
                }
            }
            // Never made busy: `apply` runs it on its own.
            Action::UpdateFiles { task, container_id } => {
                if let Err(e) = self.update_files(&task, &container_id).await {
                    tracing::warn!(task = %task.task_id, container = %container_id, "replacing secrets and configs failed: {e}");
                }
            }
        }
    }

    /// Pulls the task's image when the node lacks it, as a Swarm node does before starting a
    /// task: with the service's registry credentials when it has some (`--with-registry-auth`),
    /// else anonymously; registries named with `--insecure-registry` over plain HTTP.
    async fn pull_image(&self, image: &str, auth: Option<&RegistryAuth>) -> Result<(), String> {
        // The common case, an image the node has, takes no lock.
        if let Ok(true) = self.node.has_image(image).await {
            return Ok(());
        }
        let _one = self.pulls.lock().await;
        match self.node.pull_if_missing(image, auth).await {
            Ok(true) => {
                tracing::info!(image, "pulled");
                Ok(())
            }
            Ok(false) => Ok(()),
            Err(e) => Err(format!(
                "image {image:?} is not on this node and could not be pulled: {e}"
            )),
        }
    }

    /// Pulls the image if needed, fetches the secrets and configs (last: their content is
    /// held as briefly as can be), then creates the container.
    async fn create(&self, task: &Assignment, restarts_ms: &[u64]) -> Result<Created, String> {
        // The replica runs exactly the bits pinned at apply: `NAME:TAG@sha256:...`, which is
        // also the image its container shows.
        let image = task.spec.pinned_image();
        self.pull_image(&image, task.spec.registry_auth.as_ref())
            .await?;
        let mut req = create_request(
            task,
            restarts_ms,
            self.mesh.load(std::sync::atomic::Ordering::Relaxed),
        )?;
        req.image = image;
        let files = self.task_files(task).await?;
        self.node
            .create(req, files)
            .await
            .map_err(|e| e.to_string())
    }

    async fn start(&self, task: &Assignment, restarts_ms: &[u64]) {
        let created = self.create(task, restarts_ms).await;
        match created {
            Ok(c) => {
                lock(&self.failures).remove(&task.task_id);
                tracing::info!(task = %task.task_id, container = %c.id, name = %c.name, "task running");
            }
            Err(message) => {
                tracing::warn!(task = %task.task_id, image = %task.spec.image, "task failed to start: {message}");
                lock(&self.failures).insert(task.task_id.clone(), message);
            }
        }
    }
}

fn placeholder(task_id: String, phase: Phase) -> ObservedTask {
    ObservedTask {
        task_id,
        container_id: None,
        phase,
        restarts_ms: vec![],
        created_ms: u64::MAX,
        address: None,
        image_check: None,
        files: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::super::container::{RESTARTS, TASK};
    use super::super::files::FetchError;
    use super::*;
    use crate::testing::{FakeContainers, FakeFiles, NodeCall};
    use hoist_proto::cluster::TaskState;
    use hoist_proto::files::{FileKind, FileRef, TaskFiles};
    use hoist_proto::node::Assignment;
    use hoist_proto::service::ServiceSpec;
    use std::time::Duration;

    fn task(id: &str, image: &str) -> Assignment {
        Assignment {
            task_id: id.into(),
            service: "web".into(),
            service_version: 1,
            slot: 1,
            spec: ServiceSpec::new("web", image),
            desired: TaskState::Running,
            files: vec![],
            spec_held: false,
        }
    }

    /// An executor over `node` whose secrets and configs come from `files`, asking again at
    /// once when they are not available.
    fn executor_with(node: &Arc<FakeContainers>, files: &Arc<FakeFiles>) -> Arc<Executor> {
        Executor::with_fetch_delays(
            node.clone(),
            files.clone(),
            vec![Duration::from_millis(1); 3],
        )
    }

    fn executor(node: &Arc<FakeContainers>) -> Arc<Executor> {
        executor_with(node, &Arc::new(FakeFiles::default()))
    }

    fn secret_version(version: u64) -> FileVersion {
        FileVersion {
            kind: FileKind::Secret,
            name: "db-pass".into(),
            version,
        }
    }

    fn secret_content(version: u64) -> TaskFiles {
        TaskFiles {
            files: vec![FileContent {
                kind: FileKind::Secret,
                name: "db-pass".into(),
                version,
                data: format!("pass-{version}").into_bytes(),
            }],
        }
    }

    /// Task `id` whose spec references secret `db-pass`, assigned at `version`.
    fn task_with_secret(id: &str, version: u64) -> Assignment {
        let mut t = task(id, "busybox");
        t.spec.secrets = vec![FileRef {
            source: "db-pass".into(),
            target: None,
            mode: Some("0400".into()),
            uid: None,
            gid: None,
            on_update: Some("signal:SIGHUP".into()),
        }];
        t.files = vec![secret_version(version)];
        t
    }

    fn phase_of(ex: &Executor, task_id: &str) -> Option<Phase> {
        ex.observed()
            .into_iter()
            .find(|o| o.task_id == task_id)
            .map(|o| o.phase)
    }

    /// Waits until no action is in flight.
    async fn settle(ex: &Executor) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while ex.observed().iter().any(|o| o.phase == Phase::Busy) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "actions did not finish"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Waits until the node has seen `n` calls.
    async fn calls(node: &FakeContainers, n: usize) -> Vec<NodeCall> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while node.calls().len() < n {
            assert!(tokio::time::Instant::now() < deadline, "{:?}", node.calls());
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        node.calls()
    }

    /// A node running task `t1` (image `busybox`) in a container, and that container's id.
    async fn running_t1() -> (Arc<FakeContainers>, Arc<Executor>, String) {
        let node = Arc::new(FakeContainers::new(&["busybox"], &[]));
        let ex = executor(&node);
        ex.apply(vec![Action::Start {
            task: task("t1", "busybox"),
        }]);
        settle(&ex).await;
        let id = node.list()[0].id.clone();
        (node, ex, id)
    }

    #[tokio::test]
    async fn a_started_task_is_busy_until_its_container_runs() {
        let node = Arc::new(FakeContainers::new(&["busybox"], &[]));
        let ex = executor(&node);
        node.hold();
        let start = || Action::Start {
            task: task("t1", "busybox"),
        };
        ex.apply(vec![start()]);
        assert_eq!(
            calls(&node, 1).await,
            vec![NodeCall::Create("web.1.t1".into())]
        );
        assert_eq!(phase_of(&ex, "t1"), Some(Phase::Busy));
        // A second pass while the first is in flight leaves the task alone.
        ex.apply(vec![start()]);
        node.release();
        settle(&ex).await;
        assert_eq!(node.calls().len(), 1, "{:?}", node.calls());
        let observed = ex.observed();
        assert_eq!(observed.len(), 1, "{observed:?}");
        assert_eq!(observed[0].phase, Phase::Running);
        let container = &node.list()[0];
        assert_eq!(
            container.spec.labels.get(TASK).map(String::as_str),
            Some("t1")
        );
        assert_eq!(observed[0].container_id.as_ref(), Some(&container.id));
    }

    #[tokio::test]
    async fn a_missing_image_is_pulled_once_for_all_replicas() {
        let node = Arc::new(FakeContainers::new(&[], &["nginx"]));
        let ex = executor(&node);
        ex.apply(vec![
            Action::Start {
                task: task("t1", "nginx"),
            },
            Action::Start {
                task: task("t2", "nginx"),
            },
        ]);
        settle(&ex).await;
        let pulls = node
            .calls()
            .into_iter()
            .filter(|c| matches!(c, NodeCall::Pull(_)));
        assert_eq!(
            pulls.collect::<Vec<_>>(),
            vec![NodeCall::Pull("nginx".into())]
        );
        assert_eq!(phase_of(&ex, "t1"), Some(Phase::Running));
        assert_eq!(phase_of(&ex, "t2"), Some(Phase::Running));
    }

    #[tokio::test]
    async fn a_pinned_private_image_is_pulled_with_the_services_credentials() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let pinned = format!("reg.example/app:v1@{digest}");
        let node = Arc::new(FakeContainers::new(&[], &[]));
        node.private(&pinned, "alice", "s3cret");
        let ex = executor(&node);
        let mut with = task("t1", "reg.example/app:v1");
        with.spec.image_digest = Some(digest.clone());
        let mut without = with.clone();
        without.task_id = "t2".into();
        with.spec.registry_auth = Some(RegistryAuth {
            username: "alice".into(),
            password: "s3cret".into(),
        });
        // Without credentials first: the message says why.
        ex.apply(vec![Action::Start { task: without }]);
        settle(&ex).await;
        let Some(Phase::CreateFailed { message }) = phase_of(&ex, "t2") else {
            panic!("{:?}", ex.observed());
        };
        assert!(message.contains("authentication required"), "{message}");
        // With them: the pinned reference is pulled and is the container's image.
        ex.apply(vec![Action::Start { task: with }]);
        settle(&ex).await;
        assert_eq!(phase_of(&ex, "t1"), Some(Phase::Running));
        assert_eq!(
            node.calls(),
            vec![
                NodeCall::Pull(pinned.clone()),
                NodeCall::Pull(pinned.clone()),
                NodeCall::Create("web.1.t1".into())
            ]
        );
        assert_eq!(node.list()[0].spec.image, pinned);
    }

    #[tokio::test]
    async fn a_failed_create_is_remembered_until_the_task_goes() {
        let node = Arc::new(FakeContainers::new(&[], &[]));
        let ex = executor(&node);
        ex.apply(vec![Action::Start {
            task: task("t1", "nope"),
        }]);
        settle(&ex).await;
        let Some(Phase::CreateFailed { message }) = phase_of(&ex, "t1") else {
            panic!("{:?}", ex.observed());
        };
        assert!(
            message.starts_with("image \"nope\" is not on this node and could not be pulled"),
            "{message}"
        );
        // The pull was tried; nothing was created.
        assert_eq!(node.calls(), vec![NodeCall::Pull("nope".into())]);
        ex.forget(|t| t != "t1");
        assert!(ex.observed().is_empty());
    }

    #[tokio::test]
    async fn a_restart_removes_the_exited_container_first() {
        let (node, ex, old) = running_t1().await;
        node.exit(&old, 1);
        assert!(matches!(
            phase_of(&ex, "t1"),
            Some(Phase::Exited { code: 1, .. })
        ));
        ex.apply(vec![Action::Restart {
            task: task("t1", "busybox"),
            old_container: old.clone(),
            restarts_ms: vec![42],
        }]);
        settle(&ex).await;
        assert_eq!(
            node.calls()[1..],
            [
                NodeCall::Remove(old.clone()),
                NodeCall::Create("web.1.t1".into())
            ]
        );
        let new = &node.list()[0];
        assert_ne!(new.id, old);
        assert_eq!(
            new.spec.labels.get(RESTARTS).map(String::as_str),
            Some("42")
        );
        assert_eq!(phase_of(&ex, "t1"), Some(Phase::Running));
    }

    #[tokio::test]
    async fn a_removal_stops_first_and_a_missing_container_is_no_error() {
        let (node, ex, id) = running_t1().await;
        let remove = |container_id: &str| Action::Remove {
            task_id: "t1".into(),
            container_id: container_id.into(),
            reason: "shut down".into(),
        };
        ex.apply(vec![remove(&id)]);
        settle(&ex).await;
        assert_eq!(
            node.calls()[1..],
            [NodeCall::Stop(id.clone()), NodeCall::Remove(id.clone())]
        );
        assert!(node.list().is_empty());
        ex.apply(vec![remove(&id)]);
        settle(&ex).await;
        assert_eq!(node.calls().last(), Some(&NodeCall::Stop(id)));
        assert!(ex.observed().is_empty());
    }

    /// Waits until `f` holds.
    async fn until(what: &str, f: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !f() {
            assert!(tokio::time::Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[tokio::test]
    async fn a_task_with_a_secret_gets_its_content_fetched_before_its_container() {
        let node = Arc::new(FakeContainers::new(&["busybox"], &[]));
        let files = Arc::new(FakeFiles::default());
        // The controller cannot decrypt yet, then answers.
        files.push(Err(FetchError::Later(
            "HTTP 503: cannot decrypt yet".into(),
        )));
        files.set(secret_content(3));
        let ex = executor_with(&node, &files);
        ex.apply(vec![Action::Start {
            task: task_with_secret("t1", 3),
        }]);
        settle(&ex).await;
        assert_eq!(phase_of(&ex, "t1"), Some(Phase::Running));
        assert_eq!(files.fetched(), ["t1", "t1"]);
        let id = node.list()[0].id.clone();
        assert_eq!(node.files_of(&id)[0].data, b"pass-3");
        // Its versions are observed with it; none of the content is in its create request.
        let o = ex.observed();
        assert_eq!(o[0].files, [secret_version(3)]);
        let spec = serde_json::to_string(&node.list()[0].spec).unwrap();
        assert!(!spec.contains("pass-3"), "{spec}");
        // A task without references fetches nothing.
        ex.apply(vec![Action::Start {
            task: task("t2", "busybox"),
        }]);
        settle(&ex).await;
        assert_eq!(files.fetched().len(), 2);
    }

    #[tokio::test]
    async fn content_that_stays_unavailable_fails_the_task_naming_the_secret() {
        let node = Arc::new(FakeContainers::new(&["busybox"], &[]));
        let files = Arc::new(FakeFiles::default());
        for _ in 0..10 {
            files.push(Err(FetchError::Later(
                "HTTP 503: cannot decrypt yet".into(),
            )));
        }
        let ex = executor_with(&node, &files);
        ex.apply(vec![Action::Start {
            task: task_with_secret("t1", 3),
        }]);
        settle(&ex).await;
        let Some(Phase::CreateFailed { message }) = phase_of(&ex, "t1") else {
            panic!("{:?}", ex.observed());
        };
        assert_eq!(
            message,
            "cannot get secret \"db-pass\" for the task: HTTP 503: cannot decrypt yet"
        );
        assert_eq!(files.fetched().len(), 4, "one try and three more");
        assert!(
            node.calls().is_empty(),
            "nothing created: {:?}",
            node.calls()
        );
        // An older version than assigned is not good enough either (a lagging controller).
        let files = Arc::new(FakeFiles::default());
        files.set(secret_content(2));
        let ex = executor_with(&node, &files);
        ex.apply(vec![Action::Start {
            task: task_with_secret("t2", 3),
        }]);
        settle(&ex).await;
        let Some(Phase::CreateFailed { message }) = phase_of(&ex, "t2") else {
            panic!("{:?}", ex.observed());
        };
        assert!(
            message.ends_with(
                "secret \"db-pass\": the controller sent version 2, the task needs version 3"
            ),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_new_version_replaces_the_files_of_the_running_container_in_place() {
        let node = Arc::new(FakeContainers::new(&["busybox"], &[]));
        let files = Arc::new(FakeFiles::default());
        files.set(secret_content(3));
        let ex = executor_with(&node, &files);
        ex.apply(vec![Action::Start {
            task: task_with_secret("t1", 3),
        }]);
        settle(&ex).await;
        let id = node.list()[0].id.clone();
        // Version 4 is made: the assignment says so, the reconciliation asks for it.
        let t = task_with_secret("t1", 4);
        let actions =
            super::super::reconcile::reconcile(std::slice::from_ref(&t), &ex.observed(), 0);
        assert_eq!(
            actions,
            [Action::UpdateFiles {
                task: t.clone(),
                container_id: id.clone()
            }]
        );
        files.set(secret_content(4));
        files.hold();
        ex.apply(actions.clone());
        until("the fetch", || files.fetched().len() == 2).await;
        // While it is fetched the task keeps running: not busy, not restarted.
        assert_eq!(phase_of(&ex, "t1"), Some(Phase::Running));
        // A second pass meanwhile does not fetch again.
        ex.apply(actions);
        files.release();
        until("the replacement", || {
            ex.observed()[0].files == [secret_version(4)]
        })
        .await;
        assert_eq!(files.fetched().len(), 2);
        assert_eq!(node.files_of(&id)[0].data, b"pass-4");
        assert_eq!(
            node.calls(),
            [
                NodeCall::Create("web.1.t1".into()),
                NodeCall::UpdateFiles(id.clone(), vec![secret_version(4)])
            ]
        );
        // Up to date: nothing more to do.
        assert!(super::super::reconcile::reconcile(&[t], &ex.observed(), 0).is_empty());
    }

    #[tokio::test]
    async fn a_failed_replacement_waits_before_it_is_tried_again() {
        let node = Arc::new(FakeContainers::new(&["busybox"], &[]));
        let files = Arc::new(FakeFiles::default());
        files.push(Ok(secret_content(3)));
        let ex = executor_with(&node, &files);
        ex.apply(vec![Action::Start {
            task: task_with_secret("t1", 3),
        }]);
        settle(&ex).await;
        let id = node.list()[0].id.clone();
        // No answer for the new version: refused.
        let update = || Action::UpdateFiles {
            task: task_with_secret("t1", 4),
            container_id: id.clone(),
        };
        ex.apply(vec![update()]);
        until("the failure", || {
            lock(&ex.rotations)
                .get(&id)
                .is_some_and(|r| !r.in_flight && r.failures == 1)
        })
        .await;
        assert_eq!(files.fetched().len(), 2);
        // At once again: within the back-off, nothing is fetched.
        ex.apply(vec![update()]);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(files.fetched().len(), 2);
        assert_eq!(ex.observed()[0].files, [secret_version(3)]);
        assert_eq!(phase_of(&ex, "t1"), Some(Phase::Running));
        // The container gone, its back-off is forgotten.
        node.exit(&id, 0);
        let _ = node.remove(&id).await;
        ex.observed();
        assert!(lock(&ex.rotations).is_empty());
    }
}
