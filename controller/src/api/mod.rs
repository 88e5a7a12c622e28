//! The HTTP layer: the only module that names axum. `/v1` is the operator API (JSON) and the
//! agents' protocol, `/raft` the peer RPCs (bodies in the format of their media type). Handlers
//! are thin: decode, validate, propose or read, encode. Every answer this member makes names its
//! version (`hoist-version`, `hoist-format`); answers forwarded from the leader name the leader's.

mod agent;
pub use agent::{tasks_for, Holds, NodeTasks};
pub mod auth;
mod autolock;
mod body;
mod ca;
mod cluster;
mod endpoint_answers;
mod error;
mod events;
mod files;
mod forward;
mod hooks;
mod image_ref;
mod metrics;
mod openapi;
mod operator_certs;
mod orchestration;
mod overlay_peers;
mod query;
mod services;
mod sessions;
mod stacks;
mod stream_forward;
mod tokens;

pub use error::ApiError;

use auth::Access;
use hoist_proto::cluster::Role;

use crate::leader::Leader;
use crate::raft::peers::{self, MEMBER_HEADER};
use crate::raft::RaftNode;
use crate::state::State;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{on, MethodFilter};
use axum::{Json, Router};
use hoist_proto::raft::{Command, Response};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// What every handler gets: one pointer, since every request clones it once per layer it
/// passes (an atomic increment and decrement each, where the parts would take one per part).
#[derive(Clone, Debug)]
pub struct Ctx(Arc<CtxParts>);

impl std::ops::Deref for Ctx {
    type Target = CtxParts;

    fn deref(&self) -> &CtxParts {
        &self.0
    }
}

/// What a [`Ctx`] holds.
#[derive(Clone, Debug)]
pub struct CtxParts {
    pub node: RaftNode,
    pub leader: Arc<Leader>,
    /// For forwarding requests to the leader.
    pub http: reqwest::Client,
    /// Logs and exec sessions (the leader's, in memory only).
    pub sessions: Arc<crate::sessions::Sessions>,
    /// When this member last recorded each operator token's use.
    pub usage: Arc<auth::Usage>,
    /// This member's keys and the cluster's data key (`crate::keyring`).
    pub keyring: Arc<crate::keyring::Keyring>,
    /// This member's certificate and the node certificates it signs (`crate::pki`).
    pub pki: Arc<crate::pki::Pki>,
    /// The endpoints answers given lately (`api/endpoint_answers.rs`).
    pub endpoint_answers: Arc<endpoint_answers::Answers>,
    /// The overlay's peers at the newest overlay index answered from (`api/overlay_peers.rs`).
    pub overlay_peers: Arc<overlay_peers::Cache>,
}

impl Ctx {
    pub fn new(node: RaftNode, leader: Arc<Leader>) -> Ctx {
        let http = hoist_transport::client::builder()
            .connect_timeout(Duration::from_millis(500))
            .timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .build()
            .expect("http client builds");
        let keyring = Arc::new(crate::keyring::Keyring::ephemeral(node.id()));
        let pki = crate::pki::Pki::new(
            node.id(),
            node.address(),
            hoist_transport::pki::CERT_LIFETIME,
            node.peer_clients().clone(),
        )
        .expect("a member key");
        Ctx(Arc::new(CtxParts {
            node,
            leader,
            http,
            sessions: Arc::default(),
            usage: Arc::default(),
            endpoint_answers: Arc::default(),
            overlay_peers: Arc::default(),
            keyring,
            pki: Arc::new(pki),
        }))
    }

    /// The parts, to make another [`Ctx`] from.
    fn parts(self) -> CtxParts {
        Arc::unwrap_or_clone(self.0)
    }

    /// The same with this member's keyring (from its data dir).
    pub fn with_keyring(self, keyring: Arc<crate::keyring::Keyring>) -> Ctx {
        Ctx(Arc::new(CtxParts {
            keyring,
            ..self.parts()
        }))
    }

    /// The same with this member's certificates.
    pub fn with_pki(self, pki: Arc<crate::pki::Pki>) -> Ctx {
        Ctx(Arc::new(CtxParts {
            pki,
            ..self.parts()
        }))
    }
}

/// Reads linearizably unless the query says `stale=true` (`true` or `false`, else a 400).
async fn read<T>(
    ctx: &Ctx,
    query: Option<String>,
    f: impl FnOnce(&State) -> T,
) -> Result<T, ApiError> {
    if query::stale(query.as_deref())? {
        // On a copy: a list of every node or task does not hold up `apply`.
        Ok(f(&ctx.node.view()))
    } else {
        Ok(ctx.node.read(f).await?)
    }
}

