//! The registry client: the OCI distribution API (pull and push of manifests and blobs) with
//! anonymous, Basic and Bearer-token authentication, over HTTPS with the system's roots
//! (rustls + rustls-platform-verifier) or plain HTTP for registries named insecure.
//!
//! Choice: like Docker, loopback registries (`localhost`, `127.0.0.0/8`, `[::1]`) are insecure
//! without being named; any other plain-HTTP registry must be passed to the agent with
//! `--insecure-registry HOST[:PORT]`. An insecure registry is only spoken to over HTTP.

pub mod auth;
pub mod client;
pub mod name;

pub use client::RegistryClient;
pub use name::RemoteRef;

/// The agent's registry settings.
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
