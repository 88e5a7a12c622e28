//! A fake node for the worker's executor: [`FakeContainers`] keeps containers as records,
//! images as names and each container's secret and config versions, records every call
//! ([`NodeCall`]), and can hold creates until a test lets them go, to look at the executor
//! while an action is in flight. [`FakeFiles`] answers fetches of a task's secrets and configs
//! from a script and records them.

use crate::containers::files::{ContainerFiles, Rotated};
use crate::error::AgentError;
use crate::image::ImageError;
use crate::worker::executor::Containers;
use crate::worker::files::{FetchError, FileSource};
use futures::future::BoxFuture;
use hoist_proto::files::{FileContent, FileVersion, TaskFiles};
use hoist_proto::{
    ContainerInfo, ContainerStatus, CreateContainer, Created, ExitInfo, RegistryAuth,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Mutex, MutexGuard};

/// A call the executor made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeCall {
    /// A create, by container name.
    Create(String),
    Stop(String),
    Remove(String),
    /// A pull of an image the node did not have (whether or not the registry had it).
    Pull(String),
    /// A replacement of a container's files, with the versions it changed.
    UpdateFiles(String, Vec<FileVersion>),
}

#[derive(Debug, Default)]
struct Node {
    containers: BTreeMap<String, ContainerInfo>,
    images: BTreeSet<String>,
    /// Images a pull finds.
    in_registry: BTreeSet<String>,
    /// Images a pull finds only with these credentials (user, password).
    private: BTreeMap<String, (String, String)>,
    calls: Vec<NodeCall>,
    seq: u64,
    /// Each container's secrets and configs: (version, content) by (kind, name).
    files: BTreeMap<String, Vec<FileContent>>,
}

/// Containers and images of a node, in memory.
#[derive(Debug)]
pub struct FakeContainers {
    node: Mutex<Node>,
    /// Creates wait while this is false.
    open: tokio::sync::watch::Sender<bool>,
}

impl FakeContainers {
    /// A node holding `images` locally, whose registry has `in_registry`.
    pub fn new(images: &[&str], in_registry: &[&str]) -> Self {
        let node = Node {
            images: images.iter().map(|i| i.to_string()).collect(),
            in_registry: in_registry.iter().map(|i| i.to_string()).collect(),
            ..Node::default()
        };
        FakeContainers {
            node: Mutex::new(node),
            open: tokio::sync::watch::channel(true).0,
        }
    }

    fn node(&self) -> MutexGuard<'_, Node> {
        self.node.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes `image` in the registry private: a pull needs `user`/`password`.
    pub fn private(&self, image: &str, user: &str, password: &str) {
        let mut node = self.node();
        node.in_registry.insert(image.to_string());
        node.private
            .insert(image.to_string(), (user.to_string(), password.to_string()));
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<NodeCall> {
        self.node().calls.clone()
    }

    /// Creates wait until [`FakeContainers::release`].
    pub fn hold(&self) {
        self.open.send_replace(false);
    }

    pub fn release(&self) {
        self.open.send_replace(true);
    }

    /// Makes a container exit with `code`, as its command would.
    pub fn exit(&self, id: &str, code: i32) {
        if let Some(c) = self.node().containers.get_mut(id) {
            c.status = ContainerStatus::Exited;
            c.pid = None;
            c.exit = Some(ExitInfo {
                code,
                signal: None,
                oom_killed: false,
                finished_at: crate::runtime::now_rfc3339(),
            });
        }
    }

    fn not_found(id: &str) -> AgentError {
        AgentError::NotFound(format!("no such container: {id}"))
    }

    /// The content of a container's secrets and configs, as it has them.
    pub fn files_of(&self, id: &str) -> Vec<FileContent> {
        self.node().files.get(id).cloned().unwrap_or_default()
    }
}

fn version_of(f: &FileContent) -> FileVersion {
    FileVersion {
        kind: f.kind,
        name: f.name.clone(),
        version: f.version,
    }
}

impl Containers for FakeContainers {
    fn list(&self) -> Vec<ContainerInfo> {
        self.node().containers.values().cloned().collect()
    }

    fn create(
        &self,
        req: CreateContainer,
        files: Option<ContainerFiles>,
    ) -> BoxFuture<'_, Result<Created, AgentError>> {
        Box::pin(async move {
            let name = req.name.clone().unwrap_or_default();
            self.node().calls.push(NodeCall::Create(name.clone()));
            let mut open = self.open.subscribe();
            let _ = open.wait_for(|open| *open).await;
            let mut node = self.node();
            if !node.images.contains(&req.image) {
                return Err(ImageError::NotFound(req.image.clone()).into());
            }
            if let Some(f) = &files {
                crate::containers::files::initial_state(f).map_err(AgentError::Invalid)?;
            }
            node.seq += 1;
            let id = format!("{:064x}", node.seq);
            let now = crate::runtime::now_rfc3339();
            let info = ContainerInfo {
                id: id.clone(),
                name: name.clone(),
                image: req.image.clone(),
                image_id: format!("sha256:{}", req.image),
                command: req.cmd.clone(),
                status: ContainerStatus::Running,
                created_at: now.clone(),
                started_at: Some(now),
                pid: Some(1000 + node.seq as i32),
                exit: None,
                ip_address: Some(format!("10.89.0.{}", 1 + node.seq)),
                spec: req,
                mounts: Vec::new(),
                healthcheck: None,
                shell: None,
            };
            node.containers.insert(id.clone(), info);
            if let Some(f) = files {
                node.files.insert(id.clone(), f.content);
            }
            Ok(Created {
                id,
                name,
                create_to_exec_us: None,
            })
        })
    }