/// Proposes a command through Raft; an operator's goes into the audit log under the token's
/// name (from cluster format 2, which can carry it).
async fn write(ctx: &Ctx, command: Command) -> Result<Response, ApiError> {
    let command = match auth::principal() {
        Some(p) if ctx.node.stale_read(|s| s.cluster_format) >= 2 => Command::Audited {
            actor: p.name,
            command: Box::new(command),
        },
        _ => command,
    };
    Ok(ctx.node.write(command).await?)
}

/// Declares the route table and the routers made from it: `forwarded` routes sit behind leader
/// forwarding, `local` ones are answered by this member itself. Each entry: method, path, who
/// may call it (`auth.rs`), handler.
macro_rules! route_table {
    (
        forwarded { $($m:ident $path:literal $access:expr => $handler:expr;)* }
        local { $($lm:ident $lpath:literal $laccess:expr => $lhandler:expr;)* }
    ) => {
        /// Every route of the API with what it needs; the router is made from it.
        pub fn routes() -> &'static [auth::Route] {
            const ROUTES: &[auth::Route] = &[
                $(auth::Route { method: stringify!($m), path: $path, access: $access },)*
                $(auth::Route { method: stringify!($lm), path: $lpath, access: $laccess },)*
            ];
            ROUTES
        }

        fn forwarded_routes() -> Router<Ctx> {
            Router::new()$(.route($path, on(MethodFilter::$m, $handler)))*
        }

        fn local_routes() -> Router<Ctx> {
            Router::new()$(.route($lpath, on(MethodFilter::$lm, $lhandler)))*
        }
    };
}

const OPEN: Access = Access::Open;
const VIEWER: Access = Access::Role(Role::Viewer);
const DEPLOYER: Access = Access::Role(Role::Deployer);
const ADMIN: Access = Access::Role(Role::Admin);
const AGENT: Access = Access::Agent;
const HOOK: Access = Access::Hook;
const PEER: Access = Access::Peer;

route_table! {
    forwarded {
        GET "/v1/services" VIEWER => services::list;
        POST "/v1/services" DEPLOYER => services::apply;
        GET "/v1/services/{name}" VIEWER => services::get;
        PUT "/v1/services/{name}" DEPLOYER => services::put;
        DELETE "/v1/services/{name}" DEPLOYER => services::delete;
        POST "/v1/services/{name}/scale" DEPLOYER => services::scale;
        POST "/v1/services/{name}/scale-hook" HOOK => hooks::scale_hook;
        GET "/v1/services/{name}/autoscale" VIEWER => hooks::status;
        POST "/v1/hooks/alertmanager" HOOK => hooks::alertmanager;
        GET "/v1/hooks/tokens" ADMIN => hooks::list_tokens;
        POST "/v1/hooks/tokens" ADMIN => hooks::create_token;
        DELETE "/v1/hooks/tokens/{id}" ADMIN => hooks::remove_token;
        GET "/v1/services/{name}/history" VIEWER => services::history;
        POST "/v1/services/{name}/rollback" DEPLOYER => services::rollback;
        GET "/v1/services/{name}/ps" VIEWER => orchestration::ps;
        GET "/v1/services/{name}/logs" VIEWER => sessions::service_logs;
        POST "/v1/services/{name}/exec" DEPLOYER => sessions::service_exec;
        GET "/v1/services/{name}/rollout" VIEWER => orchestration::rollout;
        GET "/v1/services/{name}/endpoints" VIEWER => orchestration::endpoints;
        GET "/v1/secrets" VIEWER => files::list_secrets;
        GET "/v1/secrets/{name}" VIEWER => files::get_secret;
        PUT "/v1/secrets/{name}" DEPLOYER => files::put_secret;
        DELETE "/v1/secrets/{name}" DEPLOYER => files::remove_secret;
        GET "/v1/configs" VIEWER => files::list_configs;
        GET "/v1/configs/{name}" VIEWER => files::get_config;
        PUT "/v1/configs/{name}" DEPLOYER => files::put_config;
        DELETE "/v1/configs/{name}" DEPLOYER => files::remove_config;
        GET "/v1/stacks" VIEWER => stacks::list;
        POST "/v1/stacks" DEPLOYER => stacks::deploy;
        GET "/v1/stacks/{name}" VIEWER => stacks::get;
        DELETE "/v1/stacks/{name}" DEPLOYER => stacks::remove;
        GET "/v1/cluster/token" ADMIN => orchestration::token;
        POST "/v1/cluster/token/rotate" ADMIN => orchestration::rotate_token;
        GET "/v1/cluster/ca" VIEWER => ca::get;
        POST "/v1/cluster/ca/rotate" ADMIN => ca::rotate;
        GET "/v1/nodes" VIEWER => orchestration::list_nodes;
        GET "/v1/nodes/{id}" VIEWER => orchestration::get_node;
        DELETE "/v1/nodes/{id}" ADMIN => orchestration::remove_node;
        POST "/v1/nodes/{id}/labels" ADMIN => orchestration::label_node;
        GET "/v1/nodes/{id}/volumes" VIEWER => orchestration::node_volumes;
        POST "/v1/nodes/{id}/availability" ADMIN => orchestration::set_availability;
        POST "/v1/agent/register" AGENT => agent::register;
        POST "/v1/agent/certificate" AGENT => agent::certificate;
        POST "/v1/agent/heartbeat" AGENT => agent::heartbeat;
        GET "/v1/agent/assignments" AGENT => agent::assignments;
        GET "/v1/agent/files" AGENT => files::agent_files;
        GET "/v1/agent/endpoints" AGENT => agent::endpoints;
        POST "/v1/agent/overlay" AGENT => agent::overlay;
        POST "/v1/agent/volumes" AGENT => agent::volumes;
        POST "/v1/agent/status" AGENT => agent::status;
        GET "/v1/agent/sessions" AGENT => sessions::agent_poll;
        POST "/v1/agent/sessions/{id}" AGENT => sessions::agent_output;
        GET "/v1/cluster/status" VIEWER => cluster::status;
        GET "/v1/cluster/members" VIEWER => cluster::members;
        POST "/v1/cluster/members" ADMIN => cluster::add_member;
        POST "/v1/cluster/members/{id}/certificate" ADMIN => cluster::member_certificate;
        DELETE "/v1/cluster/members/{id}" ADMIN => cluster::remove_member;
        GET "/v1/cluster/snapshot" ADMIN => cluster::download;
        POST "/v1/cluster/snapshot" ADMIN => cluster::restore;
        GET "/v1/cluster/audit" ADMIN => tokens::audit;
        POST "/v1/cluster/autolock" ADMIN => autolock::set;
        GET "/v1/tokens" ADMIN => tokens::list;
        POST "/v1/tokens" ADMIN => tokens::create;
        DELETE "/v1/tokens/{name}" ADMIN => tokens::remove;
        POST "/v1/tokens/certificate" VIEWER => operator_certs::sign;
        DELETE "/v1/tokens/certificate" ADMIN => tokens::remove_named_certificate;
        GET "/v1/whoami" VIEWER => tokens::whoami;
        GET "/v1/events" VIEWER => events::stream;
        GET "/v1/health" OPEN => health;
        GET "/v1/openapi.json" OPEN => openapi::document;
    }
    local {
        POST "/raft/{kind}" PEER => raft_rpc;
        GET "/v1/cluster/lock" VIEWER => autolock::state;
        POST "/v1/cluster/unlock" OPEN => autolock::unlock;
        GET "/metrics" VIEWER => metrics::scrape;
        GET "/ui" OPEN => crate::ui::index;
        GET "/ui/" OPEN => crate::ui::index;
        GET "/ui/{*asset}" OPEN => crate::ui::asset;
    }
}

