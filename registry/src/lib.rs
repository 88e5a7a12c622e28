//! Hoist's registry client, shared by the agent (pull, push, login) and the CLI (resolving a
//! service's image to a digest at `hoist service apply`): the OCI distribution API (manifests and
//! blobs) with anonymous, Basic and Bearer-token authentication, over HTTPS with the system's roots
//! (rustls + rustls-platform-verifier) or plain HTTP for registries named insecure; image
//! references with Docker's defaults (`name.rs`, `reference.rs`).
//!
//! Choice: like Docker, loopback registries (`localhost`, `127.0.0.0/8`, `[::1]`) are insecure
//! without being named; any other plain-HTTP registry must be named with
//! `--insecure-registry HOST[:PORT]` (the agent's flag, and `hoist service apply`'s). An insecure
//! registry is only spoken to over HTTP.
//!
//! One copy for both: the CLI pins the digest the agent will pull, so both must read a reference
//! and reach a registry by the same rules.

pub mod auth;
pub mod client;
pub mod digest;
mod error;
pub mod name;
pub mod reference;
mod resolve;

pub use client::RegistryClient;
pub use error::{Failure, RegistryError};
pub use name::RemoteRef;
pub use reference::Reference;
pub use resolve::resolve_digest;

/// Largest manifest, index or config read into memory (4 MiB, as containerd's limit).
pub const MAX_METADATA_BYTES: u64 = 4 << 20;

/// Registry settings (the agent's flags; the CLI's for resolution).
#[derive(Debug, Clone, Default)]
pub struct RegistryConfig {
    /// `HOST[:PORT]` of registries spoken to over plain HTTP.
    pub insecure: Vec<String>,
}

impl RegistryConfig {
    /// Whether `registry` (`HOST[:PORT]`) is reached over plain HTTP.
    pub fn is_insecure(&self, registry: &str) -> bool {
        self.insecure.iter().any(|r| r == registry) || is_loopback(registry)
    }
}

/// `localhost`, `127.x.y.z` or `[::1]`, with or without a port.
fn is_loopback(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        registry.split(':').next().unwrap_or("")
    };
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_named_registries_are_insecure() {
        let c = RegistryConfig {
            insecure: vec!["10.0.0.5:5000".into()],
        };
        for r in [
            "localhost:5000",
            "127.0.0.1:41234",
            "127.1.2.3",
            "[::1]:5000",
            "10.0.0.5:5000",
        ] {
            assert!(c.is_insecure(r), "{r}");
        }
        for r in [
            "10.0.0.5",
            "docker.io",
            "localhost.example.com:5000",
            "128.0.0.1",
        ] {
            assert!(!c.is_insecure(r), "{r}");
        }
    }
}
