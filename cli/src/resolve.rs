//! Preparing service specs before they are sent: each image tag is pinned to the digest its
//! registry serves now (as `docker service create` does), so every replica runs the same bits and
//! a later push to the tag changes nothing until the next apply; with `--with-registry-auth` the
//! operator's stored credentials (`hoist login`) for the image's registry go along.
//!
//! Resolution uses the agent's own registry client and rules (`hoist-registry`: Docker Hub
//! defaults, loopback registries over plain HTTP, `--insecure-registry HOST[:PORT]` for others,
//! token challenges), with the stored credentials when there are some, whether or not they are
//! attached. Every spec is resolved before anything is sent: an image that cannot be resolved
//! fails the apply with nothing changed. `hoist service apply` and `hoist stack deploy` call
//! [`prepare`].

use std::collections::BTreeMap;

use hoist_proto::service::ServiceSpec;
use hoist_registry::{Failure, RegistryConfig, RegistryError, RemoteRef};

use crate::commands::registry::credentials_for;

/// How [`prepare`] treats the specs.
#[derive(Debug, Clone, Default)]
pub struct ResolveOptions {
    /// Pin each image given by tag to its current digest (off with `--no-resolve-image`).
    pub resolve: bool,
    /// Attach the stored credentials of each image's registry (`--with-registry-auth`).
    pub with_registry_auth: bool,
    /// `HOST[:PORT]` of registries reached over plain HTTP (loopback ones always are).
    pub insecure_registries: Vec<String>,
}

/// The `clap` flags of [`ResolveOptions`], for every command that applies specs.
#[derive(Debug, Clone, clap::Args)]
pub struct ResolveArgs {
    /// Do not pin images to the digest their tag names now (replicas then pull the tag).
    #[arg(long)]
    pub no_resolve_image: bool,
    /// Send the credentials stored by `hoist login` for each image's registry, so that the
    /// nodes can pull private images.
    #[arg(long)]
    pub with_registry_auth: bool,
    /// A registry reached over plain HTTP when resolving (`HOST[:PORT]`; repeatable). Loopback
    /// registries always are.
    #[arg(
        long = "insecure-registry",
        value_name = "HOST[:PORT]",
        env = "HOIST_INSECURE_REGISTRY",
        value_delimiter = ','
    )]
    pub insecure_registries: Vec<String>,
}

impl From<ResolveArgs> for ResolveOptions {
    fn from(a: ResolveArgs) -> Self {
        ResolveOptions {
            resolve: !a.no_resolve_image,
            with_registry_auth: a.with_registry_auth,
            insecure_registries: a.insecure_registries,
        }
    }
}

/// `opts` as a cluster at `cluster_format` can take them: pinned digests and credentials are
/// format 2, which a cluster still being upgraded from 0.2.0 refuses; it gets the specs as 0.2.0
/// took them, with a warning.
pub fn for_cluster(mut opts: ResolveOptions, cluster_format: u32) -> ResolveOptions {
    if cluster_format < 2 && (opts.resolve || opts.with_registry_auth) {
        eprintln!(
            "warning: the cluster is at format {cluster_format} (a member runs Hoist 0.2.0): \
             images are not pinned to a digest and no credentials are sent until every member \
             runs 0.3.0"
        );
        opts.resolve = false;
        opts.with_registry_auth = false;
    }
    opts
}

/// Resolves (unless told not to) and attaches credentials (when told to) for every spec; the
/// first failure is an error naming the service, the image and why. Nothing is sent here.
pub async fn prepare(specs: &mut [ServiceSpec], opts: &ResolveOptions) -> Result<(), String> {
    let config = RegistryConfig {
        insecure: opts.insecure_registries.clone(),
    };
    // One resolution per distinct image.
    let mut resolved: BTreeMap<String, String> = BTreeMap::new();
    for spec in specs.iter_mut() {
        let remote = RemoteRef::parse(&spec.image)
            .map_err(|e| format!("service {}: image {:?}: {e}", spec.name, spec.image))?;
        let stored = credentials_for(&spec.image)
            .map_err(|e| format!("service {}: reading stored credentials: {e}", spec.name))?;
        if opts.with_registry_auth {
            match &stored {
                Some(auth) => spec.registry_auth = Some(auth.clone()),
                None => eprintln!(
                    "warning: service {}: no stored credentials for {} (`hoist login {}`); \
                     nodes pull {} with the service's earlier credentials, if any, else anonymously",
                    spec.name, remote.registry, remote.registry, spec.image
                ),
            }
        }
        if !opts.resolve || remote.digest.is_some() {
            continue;
        }
        let digest = match resolved.get(&spec.image) {
            Some(d) => d.clone(),
            None => {
                let d = hoist_registry::resolve_digest(&config, &remote, stored.clone())
                    .await
                    .map_err(|e| {
                        let https = !config.is_insecure(&remote.registry);
                        unresolved(spec, &remote, stored.is_some(), https, &e)
                    })?;
                resolved.insert(spec.image.clone(), d.clone());
                d
            }
        };
        spec.image_digest = Some(digest);
    }
    Ok(())
}

