//! The agent's persisted record of a container (`container.json`) and its live state.

use super::volumes::{self, AnonymousVolume};
use hoist_proto::{ContainerInfo, ContainerStatus, CreateContainer, ExitInfo, ImageHealthcheck};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Written once at creation; everything else about a container is derived from the supervisor's
/// files. Versioned so that later agents can read older records.
///
/// Fields added since version 1 have defaults and are left out when empty, so a record without
/// them is byte for byte what an older agent wrote, and an older record reads with none (no
/// volumes, no image check). The version stays 1: an older agent reading a newer record runs
/// and removes the container as before, and only leaves its volumes' directories behind.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub version: u32,
    pub id: String,
    pub name: String,
    pub image: String,
    pub image_id: String,
    pub command: Vec<String>,
    pub created_at: String,
    pub ip_address: Option<String>,
    pub stop_signal: i32,
    pub spec: CreateContainer,
    /// The anonymous volumes made for the image's `VOLUME`s ([`volumes`]); removed with the
    /// container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anonymous_volumes: Vec<AnonymousVolume>,
    /// The image's `HEALTHCHECK` at creation: a service replica whose spec has no check uses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<ImageHealthcheck>,
    /// The image's `SHELL` at creation, for a `CMD-SHELL` check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    /// The host ids of a user-namespaced container (`spec.userns`) at creation: its writable
    /// layer holds them, and `commit`, `diff` and `export` map them back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userns: Option<crate::runtime::userns::IdRange>,
}

pub const RECORD_VERSION: u32 = 1;

/// Where a container is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Created,
    Running {
        pid: i32,
        started_at: String,
    },
    Exited {
        started_at: Option<String>,
        exit: ExitInfo,
    },
}

impl State {
    pub fn is_running(&self) -> bool {
        matches!(self, State::Running { .. })
    }

    pub fn exit(&self) -> Option<&ExitInfo> {
        match self {
            State::Exited { exit, .. } => Some(exit),
            _ => None,
        }
    }
}

/// The API view of a record in a state; `volumes_root` is `DATA/volumes`.
pub fn info(r: &ContainerRecord, state: &State, volumes_root: &Path) -> ContainerInfo {
    let (status, pid, started_at, exit) = match state {
        State::Created => (ContainerStatus::Created, None, None, None),
        State::Running { pid, started_at } => (
            ContainerStatus::Running,
            Some(*pid),
            Some(started_at.clone()),
            None,
        ),
        State::Exited { started_at, exit } => (
            ContainerStatus::Exited,
            None,
            started_at.clone(),
            Some(exit.clone()),
        ),
    };
    ContainerInfo {
        id: r.id.clone(),
        name: r.name.clone(),
        image: r.image.clone(),
        image_id: r.image_id.clone(),
        command: r.command.clone(),
        status,
        created_at: r.created_at.clone(),
        started_at,
        pid,
        exit,
        ip_address: r.ip_address.clone(),
        spec: r.spec.clone(),
        mounts: volumes::mounts(&r.spec, &r.anonymous_volumes, volumes_root),
        healthcheck: r.healthcheck.clone(),
        shell: r.shell.clone(),
    }
}
