//! A fake node for the worker's executor: [`FakeContainers`] keeps containers as records and
//! images as names, records every call ([`NodeCall`]), and can hold creates until a test lets
//! them go, to look at the executor while an action is in flight.

use crate::error::AgentError;
use crate::image::ImageError;
use crate::worker::executor::Containers;
use futures::future::BoxFuture;
use hoist_proto::{
    ContainerInfo, ContainerStatus, CreateContainer, Created, ExitInfo, RegistryAuth,
};
use std::collections::{BTreeMap, BTreeSet};
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
}

impl Containers for FakeContainers {
    fn list(&self) -> Vec<ContainerInfo> {
        self.node().containers.values().cloned().collect()
    }

    fn create(&self, req: CreateContainer) -> BoxFuture<'_, Result<Created, AgentError>> {
        Box::pin(async move {
            let name = req.name.clone().unwrap_or_default();
            self.node().calls.push(NodeCall::Create(name.clone()));
            let mut open = self.open.subscribe();
            let _ = open.wait_for(|open| *open).await;
            let mut node = self.node();
            if !node.images.contains(&req.image) {
                return Err(ImageError::NotFound(req.image.clone()).into());
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
}