/// "service web: cannot resolve image app:1 (unauthorized): registry ...: ...".
fn unresolved(
    spec: &ServiceSpec,
    remote: &RemoteRef,
    logged_in: bool,
    https: bool,
    e: &RegistryError,
) -> String {
    let why = match e.failure() {
        Failure::NotFound => "not found",
        Failure::Unauthorized => "unauthorized",
        Failure::Unreachable => "registry unreachable",
        Failure::Other => "registry error",
    };
    let r = &remote.registry;
    let hint = match e.failure() {
        Failure::Unauthorized if !logged_in => format!("; log in first (`hoist login {r}`)"),
        Failure::Unreachable | Failure::Other if https => {
            format!("; if {r} speaks plain HTTP, name it with --insecure-registry {r}")
        }
        _ => String::new(),
    };
    format!(
        "service {}: cannot resolve image {} ({why}): {e}{hint}; nothing was applied \
         (--no-resolve-image skips resolution)",
        spec.name, spec.image
    )
}

/// The JSON body of `POST /v1/services` for `spec`: its JSON, plus `registry_auth` (which the
/// spec's JSON never shows, so it is added here explicitly and only here).
pub fn apply_body(spec: &ServiceSpec) -> serde_json::Result<serde_json::Value> {
    let mut body = serde_json::to_value(spec)?;
    if let (Some(auth), Some(map)) = (&spec.registry_auth, body.as_object_mut()) {
        map.insert("registry_auth".into(), serde_json::to_value(auth)?);
    }
    Ok(body)
}

/// The image as tables show it: `NAME:TAG@sha256:` and the first 12 hex of a pinned digest.
pub fn shown_image(spec: &ServiceSpec) -> String {
    match &spec.image_digest {
        Some(d) if !spec.image.contains('@') => {
            let hex = d.strip_prefix("sha256:").unwrap_or(d);
            format!("{}@sha256:{}", spec.image, &hex[..hex.len().min(12)])
        }
        _ => spec.image.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_proto::RegistryAuth;

    fn spec_with_auth() -> ServiceSpec {
        let mut s = ServiceSpec::new("web", "127.0.0.1:5000/team/app:v1");
        s.image_digest = Some(format!("sha256:{}", "ab".repeat(32)));
        s.registry_auth = Some(RegistryAuth {
            username: "alice".into(),
            password: "s3cret-pw".into(),
        });
        s
    }

    #[test]
    fn the_body_carries_credentials_the_specs_json_never_shows() {
        let s = spec_with_auth();
        let body = apply_body(&s).unwrap();
        assert_eq!(
            body["registry_auth"],
            serde_json::json!({"username": "alice", "password": "s3cret-pw"})
        );
        assert_eq!(body["image_digest"], s.image_digest.clone().unwrap());
        // The controller reads the body back to the same spec, credentials included.
        let back: ServiceSpec = serde_json::from_value(body).unwrap();
        assert_eq!(back, s);
        // The spec's own JSON (what inspect, history and every view print) has none of it.
        let shown = serde_json::to_string(&s).unwrap();
        assert!(!shown.contains("s3cret-pw") && !shown.contains("registry_auth"));
        assert!(!format!("{s:?}").contains("s3cret-pw"), "Debug redacts");
        // Without credentials the body is the spec's JSON.
        let mut plain = s.clone();
        plain.registry_auth = None;
        assert_eq!(
            apply_body(&plain).unwrap(),
            serde_json::to_value(&plain).unwrap()
        );
    }

    #[test]
    fn tables_show_the_image_and_its_pinned_digest() {
        let s = spec_with_auth();
        assert_eq!(
            shown_image(&s),
            "127.0.0.1:5000/team/app:v1@sha256:abababababab"
        );
        assert_eq!(
            s.pinned_image(),
            format!("127.0.0.1:5000/team/app:v1@sha256:{}", "ab".repeat(32))
        );
        assert_eq!(shown_image(&ServiceSpec::new("w", "busybox")), "busybox");
    }

    #[tokio::test]
    async fn an_unreachable_registry_fails_before_anything_is_sent() {
        // A loopback port nobody listens on (plain HTTP by the loopback rule): refused at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut specs = vec![ServiceSpec::new("web", &format!("127.0.0.1:{port}/app:v1"))];
        let opts = ResolveOptions {
            resolve: true,
            ..ResolveOptions::default()
        };
        let e = prepare(&mut specs, &opts).await.unwrap_err();
        assert!(
            e.starts_with("service web: cannot resolve image 127.0.0.1:"),
            "{e}"
        );
        assert!(e.contains("(registry unreachable)"), "{e}");
        assert_eq!(specs[0].image_digest, None);
        // An image given by digest, or --no-resolve-image, asks no registry.
        let pinned = format!("127.0.0.1:{port}/app@sha256:{}", "cd".repeat(32));
        let mut specs = vec![
            ServiceSpec::new("a", &pinned),
            ServiceSpec::new("b", &format!("127.0.0.1:{port}/app:v1")),
        ];
        specs[1].image_digest = None;
        prepare(&mut specs[..1], &opts).await.unwrap();
        let off = ResolveOptions::default();
        prepare(&mut specs, &off).await.unwrap();
        assert_eq!(specs[0].image_digest, None);
        assert_eq!(specs[1].image_digest, None);
    }
}