    fn stop<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), AgentError>> {
        Box::pin(async move {
            self.node().calls.push(NodeCall::Stop(id.to_string()));
            if !self.node().containers.contains_key(id) {
                return Err(Self::not_found(id));
            }
            self.exit(id, 143);
            Ok(())
        })
    }

    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), AgentError>> {
        Box::pin(async move {
            let mut node = self.node();
            node.calls.push(NodeCall::Remove(id.to_string()));
            match node.containers.remove(id) {
                Some(_) => Ok(()),
                None => Err(Self::not_found(id)),
            }
        })
    }

    fn has_image<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move { Ok(self.node().images.contains(image)) })
    }

    fn pull_if_missing<'a>(
        &'a self,
        image: &'a str,
        auth: Option<&'a RegistryAuth>,
    ) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            let mut node = self.node();
            if node.images.contains(image) {
                return Ok(false);
            }
            node.calls.push(NodeCall::Pull(image.to_string()));
            if !node.in_registry.contains(image) {
                return Err(format!("registry: manifest unknown: {image}"));
            }
            if let Some((user, password)) = node.private.get(image) {
                if auth.is_none_or(|a| (&a.username, &a.password) != (user, password)) {
                    return Err("registry: authentication required".to_string());
                }
            }
            node.images.insert(image.to_string());
            Ok(true)
        })
    }

    fn file_versions(&self, id: &str) -> Vec<FileVersion> {
        self.node()
            .files
            .get(id)
            .map(|f| f.iter().map(version_of).collect())
            .unwrap_or_default()
    }

    fn update_files<'a>(
        &'a self,
        id: &'a str,
        content: Vec<FileContent>,
    ) -> BoxFuture<'a, Result<Rotated, AgentError>> {
        Box::pin(async move {
            let mut node = self.node();
            let Some(have) = node.files.get_mut(id) else {
                return Err(Self::not_found(id));
            };
            let mut changed = Vec::new();
            for f in have.iter_mut() {
                let newer = content
                    .iter()
                    .filter(|c| c.kind == f.kind && c.name == f.name && c.version > f.version)
                    .max_by_key(|c| c.version);
                if let Some(c) = newer {
                    *f = c.clone();
                    changed.push(version_of(c));
                }
            }
            node.calls
                .push(NodeCall::UpdateFiles(id.to_string(), changed.clone()));
            Ok(Rotated {
                changed,
                signals: vec![],
            })
        })
    }
}

/// The controllers' answers to fetches of secrets and configs, scripted: queued answers first,
/// then the standing one ([`FakeFiles::set`]), else a refusal. Records each fetch's task.
#[derive(Debug)]
pub struct FakeFiles {
    queued: Mutex<VecDeque<Result<TaskFiles, FetchError>>>,
    standing: Mutex<Option<TaskFiles>>,
    fetched: Mutex<Vec<String>>,
    /// Fetches wait while this is false.
    open: tokio::sync::watch::Sender<bool>,
}

impl Default for FakeFiles {
    fn default() -> Self {
        FakeFiles {
            queued: Mutex::default(),
            standing: Mutex::default(),
            fetched: Mutex::default(),
            open: tokio::sync::watch::channel(true).0,
        }
    }
}

fn guard<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl FakeFiles {
    /// The answer to the next fetch not answered yet.
    pub fn push(&self, answer: Result<TaskFiles, FetchError>) {
        guard(&self.queued).push_back(answer);
    }

    /// The answer to every fetch once the queued ones are used.
    pub fn set(&self, files: TaskFiles) {
        *guard(&self.standing) = Some(files);
    }

    /// The task of every fetch so far, in order.
    pub fn fetched(&self) -> Vec<String> {
        guard(&self.fetched).clone()
    }

    /// Fetches wait until [`FakeFiles::release`].
    pub fn hold(&self) {
        self.open.send_replace(false);
    }

    pub fn release(&self) {
        self.open.send_replace(true);
    }
}

impl FileSource for FakeFiles {
    fn fetch<'a>(&'a self, task_id: &'a str) -> BoxFuture<'a, Result<TaskFiles, FetchError>> {
        Box::pin(async move {
            guard(&self.fetched).push(task_id.to_string());
            let mut open = self.open.subscribe();
            let _ = open.wait_for(|open| *open).await;
            if let Some(answer) = guard(&self.queued).pop_front() {
                return answer;
            }
            guard(&self.standing)
                .clone()
                .ok_or_else(|| FetchError::Refused(format!("no answer for task {task_id}")))
        })
    }
}
