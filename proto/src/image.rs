//! Agent API bodies for registry and archive image operations: pull, push, login, tag, inspect,
//! history, prune, and the progress records pull and push stream back.
//!
//! These are JSON over the agent's socket (not postcard): they follow the same plain-field rules as
//! the rest of `agent.rs` so they can be made postcard-safe later.

use serde::{Deserialize, Serialize};

use crate::agent::{ImageConfig, ImageSummary};

/// Credentials for one registry, sent by the CLI with each pull, push or login (the agent keeps none).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryAuth {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// `POST /v1/images/pull`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequest {
    /// `[REGISTRY/]REPO[:TAG][@DIGEST]`, Docker's defaults (docker.io, library/, latest).
    pub reference: String,
    /// `OS/ARCH[/VARIANT]` picked from an image index; `linux/amd64` when absent.
    #[serde(default)]
    pub platform: Option<String>,
    #[serde(default)]
    pub auth: Option<RegistryAuth>,
}

/// `POST /v1/images/push`: pushes the local image named `reference` to the registry it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushRequest {
    pub reference: String,
    #[serde(default)]
    pub auth: Option<RegistryAuth>,
}

/// `POST /v1/registry/login`: checks credentials against a registry (nothing is stored by the agent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRequest {
    /// `HOST[:PORT]`; `docker.io` for Docker Hub.
    pub registry: String,
    pub auth: RegistryAuth,
}

/// `POST /v1/images/tag`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagRequest {
    /// Existing name or id.
    pub source: String,
    /// New `NAME[:TAG]`.
    pub target: String,
}

/// One record of a pull or push stream (newline-delimited JSON). The last record has `image`
/// (success) or `error` set.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ImageProgress {
    /// The blob this is about (`sha256:...`), or empty for the whole operation.
    #[serde(default)]
    pub id: String,
    /// `resolving`, `downloading`, `exists`, `mounted`, `uploading`, `done`, `manifest`, `pulled`,
    /// `pushed`, `error`.
    pub status: String,
    /// Bytes done so far.
    #[serde(default)]
    pub current: u64,
    /// Bytes in total (0 when unknown).
    #[serde(default)]
    pub total: u64,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub image: Option<ImageSummary>,
    /// The manifest digest pulled or pushed, on the last record.
    #[serde(default)]
    pub digest: Option<String>,
}

/// `GET /v1/images/inspect?reference=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInspect {
    pub id: String,
    pub references: Vec<String>,
    pub manifest_digest: String,
    pub manifest_media_type: String,
    pub created_at: Option<String>,
    pub architecture: String,
    pub os: String,
    pub config: ImageConfig,
    /// Uncompressed layer digests, lowest first.
    pub diff_ids: Vec<String>,
    /// Layer blobs as the manifest lists them.
    pub layers: Vec<LayerInfo>,
    /// Unpacked size of all layers in bytes.
    pub size: u64,
}

/// A layer blob of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
}

/// One line of `hoist image history` (newest first, like Docker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub created: Option<String>,
    pub created_by: Option<String>,
    pub comment: Option<String>,
    pub empty_layer: bool,
    /// The layer's unpacked size (0 for empty layers).
    pub size: u64,
}

/// What `POST /v1/images/prune` removed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PruneReport {
    pub blobs: usize,
    pub snapshots: usize,
    /// Bytes freed (blob sizes plus unpacked snapshot sizes).
    pub bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_round_trips_and_hides_passwords() {
        let p = ImageProgress {
            id: "sha256:ab".into(),
            status: "downloading".into(),
            current: 5,
            total: 10,
            ..ImageProgress::default()
        };
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<ImageProgress>(&json).unwrap(), p);
        let minimal: ImageProgress = serde_json::from_str(r#"{"status":"done"}"#).unwrap();
        assert_eq!(minimal.status, "done");
        let auth = RegistryAuth {
            username: "u".into(),
            password: "secret".into(),
        };
        assert!(!format!("{auth:?}").contains("secret"));
    }
}
