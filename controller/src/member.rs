//! Starting a controller member: open its data dir, serve the API, then bootstrap a new cluster,
//! join an existing one, or simply resume (a restarted member needs only its data dir).

use crate::api::{self, Ctx};
use crate::leader::{self, Leader, LeaderSettings};
use crate::raft::{ConsensusError, RaftNode, RaftSettings, StartError};
use hoist_proto::cluster::JoinRequest;
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How this start relates to a cluster.
#[derive(Debug, Clone)]
pub enum StartMode {
    /// Become a one-member cluster (no-op if the data dir already belongs to one).
    Bootstrap,
    /// Ask a member at one of these addresses to add us (no-op if already a member), with an
    /// admin's operator token if the cluster has them.
    Join {
        seeds: Vec<String>,
        token: Option<String>,
    },
    /// Resume from the data dir.
    Resume,
}

/// Everything a member needs to start.
#[derive(Debug, Clone)]
pub struct MemberOptions {
    pub data_dir: PathBuf,
    /// Where to listen, `HOST:PORT`.
    pub listen: String,
    /// Turn autolock on once the cluster has its data key (`--autolock`, with bootstrap).
    pub autolock: bool,
    /// The listener's connection limits and timeouts.
    pub limits: hoist_transport::Limits,
    /// The address peers and clients use; defaults to `listen`.
    pub advertise: Option<String>,
    /// The member id of a new member (random when absent).
    pub id: Option<u64>,
    pub mode: StartMode,
    pub settings: RaftSettings,
    /// Join as a learner only.
    pub learner: bool,
    /// Node grace period, heartbeat interval, reconcile tick.
    pub leader: LeaderSettings,
    /// How long the certificates this member signs live (nodes' and its own).
    pub cert_lifetime: std::time::Duration,
    /// Peers over plain HTTP although the member has a certificate (`--unsafe-plain-peers`,
    /// for measuring what mutual TLS costs only).
    pub plain_peers: bool,
}

/// Why a member stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("bootstrap: {0}")]
    Bootstrap(ConsensusError),
    #[error("join: {0}")]
    Join(String),
    #[error("serving: {0}")]
    Serve(std::io::Error),
    #[error("member key: {0}")]
    Keys(String),
}

/// Runs a member until `shutdown` completes.
pub async fn run(
    opts: MemberOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), MemberError> {
    let advertise = opts
        .advertise
        .clone()
        .unwrap_or_else(|| opts.listen.clone());
    // Raft's core, replication and state machine run on threads of their own
    // (`raft/runtime.rs`), so that a saturated API does not delay its heartbeats.
    let (data_dir, id, settings) = (opts.data_dir.clone(), opts.id, opts.settings.clone());
    let address = advertise.clone();
    let node = crate::raft::runtime::run(async move {
        RaftNode::open(&data_dir, &address, id, settings).await
    })
    .await?;
    let listener = tokio::net::TcpListener::bind(&opts.listen)
        .await
        .map_err(|source| MemberError::Listen {
            addr: opts.listen.clone(),
            source,
        })?;
    tracing::info!(id = node.id(), address = node.address(), "member serving");
    let leader = Leader::new(LeaderSettings {
        data_dir: Some(opts.data_dir.clone()),
        ..opts.leader.clone()
    });
    tokio::spawn(leader::run(node.clone(), leader.clone()));
    tokio::spawn(crate::autoscale::run_pull(node.clone(), leader.clone()));
    let keyring =
        crate::keyring::Keyring::open(node.id(), &opts.data_dir).map_err(MemberError::Keys)?;
    if keyring.is_locked() {
        tracing::warn!(
            "this member is locked (autolock): secrets and configs wait for `hoist cluster unlock`"
        );
    }
    let keyring = std::sync::Arc::new(keyring);
    tokio::spawn(crate::keyring::run(node.clone(), keyring.clone()));
    if opts.autolock {
        tokio::spawn(turn_on_autolock(node.clone(), keyring.clone()));
    }
    let pki = crate::pki::Pki::open(
        node.id(),
        node.address(),
        opts.cert_lifetime,
        node.peer_clients().clone(),
        &opts.data_dir.join("tls"),
    )
    .map_err(MemberError::Keys)?
    .with_plain_peers(opts.plain_peers);
    let pki = std::sync::Arc::new(pki);
    tokio::spawn(crate::pki::sync::run(
        node.clone(),
        keyring.clone(),
        pki.clone(),
    ));
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut stopping_rx = stopping.clone();
    let mut server = tokio::spawn(api::serve(
        listener,
        opts.limits,
        Ctx::new(node.clone(), leader)
            .with_keyring(keyring)
            .with_pki(pki.clone()),
        async move {
            let _ = stopping_rx.wait_for(|s| *s).await;
        },
    ));
    match &opts.mode {
        StartMode::Bootstrap => node.bootstrap().await.map_err(MemberError::Bootstrap)?,
        StartMode::Join { seeds, token } if !node.is_initialized().await => {
            join(
                seeds,
                token.as_deref(),
                node.id(),
                node.address(),
                opts.learner,
                &pki,
            )
            .await?;
        }
        StartMode::Join { .. } | StartMode::Resume => {}
    }
    tokio::select! {
        _ = shutdown => {}
        served = &mut server => {
            node.shutdown().await;
            return served
                .map_err(|e| MemberError::Serve(std::io::Error::other(e)))?
                .map_err(MemberError::Serve);
        }
    }
    // Raft stops first: the other members elect a leader within an election timeout instead of
    // after this member's open requests end (agents' long polls last up to 30 s). Requests still
    // open after a moment are cut; a client retries them elsewhere.
    tracing::info!("stopping: raft first, then the API");
    node.shutdown().await;
    let _ = stop.send(true);
    match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
        Ok(served) => served
            .map_err(|e| MemberError::Serve(std::io::Error::other(e)))?
            .map_err(MemberError::Serve),
        Err(_) => {
            server.abort();
            tracing::info!(grace = ?SHUTDOWN_GRACE, "cut the requests still open");
            Ok(())
        }
    }
}

