//! Applying reconciliation actions with the container manager: each action runs in its own task
//! (at most a few at once), and the task it concerns is marked busy until it finishes so the next
//! reconciliation pass leaves it alone. Creation failures are remembered per task — they are
//! terminal, reported as `failed`, and the controller replaces the task.
//!
//! The executor works through [`Containers`], what it needs of the node: [`Local`] (the container
//! manager and the image store) in the agent, a recording fake (`crate::testing`) in tests.

use super::container::{create_request, observe};
use super::reconcile::{Action, ObservedTask, Phase};
use crate::containers::Manager;
use crate::error::{AgentError, ErrorKind};
use crate::image::registry::RegistryConfig;
use crate::image::{pull, ImageStore};
use futures::future::BoxFuture;
use hoist_proto::{ContainerInfo, CreateContainer, Created, RegistryAuth};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, Semaphore};

/// What the executor does on its node: list, create, stop and remove containers, and make sure
/// an image is there.
pub trait Containers: Send + Sync + std::fmt::Debug {
    /// Every container, running or not.
    fn list(&self) -> Vec<ContainerInfo>;
    /// Creates and starts a container.
    fn create(&self, req: CreateContainer) -> BoxFuture<'_, Result<Created, AgentError>>;
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

    fn create(&self, mut req: CreateContainer) -> BoxFuture<'_, Result<Created, AgentError>> {
        // On a node of the overlay a replica is on the cluster network (with the cluster DNS).
        if self.containers.config.cluster_dns.is_some()
            && req.network == hoist_proto::NetworkMode::Bridge
        {
            req.network = hoist_proto::NetworkMode::Cluster;
        }
        Box::pin(async move { Ok(self.containers.create(req, false).await?.1) })
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

#[derive(Debug)]
pub struct Executor {
    node: Arc<dyn Containers>,
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

    pub fn new(node: Arc<dyn Containers>) -> Arc<Self> {
        Arc::new(Executor {
            node,
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

    async fn start(&self, task: &hoist_proto::node::Assignment, restarts_ms: &[u64]) {
        // The replica runs exactly the bits pinned at apply: `NAME:TAG@sha256:...`, which is
        // also the image its container shows.
        let image = task.spec.pinned_image();
        let auth = task.spec.registry_auth.as_ref();
        let created = match self.pull_image(&image, auth).await {
            Err(e) => Err(e),
            Ok(()) => match create_request(
                task,
                restarts_ms,
                self.mesh.load(std::sync::atomic::Ordering::Relaxed),
            ) {
                Ok(mut req) => {
                    req.image = image.clone();
                    self.node.create(req).await.map_err(|e| e.to_string())
                }
                Err(e) => Err(e),
            },
        };
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
    }
}

#[cfg(test)]
mod tests {
    use super::super::container::{RESTARTS, TASK};
    use super::*;
    use crate::testing::{FakeContainers, NodeCall};
    use hoist_proto::cluster::TaskState;
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
        }
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
        let ex = Executor::new(node.clone());
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
        let ex = Executor::new(node.clone());
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
        let ex = Executor::new(node.clone());
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
        let ex = Executor::new(node.clone());
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
        let ex = Executor::new(node.clone());
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
}