/// The whole router: `/v1/...` behind leader forwarding, `/raft/...` for peers, every route
/// behind the authorization layer (`auth.rs`).
pub fn router(ctx: Ctx) -> Router {
    let v1 = forwarded_routes()
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(with_version))
        .layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            auth::authorize,
        ))
        .layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            forward::forward_to_leader,
        ))
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn(metrics::track));
    // Answered by this member itself, never forwarded: peers' RPCs, its own `/metrics`, the
    // dashboard's files.
    let local = local_routes()
        .layer(axum::middleware::from_fn(with_version))
        .layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            auth::authorize,
        ))
        .layer(DefaultBodyLimit::max(body::BLOB_LIMIT))
        .layer(axum::middleware::from_fn(metrics::track));
    v1.merge(local).with_state(ctx)
}

async fn health(axum::extract::State(ctx): axum::extract::State<Ctx>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "ok": true, "id": ctx.node.id() }))
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no route {}", uri.path()))
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// Names this build's version on an answer made here.
async fn with_version(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut resp = next.run(req).await;
    for (k, v) in peers::version_headers() {
        resp.headers_mut().insert(k, v);
    }
    resp
}

async fn raft_rpc(
    axum::extract::State(ctx): axum::extract::State<Ctx>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let sender = headers
        .get(MEMBER_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let format = peers::body_format(&headers);
    let version = peers::peer_version(&headers);
    match ctx
        .node
        .handle_rpc(&kind, &body, format, sender, version)
        .await
    {
        Ok(out) => (
            [(header::CONTENT_TYPE, peers::raft_media_type(format))],
            out,
        )
            .into_response(),
        Err(e) => ApiError::bad_request(e.to_string()).into_response(),
    }
}

/// Serves the router on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    limits: hoist_transport::Limits,
    ctx: Ctx,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let tls = ctx.pki.tls_source();
    let link: Arc<dyn hoist_transport::StreamService> =
        Arc::new(crate::raft::link::Server::new(ctx.node.clone()));
    let streams = vec![(hoist_proto::peer_link::ALPN, link)];
    hoist_transport::serve_tls_with(listener, router(ctx), limits, tls, streams, shutdown).await
}