/// `--autolock`: once this member leads and holds the data key, turns autolock on (unless it is)
/// and prints the unlock key, once.
async fn turn_on_autolock(node: RaftNode, keyring: std::sync::Arc<crate::keyring::Keyring>) {
    use crate::keyring::lock::{UnlockKey, AUTOLOCK_AAD};
    for _ in 0..600 {
        let ready = node.stale_read(|s| {
            (s.cluster_format >= 2 && s.autolock.is_empty())
                .then(|| keyring.data_key(s))
                .map(|k| k.filter(|_| node.is_leader()))
        });
        match ready {
            None => return, // on already, or a cluster below format 2
            Some(Some(key)) => {
                let unlock = UnlockKey::generate();
                let command = hoist_proto::raft::Command::SetAutolock {
                    sealed_unlock_key: key.seal(AUTOLOCK_AAD, unlock.as_bytes()),
                };
                if let Ok(hoist_proto::raft::Response::Ok) = node.write(command).await {
                    println!(
                        "autolock is on. The unlock key, shown once (every member needs it after a \
                         restart: hoist cluster unlock):\n{}",
                        unlock.text()
                    );
                    return;
                }
            }
            Some(None) => {}
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tracing::warn!("--autolock: the cluster's data key was not ready in a minute; use `hoist cluster autolock on`");
}

/// Asks a seed to sign this member's certificate, so that it serves and calls its peers over
/// mutual TLS from its first Raft RPC. A cluster without a CA (below format 2) or a seed that
/// does not know the route (older) makes none: the member then talks plain HTTP, as the
/// cluster does, and signs its own once it has the data key.
async fn member_certificate(
    client: &reqwest::Client,
    scheme: &str,
    seeds: &[String],
    token: Option<&str>,
    id: u64,
    address: &str,
    pki: &crate::pki::Pki,
) -> Result<(), MemberError> {
    let csr = match pki.request() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot make a signing request for this member");
            return Ok(());
        }
    };
    let req = hoist_proto::cluster::MemberCertificateRequest {
        address: address.to_string(),
        csr,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        for seed in seeds {
            let mut post = client
                .post(format!(
                    "{scheme}://{seed}/v1/cluster/members/{id}/certificate"
                ))
                .json(&req);
            if let Some(t) = token.map(str::trim).filter(|t| !t.is_empty()) {
                post = post.bearer_auth(t);
            }
            let answer = match post.send().await {
                Ok(r) if r.status().is_success() => r
                    .json::<hoist_proto::cluster::MemberCertificate>()
                    .await
                    .map_err(|e| e.to_string()),
                // No CA, an older cluster, or no admin's token: the join says the rest.
                Ok(r) if r.status().is_client_error() => return Ok(()),
                Ok(r) => Err(format!("{seed}: {}", r.status())),
                Err(e) => Err(not_this_cluster(seed, &e)?),
            };
            match answer
                .and_then(|c| pki.install(&format!("{}{}", c.certificate, c.ca_certificate), true))
            {
                Ok(c) => {
                    tracing::info!(root = %c.ca_digest, "this member has its certificate");
                    return Ok(());
                }
                Err(e) => tracing::debug!(error = %e, "member certificate not signed yet"),
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tracing::warn!(
        "no certificate for this member yet: it talks plain HTTP until it signs its own"
    );
    Ok(())
}

/// What a failed request to `seed` says; an error when the seed is not under the root the
/// token pins (the member must stop: nothing it sends there is safe).
fn not_this_cluster(seed: &str, e: &reqwest::Error) -> Result<String, MemberError> {
    let why = hoist_transport::client::error_chain(e);
    if why.contains(hoist_transport::tls::WRONG_ROOT) {
        return Err(MemberError::Join(format!(
            "{seed} is not a member of the cluster the token is for: {why}"
        )));
    }
    Ok(format!("{seed}: {why}"))
}

/// How long open requests may finish once a member stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Asks the seeds, in turn, to add this member until one accepts (2 minutes at most). First,
/// when the cluster has a CA, its certificate (see [`member_certificate`]).
async fn join(
    seeds: &[String],
    token: Option<&str>,
    id: u64,
    address: &str,
    learner: bool,
    pki: &crate::pki::Pki,
) -> Result<(), MemberError> {
    // With the manager join token (it carries the root's digest), the seeds are spoken to over
    // TLS and must prove they belong to that cluster before anything is sent.
    let pinned = token
        .and_then(|t| hoist_proto::node::parse_join_token(t).ok())
        .and_then(|p| p.ca_digest);
    let (builder, scheme) = match &pinned {
        Some(digest) => {
            let trust = hoist_transport::tls::Trust::Pinned(digest.clone());
            let config = hoist_transport::tls::client_config(trust, None)
                .map_err(|e| MemberError::Join(format!("--token: {e}")))?;
            (hoist_transport::client::builder_tls(config), "https")
        }
        None => (hoist_transport::client::builder(), "http"),
    };
    let client = builder
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_secs(90))
        .build()
        .map_err(|e| MemberError::Join(e.to_string()))?;
    if pki.current().is_none() {
        member_certificate(&client, scheme, seeds, token, id, address, pki).await?;
    }
    let req = JoinRequest {
        id,
        address: address.to_string(),
        learner,
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = String::from("no seed given");
    while Instant::now() < deadline {
        for seed in seeds {
            let mut post = client
                .post(format!("{scheme}://{seed}/v1/cluster/members"))
                .json(&req);
            for (k, v) in crate::raft::peers::version_headers() {
                post = post.header(k, v);
            }
            if let Some(t) = token.map(str::trim).filter(|t| !t.is_empty()) {
                post = post.bearer_auth(t);
            }
            match post.send().await {
                Ok(r) if r.status().is_success() => {
                    tracing::info!(seed, "joined the cluster");
                    return Ok(());
                }
                Ok(r)
                    if r.status().is_client_error()
                        && r.status() != reqwest::StatusCode::CONFLICT =>
                {
                    let status = r.status();
                    let body = r.text().await.unwrap_or_default();
                    let hint = match status.as_u16() {
                        401 if token.is_none() => {
                            " (adding a member needs the manager join token or an admin's token: \
                             pass --token or set HOIST_TOKEN)"
                        }
                        401 | 403 => {
                            " (--token must be the manager join token (`hoist cluster token --role \
                             manager`) or an admin's operator token)"
                        }
                        _ => "",
                    };
                    return Err(MemberError::Join(format!(
                        "{seed} refused: {status} {body}{hint}"
                    )));
                }
                Ok(r) => last = format!("{seed}: {}", r.status()),
                Err(e) => last = not_this_cluster(seed, &e)?,
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Err(MemberError::Join(format!(
        "no seed added us within 120s; last: {last}"
    )))
}
