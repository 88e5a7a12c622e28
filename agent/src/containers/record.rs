//! The agent's persisted record of a container (`container.json`) and its live state.

use hoist_proto::{ContainerInfo, ContainerStatus, CreateContainer, ExitInfo};
use serde::{Deserialize, Serialize};

/// Written once at creation; everything else about a container is derived from the supervisor's
/// files. Versioned so that later agents can read older records.
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

/// The API view of a record in a state.
pub fn info(r: &ContainerRecord, state: &State) -> ContainerInfo {
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
    }
}
