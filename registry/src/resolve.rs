//! Resolving a reference to the digest of what its registry serves for it today: the manifest or,
//! for a multi-platform image, the index (as `docker service create` pins it; each node then picks
//! its platform from the index when it pulls by digest).

use hoist_proto::RegistryAuth;

use crate::client::RegistryClient;
use crate::digest::sha256_of;
use crate::{RegistryConfig, RegistryError, RemoteRef};

/// The `sha256:...` digest of the manifest or index `reference` names in its registry. The
/// manifest is fetched (bounded) and hashed here: the registry's `Docker-Content-Digest` header,
/// when it sends one, must agree.
pub async fn resolve_digest(
    config: &RegistryConfig,
    reference: &RemoteRef,
    credentials: Option<RegistryAuth>,
) -> Result<String, RegistryError> {
    let client = RegistryClient::connect(
        config,
        &reference.registry,
        &reference.repository,
        credentials,
        "pull",
        &[],
    )
    .await?;
    let (bytes, _, header) = client.manifest(reference.manifest_reference()).await?;
    let digest = sha256_of(&bytes);
    if let Some(expected) = header.or_else(|| reference.digest.clone()) {
        if expected != digest {
            return Err(RegistryError::DigestMismatch {
                what: format!("manifest {reference}"),
                expected,
                actual: digest,
            });
        }
    }
    Ok(digest)
}
