//! `DATA_DIR/overlay/state.json`: the subnet the controller allocated to this node, so that a
//! restarted agent builds its bridge at once, before it reaches a controller. Versioned JSON
//! (see ARCHITECTURE.md, "Formats").

use serde::{Deserialize, Serialize};
use std::path::Path;

/// The record's version; a newer file is refused.
pub const STATE_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverlayState {
    pub version: u32,
    /// The cluster this subnet belongs to.
    pub cluster_id: String,
    /// `10.200.3.0/24`.
    pub subnet: String,
    /// `10.200.0.0/16`.
    pub cluster_cidr: String,
}

pub fn path(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("overlay").join("state.json")
}

/// The saved state, if any (a newer version is an error naming it).
pub fn load(data_dir: &Path) -> anyhow::Result<Option<OverlayState>> {
    let p = path(data_dir);
    let Some(s) = crate::runtime::read_json::<OverlayState>(&p)? else {
        return Ok(None);
    };
    if s.version > STATE_VERSION {
        anyhow::bail!(
            "{}: version {} is newer than this agent reads ({STATE_VERSION})",
            p.display(),
            s.version
        );
    }
    Ok(Some(s))
}

pub fn save(data_dir: &Path, s: &OverlayState) -> anyhow::Result<()> {
    let p = path(data_dir);
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir)?;
    }
    crate::runtime::write_json_atomic(&p, s)?;
    Ok(())
}
