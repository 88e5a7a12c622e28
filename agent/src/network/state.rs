//! The persisted attachments (`state_dir/attachments.json`): what `detach` and `retain` need
//! after an agent restart. Written atomically: tmp + fdatasync + rename, so a crash leaves either
//! the old or the new file, never a torn one.
//!
//! The directory is deliberately not fsynced (it would double the cost, 1-2 ms here, on every
//! attach and detach): a lost rename can only follow a power cut, i.e. a reboot, after which every
//! namespace and rule the file describes is gone anyway and `retain` cleans up from either version.
//!
//! IPAM allocations and port owners are derived from these records, so there is one source of truth.

use super::{Attachment, NetworkError};
use hoist_proto::agent::{NetworkMode, PortMapping};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Bumped on incompatible changes; a newer file is refused rather than misread.
pub const STATE_VERSION: u32 = 1;
const FILE: &str = "attachments.json";

/// One attached container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub mode: NetworkMode,
    pub attachment: Attachment,
    pub ports: Vec<PortMapping>,
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PersistedState {
    pub version: u32,
    pub attachments: BTreeMap<String, Record>,
}

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE)
}

/// Reads the state; a missing file is an empty state.
pub fn load(state_dir: &Path) -> Result<PersistedState, NetworkError> {
    let path = path(state_dir);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(PersistedState {
                version: STATE_VERSION,
                attachments: BTreeMap::new(),
            })
        }
        Err(e) => return Err(NetworkError::io("read", path, e)),
    };
    let state: PersistedState =
        serde_json::from_slice(&bytes).map_err(|e| NetworkError::State {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    if state.version != STATE_VERSION {
        return Err(NetworkError::State {
            path,
            reason: format!(
                "unsupported version {} (expected {STATE_VERSION})",
                state.version
            ),
        });
    }
    Ok(state)
}

/// Serializes `state` (cheap; done under the caller's lock).
pub fn encode(state: &PersistedState) -> Vec<u8> {
    // Plain data with string keys: serialization cannot fail.
    serde_json::to_vec_pretty(state).unwrap_or_default()
}

/// Replaces the state file atomically (see the module docs on durability). Blocking: call from `spawn_blocking`.
pub fn write_atomic(state_dir: &Path, bytes: &[u8]) -> Result<(), NetworkError> {
    fs::create_dir_all(state_dir)
        .map_err(|e| NetworkError::io("create directory", state_dir, e))?;
    let target = path(state_dir);
    let tmp = state_dir.join(format!("{FILE}.tmp"));
    let mut f = fs::File::create(&tmp).map_err(|e| NetworkError::io("create", &tmp, e))?;
    f.write_all(bytes)
        .map_err(|e| NetworkError::io("write", &tmp, e))?;
    f.sync_data()
        .map_err(|e| NetworkError::io("fsync", &tmp, e))?;
    drop(f);
    fs::rename(&tmp, &target).map_err(|e| NetworkError::io("rename onto", &target, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_proto::agent::Protocol;
    use std::net::Ipv4Addr;

    fn sample() -> PersistedState {
        let mut s = PersistedState {
            version: STATE_VERSION,
            attachments: BTreeMap::new(),
        };
        s.attachments.insert(
            "web1".into(),
            Record {
                mode: NetworkMode::Bridge,
                attachment: Attachment {
                    netns: Some("/data/netns/web1".into()),
                    ip: Some(Ipv4Addr::new(10, 89, 0, 2)),
                    gateway: Some(Ipv4Addr::new(10, 89, 0, 1)),
                    prefix_len: 24,
                },
                ports: vec![PortMapping {
                    host_port: 8080,
                    container_port: 80,
                    protocol: Protocol::Tcp,
                }],
            },
        );
        s
    }

    #[test]
    fn round_trip_through_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(load(dir.path()).expect("empty").attachments.len(), 0);
        let s = sample();
        write_atomic(dir.path(), &encode(&s)).expect("write");
        assert_eq!(load(dir.path()).expect("load"), s);
        assert!(!dir.path().join("attachments.json.tmp").exists());
    }

    #[test]
    fn golden_json() {
        let json = String::from_utf8(encode(&sample())).expect("utf8");
        let compact: String = json.split_whitespace().collect();
        assert_eq!(
            compact,
            r#"{"version":1,"attachments":{"web1":{"mode":"bridge","attachment":{"netns":"/data/netns/web1","ip":"10.89.0.2","gateway":"10.89.0.1","prefix_len":24},"ports":[{"host_port":8080,"container_port":80,"protocol":"tcp"}]}}}"#
        );
    }

    #[test]
    fn rejects_garbage_and_future_versions() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(path(dir.path()), b"{nope").expect("write");
        assert!(load(dir.path())
            .expect_err("garbage")
            .to_string()
            .starts_with("network state "));
        fs::write(path(dir.path()), br#"{"version":9,"attachments":{}}"#).expect("write");
        assert!(load(dir.path())
            .expect_err("version")
            .to_string()
            .contains("unsupported version 9"));
    }
}
