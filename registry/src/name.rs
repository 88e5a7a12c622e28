//! Remote image references `[REGISTRY/]REPO[:TAG][@DIGEST]` with Docker's defaults, pure.
//!
//! The first path component is a registry when it contains a `.` or a `:` or is `localhost`
//! (Docker's rule); otherwise the registry is Docker Hub (`docker.io`, API host
//! `registry-1.docker.io`) and one-component names get `library/`. Without tag and digest the tag
//! is `latest`. The local name an image is stored under is the "familiar" form Docker shows:
//! Docker Hub names without `docker.io/` and `library/`.

use std::fmt;

use crate::digest::parse_sha256;
use crate::{Reference, RegistryError};

/// Docker Hub's name in references.
pub const DOCKER_HUB: &str = "docker.io";
/// Where Docker Hub's registry API actually answers.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A parsed remote reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRef {
    /// `HOST[:PORT]`, `docker.io` for Docker Hub.
    pub registry: String,
    /// Repository path in the registry, e.g. `library/busybox`.
    pub repository: String,
    /// The tag; `None` only when a digest is given without one.
    pub tag: Option<String>,
    /// `sha256:<hex>` when pinned.
    pub digest: Option<String>,
}

impl RemoteRef {
    pub fn parse(s: &str) -> Result<Self, RegistryError> {
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                if parse_sha256(d).is_none() {
                    return Err(RegistryError::reference(
                        s,
                        "digest must be sha256:<64 lowercase hex>",
                    ));
                }
                (r, Some(d.to_owned()))
            }
            None => (s, None),
        };
        let last_slash = rest.rfind('/');
        let (name, tag) = match rest.rfind(':') {
            Some(colon) if last_slash.is_none_or(|slash| colon > slash) => {
                (&rest[..colon], Some(rest[colon + 1..].to_owned()))
            }
            _ => (rest, None),
        };
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_owned(), path.to_owned())
            }
            _ => (DOCKER_HUB.to_owned(), name.to_owned()),
        };
        let registry = if registry == "index.docker.io" || registry == DOCKER_HUB_API {
            DOCKER_HUB.to_owned()
        } else {
            registry
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        let tag = match (tag, &digest) {
            (None, None) => Some(crate::reference::DEFAULT_TAG.to_owned()),
            (t, _) => t,
        };
        let parsed = Self {
            registry,
            repository,
            tag,
            digest,
        };
        // The local name must be a valid `NAME:TAG` too (checks components, host and tag).
        Reference::parse(&format!(
            "{}:{}",
            parsed.familiar_name(),
            parsed.tag.as_deref().unwrap_or("latest")
        ))
        .map_err(|e| match e {
            RegistryError::InvalidReference { reason, .. } => RegistryError::reference(s, reason),
            other => other,
        })?;
        Ok(parsed)
    }

    /// The name without tag as Docker shows it: `busybox`, `user/app`, `127.0.0.1:5000/app`.
    pub fn familiar_name(&self) -> String {
        if self.registry == DOCKER_HUB {
            self.repository
                .strip_prefix("library/")
                .filter(|r| !r.contains('/'))
                .unwrap_or(&self.repository)
                .to_owned()
        } else {
            format!("{}/{}", self.registry, self.repository)
        }
    }

    /// The key the local store keeps the image under: `NAME:TAG`, or `NAME@DIGEST` without a tag.
    pub fn local_name(&self) -> String {
        match (&self.tag, &self.digest) {
            (Some(t), _) => format!("{}:{t}", self.familiar_name()),
            (None, Some(d)) => format!("{}@{d}", self.familiar_name()),
            (None, None) => format!("{}:latest", self.familiar_name()),
        }
    }

    /// The name a digest-pinned pull is also kept under locally, `NAME@sha256:...` (the tag
    /// aside): what the store looks up for a reference with a digest, so that a tag moved
    /// locally can never stand in for pinned bits.
    pub fn pinned_name(&self) -> Option<String> {
        self.digest
            .as_ref()
            .map(|d| format!("{}@{d}", self.familiar_name()))
    }

    /// What to ask the registry for: the digest when pinned, else the tag.
    pub fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// The host the registry API answers on.
    pub fn api_host(&self) -> &str {
        api_host(&self.registry)
    }
}

/// The API host for a registry name (Docker Hub's differs from its name).
pub fn api_host(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        DOCKER_HUB_API
    } else {
        registry
    }
}

impl fmt::Display for RemoteRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> RemoteRef {
        RemoteRef::parse(s).unwrap()
    }

    #[test]
    fn applies_docker_defaults() {
        let r = p("busybox");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("docker.io", "library/busybox", Some("latest"))
        );
        assert_eq!(r.local_name(), "busybox:latest");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        let r = p("user/app:1.0");
        assert_eq!(r.repository, "user/app");
        assert_eq!(r.local_name(), "user/app:1.0");
        assert_eq!(p("docker.io/library/alpine:3").local_name(), "alpine:3");
    }

    #[test]
    fn recognises_registries_ports_and_digests() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = p(&format!("127.0.0.1:5000/team/app:v1@{d}"));
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert_eq!(r.manifest_reference(), d);
        assert_eq!(r.local_name(), "127.0.0.1:5000/team/app:v1");
        assert_eq!(
            r.pinned_name(),
            Some(format!("127.0.0.1:5000/team/app@{d}"))
        );
        assert_eq!(
            p(&format!("busybox:1@{d}")).pinned_name(),
            Some(format!("busybox@{d}"))
        );
        assert_eq!(p("busybox:1").pinned_name(), None);
        let r = p(&format!("localhost/app@{d}"));
        assert_eq!(r.tag, None);
        assert_eq!(r.local_name(), format!("localhost/app@{d}"));
        let r = p("localhost:5000/app");
        assert_eq!(
            (r.registry.as_str(), r.tag.as_deref()),
            ("localhost:5000", Some("latest"))
        );
        assert_eq!(p("registry.example.com/x").repository, "x");
    }

    #[test]
    fn rejects_bad_references() {
        assert!(RemoteRef::parse("app@sha256:abc").is_err());
        assert!(RemoteRef::parse("UPPER/case").is_err());
        assert!(RemoteRef::parse("").is_err());
        assert!(RemoteRef::parse("app:").is_err());
    }
}
