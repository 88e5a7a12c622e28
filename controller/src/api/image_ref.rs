//! A spec's image, read at apply as the agents will read it: with `hoist_registry`'s reference
//! parser, the one the worker's pull and the agent's image store use. A reference no agent can
//! read (`a\u0000b`, `../../../../etc/shadow`, an upper-case name) used to be stored and then fail
//! on every replica; now the apply is refused (422) naming the field.
//!
//! Checked by the API before a spec is proposed, not in the state machine's `apply`: committed
//! entries must keep being decided as they were when they were written.

use hoist_proto::service::{FieldError, ServiceSpec};
use hoist_registry::{RegistryError, RemoteRef};

/// The problem with `spec.image` (with its pinned digest), if the agents could not read it.
pub fn check(spec: &ServiceSpec) -> Option<FieldError> {
    let reason = |e: RegistryError| match e {
        RegistryError::InvalidReference { reason, .. } => reason,
        other => other.to_string(),
    };
    if let Err(e) = RemoteRef::parse(&spec.image) {
        return Some(FieldError {
            field: "image".into(),
            message: format!("{:?} is not an image reference: {}", spec.image, reason(e)),
        });
    }
    // As the worker pulls it: `NAME:TAG@DIGEST`.
    let pinned = spec.pinned_image();
    RemoteRef::parse(&pinned).err().map(|e| FieldError {
        field: "image_digest".into(),
        message: format!("{pinned:?} is not an image reference: {}", reason(e)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(image: &str, digest: Option<&str>) -> ServiceSpec {
        let mut s: ServiceSpec =
            serde_json::from_value(serde_json::json!({"name": "web", "image": image})).unwrap();
        s.image_digest = digest.map(str::to_owned);
        s
    }

    #[test]
    fn references_agents_cannot_read_are_refused() {
        let digest = format!("sha256:{}", "a".repeat(64));
        for ok in [
            "busybox",
            "busybox:1.36",
            "library/busybox",
            "127.0.0.1:5000/team/app:v1",
            "registry.example.com/a/b/c:latest",
        ] {
            assert_eq!(check(&spec(ok, None)), None, "{ok}");
            assert_eq!(check(&spec(ok, Some(&digest))), None, "{ok}@");
        }
        assert_eq!(check(&spec(&format!("busybox@{digest}"), None)), None);
        let e = check(&spec("busybox", Some("sha256:xyz"))).unwrap();
        assert_eq!(e.field, "image_digest");
        for bad in [
            "a\u{0}b",
            "../../../../etc/shadow",
            "Busybox",
            "busybox:",
            "busybox@sha256:12",
            "a//b",
            "",
        ] {
            let e = check(&spec(bad, None)).unwrap_or_else(|| panic!("{bad:?} accepted"));
            assert_eq!(e.field, "image");
            assert!(
                e.message
                    .starts_with(&format!("{bad:?} is not an image reference: ")),
                "{}",
                e.message
            );
        }
    }
}
