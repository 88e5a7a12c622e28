//! Who may call what. Operator and agent routes pass here after the forwarding layer has sent
//! what only the leader can answer to the leader (which checks it there); the member's own
//! routes (`/metrics`, `/raft`, `/ui`) pass here first.
//!
//! The router is made from one table of routes, each with the [`Access`] it needs (`mod.rs`), and
//! this layer reads the same table, so a route cannot exist without a rule. Default deny: a path
//! the table does not know needs a viewer's token, and then answers 404.
//!
//! - Operators send `Authorization: Bearer HOISTOP2-...`; the token's role must be at least the
//!   route's. The token's name then travels with the request (a task-local) so that a write is
//!   proposed wrapped in `Command::Audited` under that name. Instead of the token, an operator
//!   may present a client certificate of it over mutual TLS (`operator_certs.rs`): it acts as
//!   the token it names, while that token exists; a bearer token sent as well wins. Operator
//!   certificates get nothing on the agents' routes nor on the members' `/raft` (401).
//! - Agents register with their join token. An agent speaking TLS then presents the node
//!   certificate it was given (`crate::pki`): the certificate's key, which the state records per
//!   node, is what acts for the node. Over plain HTTP an agent sends the bearer credential its
//!   registration answered. Agents older than 0.3.0 send none: they are let in while a node
//!   still runs one (a rolling upgrade).
//! - The scaling hooks check their own tokens (`hooks.rs`); `GET /v1/health`,
//!   `GET /v1/openapi.json` and the dashboard's static files are open (no data).
//! - A cluster below format 2 cannot hold tokens: while a rolling upgrade is under way the API
//!   stays as open as the older members' is, and this member says so in its log once.

use super::error::ApiError;
use super::Ctx;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hoist_proto::cluster::Role;
use hoist_transport::tls::{CertIdentity, CertRole, TlsPeer};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Nothing: it tells nothing about the cluster.
    Open,
    /// An operator token with at least this role.
    Role(Role),
    /// An agent's credential (the join token).
    Agent,
    /// A hook token, checked by the handler.
    Hook,
    /// Another controller member (Raft RPCs, forwarded writes).
    Peer,
}

/// One route of the table the router is made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    /// axum's pattern: `{name}` is one segment, `{*rest}` the rest of the path.
    pub path: &'static str,
    pub access: Access,
}

/// The operator a request was authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
    /// The operator token's public id (`None` for the manager join token, which is none).
    pub token_id: Option<String>,
}

tokio::task_local! {
    /// The operator whose request the current task serves (see the module doc).
    static PRINCIPAL: Principal;
    /// The node whose own credential the current agent request carries.
    static AGENT_NODE: String;
}

/// Refuses an agent request for `node` that does not carry that node's credential, once the
/// node has one: a node's credential acts for it alone, and the join token only registers a
/// node that has one (an agent older than 0.3.0 has none and keeps using the join token).
pub fn check_acts_for(ctx: &Ctx, node: &str) -> Result<(), ApiError> {
    let forbidden = |m: String| ApiError::new(StatusCode::FORBIDDEN, "wrong_node", m);
    match AGENT_NODE.try_with(Clone::clone) {
        Ok(me) if me == node => Ok(()),
        Ok(me) => Err(forbidden(format!(
            "this is node {me:?}'s credential: it cannot act for node {node:?}"
        ))),
        Err(_) => {
            let has_own = ctx.node.stale_read(|s| {
                s.cluster_format >= 2
                    && s.nodes.get(node).is_some_and(|n| {
                        !n.credential_sha256.is_empty() || !n.cert_key_sha256.is_empty()
                    })
            });
            if has_own {
                Err(forbidden(format!(
                    "node {node:?} has a credential of its own (a certificate or a node \
                     credential): requests for it must carry it (the join token only registers \
                     a node)"
                )))
            } else {
                Ok(())
            }
        }
    }
}

/// The operator whose request is being served, if it was authenticated as one.
pub fn principal() -> Option<Principal> {
    PRINCIPAL.try_with(Clone::clone).ok()
}

/// The route table made into one matcher per method (matchit, the one axum routes with), so
/// that a request's rule is found in one walk of its path, not in a scan of every route (it runs
/// on every request, writes included).
pub struct RouteIndex {
    by_method: HashMap<&'static str, matchit::Router<Access>>,
}

impl RouteIndex {
    /// Panics on a table axum itself would refuse (two patterns that conflict): a build error.
    pub fn new(routes: &[Route]) -> RouteIndex {
        let mut by_method: HashMap<&'static str, matchit::Router<Access>> = HashMap::new();
        for r in routes {
            by_method
                .entry(r.method)
                .or_default()
                .insert(r.path, r.access)
                .unwrap_or_else(|e| panic!("route {} {}: {e}", r.method, r.path));
        }
        RouteIndex { by_method }
    }

    /// What `method` on `path` needs: default deny for what no route names. A literal segment
    /// beats a parameter (`/v1/hooks/tokens` before `/v1/hooks/{x}`), as in axum.
    pub fn access_of(&self, method: &Method, path: &str) -> Access {
        // HEAD is answered by GET routes.
        let method = match method.as_str() {
            "HEAD" => "GET",
            m => m,
        };
        self.by_method
            .get(method)
            .and_then(|router| router.at(path).ok())
            .map_or(Access::Role(Role::Viewer), |m| *m.value)
    }
}

impl std::fmt::Debug for RouteIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut methods: Vec<_> = self.by_method.keys().collect();
        methods.sort();
        f.debug_struct("RouteIndex")
            .field("methods", &methods)
            .finish_non_exhaustive()
    }
}

/// The API's route table, compiled once.
fn route_index() -> &'static RouteIndex {
    static INDEX: std::sync::OnceLock<RouteIndex> = std::sync::OnceLock::new();
    INDEX.get_or_init(|| RouteIndex::new(super::routes()))
}

/// When each token was last noted as used by this member (see [`Usage::note`]).
#[derive(Debug, Default)]
pub struct Usage {
    last: Mutex<HashMap<String, Instant>>,
    warned_open: AtomicBool,
    warned_old_agents: AtomicBool,
}

/// A token's last use is replicated at most this often per member.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

impl Usage {
    /// Whether `name`'s use should be written now (not within the last minute).
    fn note(&self, name: &str) -> bool {
        let mut last = self.last.lock().expect("usage lock");
        let now = Instant::now();
        match last.get(name) {
            Some(t) if now.duration_since(*t) < TOUCH_EVERY => false,
            _ => {
                last.insert(name.to_string(), now);
                true
            }
        }
    }
}

fn unauthorized(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

/// A token this member does not know. A follower may not have applied it yet (a token just
/// made, a member catching up after a restart): the answer names the leader, and the
/// forwarding layer asks the leader, whose word is final.
fn unknown_here(ctx: &Ctx) -> ApiError {
    let mut e = unauthorized("the token is unknown or was revoked");
    if !ctx.node.is_leader() {
        e.leader = ctx
            .node
            .leader()
            .filter(|(id, _)| *id != ctx.node.id())
            .map(|(_, addr)| addr);
    }
    e
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// What the state says about credentials, read once per request.
enum Checked {
    /// The cluster is below format 2: no credential can exist yet.
    Open,
    /// An operator, and when its token was last recorded as used.
    Operator(Principal, u64),
    Agent,
    /// An agent with its node's own credential.
    Node(String),
    /// An agent older than 0.3.0, without credentials, while such nodes remain.
    OldAgent,
}

fn check(
    ctx: &Ctx,
    (method, path): (&Method, &str),
    headers: &HeaderMap,
    access: Access,
    certificate: Option<&CertIdentity>,
) -> Result<Checked, ApiError> {
    let presented = bearer(headers);
    let declared_format = crate::raft::peers::peer_version(headers).format;
    // (Read before the state: the membership is not the state's lock.)
    let certificate_token =
        super::operator_certs::token_id_of(certificate, headers, |m| ctx.node.admits_member(m));
    ctx.node.stale_read(|s| {
        if s.cluster_format < 2 {
            return Ok(Checked::Open);
        }
        match access {
            Access::Agent => {
                // (Also when a member forwarded the request for one.)
                if let Some(id) = certificate_token {
                    return Err(unauthorized(format!(
                        "an operator's certificate (token {id}) does not act for nodes: agents \
                         present their node certificate or the join token"
                    )));
                }
                // A node certificate (verified by the TLS layer under the cluster's roots) acts
                // for its node while its key is the one the node registered with: a removed
                // node, or one registered again with another key, is refused here at once.
                if let Some(cert) = certificate.filter(|c| c.role == CertRole::Node) {
                    // (A public key's digest: no secret to compare in constant time.)
                    let known = s.nodes.get(&cert.id).is_some_and(|n| {
                        !n.cert_key_sha256.is_empty() && n.cert_key_sha256 == cert.key_sha256
                    });
                    return if known {
                        Ok(Checked::Node(cert.id.clone()))
                    } else {
                        Err(ApiError::new(
                            StatusCode::UNAUTHORIZED,
                            "unknown_credential",
                            format!(
                                "node {:?}'s certificate is for a key the cluster does not know \
                                 (the node was removed or registered again): the agent registers \
                                 again with the join token",
                                cert.id
                            ),
                        ))
                    };
                }
                if let Some((node, secret)) =
                    presented.and_then(hoist_proto::node::parse_node_credential)
                {
                    let known = s.nodes.get(node).is_some_and(|n| {
                        !n.credential_sha256.is_empty()
                            && crate::credentials::matches(&n.credential_sha256, secret)
                    });
                    return if known {
                        Ok(Checked::Node(node.to_string()))
                    } else {
                        Err(ApiError::new(
                            StatusCode::UNAUTHORIZED,
                            "unknown_credential",
                            format!(
                                "node {node:?}'s credential is unknown or was replaced: the agent \
                                 registers again with the join token"
                            ),
                        ))
                    };
                }
                let join = presented.and_then(|t| hoist_proto::node::parse_join_token(t).ok());
                let ok = join
                    .as_ref()
                    .zip(s.identity.as_ref())
                    .is_some_and(|(p, id)| {
                        p.cluster_id == id.cluster_id
                            && crate::credentials::matches(
                                &crate::credentials::digest(&id.secret),
                                &p.secret,
                            )
                    });
                // During a rolling upgrade, agents older than 0.3.0 send no credentials: they
                // are let in while some node still runs one, so that upgrading the controllers
                // first never cuts the cluster off its nodes. Once every node is upgraded, the
                // door closes by itself.
                let old_agent = presented.is_none()
                    && declared_format < 2
                    && s.nodes.values().any(|n| n.agent_format < 2);
                if ok {
                    Ok(Checked::Agent)
                } else if old_agent {
                    Ok(Checked::OldAgent)
                } else if join.is_some() {
                    Err(ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        "bad_token",
                        "the join token's secret is wrong (rotated, or of another cluster): get \
                         the current one with `hoist cluster token`",
                    ))
                } else {
                    Err(unauthorized(
                        "agent routes need the cluster's join token: `Authorization: Bearer HOIST2-...` \
                         (agents of Hoist 0.3.0 and later send it)",
                    ))
                }
            }
            _ => {
                let Some(text) = presented else {
                    if let Some(id) = certificate_token {
                        return by_certificate(ctx, s, id);
                    }
                    return Err(unauthorized(if s.operator_tokens.is_empty() {
                        "credentials required, and no operator token exists yet: the leader writes \
                         the first admin token to its DATA_DIR/admin.token"
                    } else {
                        "credentials required: `Authorization: Bearer TOKEN` (`hoist --token`, \
                         HOIST_TOKEN, or `hoist cluster login`), or a client certificate of a \
                         token over TLS (`hoist token cert`)"
                    }));
                };
                let Some(parsed) = crate::credentials::parse_operator(text) else {
                    if let Some(p) = manager_join(s, method, path, text) {
                        return p;
                    }
                    return Err(unauthorized(
                        "not an operator token (they look like \
                         HOISTOP2-<cluster>-<CA digest>-<id>-<secret>)",
                    ));
                };
                if let Some(id) = s.identity.as_ref().filter(|i| i.cluster_id != parsed.cluster_id)
                {
                    return Err(ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        "wrong_cluster",
                        format!(
                            "the token is for cluster {}, this is cluster {}",
                            parsed.cluster_id, id.cluster_id
                        ),
                    ));
                }
                crate::credentials::find_operator(s.operator_tokens.values(), &parsed)
                    .map(|t| {
                        let p = Principal {
                            name: t.name.clone(),
                            role: t.role,
                            token_id: Some(t.id.clone()),
                        };
                        Checked::Operator(p, t.last_used_ms)
                    })
                    .ok_or_else(|| unknown_here(ctx))
            }
        }
    })
}

/// A request with a client certificate of the operator token `token_id` (and no bearer token):
/// it acts as that token while the token exists. A follower that does not know the token may
/// not have applied it yet: as for a token, the leader is named and has the final word.
fn by_certificate(ctx: &Ctx, s: &crate::state::State, token_id: &str) -> Result<Checked, ApiError> {
    match super::operator_certs::token_for(s.operator_tokens.values(), token_id) {
        Ok(t) => Ok(Checked::Operator(
            Principal {
                name: t.name.clone(),
                role: t.role,
                token_id: Some(t.id.clone()),
            },
            t.last_used_ms,
        )),
        Err(message) => {
            let mut e = ApiError::new(StatusCode::UNAUTHORIZED, "unknown_credential", message);
            e.leader = unknown_here(ctx).leader;
            Err(e)
        }
    }
}

/// The name a manager join token acts under (in the audit log and errors).
pub const MANAGER_TOKEN_ACTOR: &str = "(manager join token)";

/// A member joining with the manager join token: it acts as an admin for the two requests of a
/// join (its certificate, then adding it), and for nothing else. `None` when `text` is not a
/// join token or the route is not one of those.
fn manager_join(
    s: &crate::state::State,
    method: &Method,
    path: &str,
    text: &str,
) -> Option<Result<Checked, ApiError>> {
    let joins = method == Method::POST
        && (path == "/v1/cluster/members"
            || (path.starts_with("/v1/cluster/members/") && path.ends_with("/certificate")));
    let parts = hoist_proto::node::parse_join_token(text).ok()?;
    if !joins {
        return Some(Err(unauthorized(
            "a join token only registers nodes (worker) or adds members (manager): this route \
             needs an operator token",
        )));
    }
    let id = s.identity.as_ref()?;
    let ok = parts.cluster_id == id.cluster_id
        && !id.manager_secret.is_empty()
        && crate::credentials::matches(
            &crate::credentials::digest(&id.manager_secret),
            &parts.secret,
        );
    Some(if ok {
        Ok(Checked::Operator(
            Principal {
                name: MANAGER_TOKEN_ACTOR.into(),
                role: Role::Admin,
                token_id: None,
            },
            // Not an operator token: nothing to record as used.
            u64::MAX,
        ))
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_token",
            "not the cluster's manager join token (rotated, a worker's, or of another cluster): \
             get it with `hoist cluster token --role manager`",
        ))
    })
}

/// Raft RPCs and proposals from another member. Once this member serves TLS (it holds a
/// certificate of the cluster), only a member's certificate is let in, and only a current
/// member's (a removed member's certificate stops at once; an empty view of the membership, a
/// member that has not caught up yet, takes any member of the cluster). A member without a
/// certificate (one joining, or below format 2 during an upgrade) takes plain RPCs as the
/// cluster did before it had a CA.
fn check_peer(ctx: &Ctx, certificate: Option<&CertIdentity>) -> Result<(), ApiError> {
    if let Some(cert) = certificate.filter(|c| c.role == CertRole::Operator) {
        return Err(unauthorized(format!(
            "an operator's certificate (token {}) cannot send Raft RPCs: only members' can",
            cert.id
        )));
    }
    if let Some(cert) = certificate {
        let member = (cert.role == CertRole::Member)
            .then(|| cert.id.parse::<u64>().ok())
            .flatten();
        return match member {
            Some(id) if ctx.node.admits_member(id) => Ok(()),
            Some(id) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "not_a_member",
                format!("member {id} is not a member of this cluster (removed)"),
            )),
            None => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "not_a_member",
                format!(
                    "a {} certificate cannot send Raft RPCs: only members' can",
                    cert.role.as_str()
                ),
            )),
        };
    }
    if ctx.pki.requires_peer_certificates() {
        return Err(unauthorized(
            "Raft RPCs need a member's certificate: members call each other over mutual TLS",
        ));
    }
    Ok(())
}

/// A member or agent that says its version and cannot work with this cluster learns so before
/// anything else (426, as the handlers answer it): being told "too old" needs no credentials.
/// Operators' tools say no version and pass.
fn version_gate(ctx: &Ctx, req: &Request, access: Access) -> Option<ApiError> {
    let headers = req.headers();
    // A process that says nothing of itself (an operator's tool, or 0.1.0, which can bring no
    // credentials either) is asked for credentials first.
    if !headers.contains_key(hoist_proto::format::VERSION_HEADER) {
        return None;
    }
    let v = crate::raft::peers::peer_version(headers);
    let (floor, who) = match access {
        Access::Agent => (hoist_proto::format::OLDEST, "this agent"),
        // Members join and forward through operator routes: they must read the cluster's format.
        Access::Role(_) => (ctx.node.stale_read(|s| s.cluster_format), "this member"),
        _ => return None,
    };
    let why = v.incompatibility(floor)?;
    Some(ApiError::new(
        StatusCode::UPGRADE_REQUIRED,
        "incompatible_version",
        format!("{who} cannot be served: {why}"),
    ))
}

/// The middleware (see the module doc).
pub async fn authorize(State(ctx): State<Ctx>, req: Request, next: Next) -> Response {
    let access = route_index().access_of(req.method(), req.uri().path());
    let need = match access {
        Access::Open | Access::Hook => return next.run(req).await,
        Access::Peer => {
            let certificate = req
                .extensions()
                .get::<TlsPeer>()
                .and_then(|p| p.identity.as_ref());
            return match check_peer(&ctx, certificate) {
                Ok(()) => next.run(req).await,
                Err(e) => e.into_response(),
            };
        }
        Access::Agent => None,
        Access::Role(role) => Some(role),
    };
    if let Some(refused) = version_gate(&ctx, &req, access) {
        return refused.into_response();
    }
    let certificate = req
        .extensions()
        .get::<TlsPeer>()
        .and_then(|p| p.identity.as_ref());
    let route = (req.method(), req.uri().path());
    match check(&ctx, route, req.headers(), access, certificate) {
        Err(e) => e.into_response(),
        Ok(Checked::Agent) => next.run(req).await,
        Ok(Checked::Node(node)) => AGENT_NODE.scope(node, next.run(req)).await,
        Ok(Checked::OldAgent) => {
            if !ctx.usage.warned_old_agents.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "agents older than Hoist 0.3.0 are let in without credentials until every \
                     node runs 0.3.0 or later: upgrade them"
                );
            }
            next.run(req).await
        }
        Ok(Checked::Open) => {
            if !ctx.usage.warned_open.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "the cluster is below format 2: the API takes requests without credentials \
                     until every member runs Hoist 0.3.0 or later"
                );
            }
            next.run(req).await
        }
        Ok(Checked::Operator(p, last_used_ms)) => {
            let need = need.unwrap_or(Role::Admin);
            if p.role < need {
                return ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    format!(
                        "token {:?} has the {} role; {} {} needs the {need} role",
                        p.name,
                        p.role,
                        req.method(),
                        req.uri().path()
                    ),
                )
                .into_response();
            }
            // Recorded at most once a minute per token: when the state's record is older than
            // that, and this member has not just asked for it.
            let recorded_long_ago = crate::autoscale::now_ms().saturating_sub(last_used_ms)
                >= TOUCH_EVERY.as_millis() as u64;
            if recorded_long_ago && ctx.usage.note(&p.name) {
                let node = ctx.node.clone();
                let names = vec![p.name.clone()];
                tokio::spawn(async move {
                    let touch = hoist_proto::raft::Command::TouchOperatorTokens { names };
                    if let Err(e) = node.write(touch).await {
                        tracing::debug!(error = %e, "recording a token's use");
                    }
                });
            }
            PRINCIPAL.scope(p, next.run(req)).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &[Route] = &[
        Route {
            method: "GET",
            path: "/v1/services/{name}",
            access: Access::Role(Role::Viewer),
        },
        Route {
            method: "POST",
            path: "/v1/services/{name}/scale",
            access: Access::Role(Role::Deployer),
        },
        Route {
            method: "GET",
            path: "/v1/hooks/tokens",
            access: Access::Role(Role::Admin),
        },
        Route {
            method: "GET",
            path: "/v1/hooks/{x}",
            access: Access::Hook,
        },
        Route {
            method: "GET",
            path: "/ui/{*asset}",
            access: Access::Open,
        },
    ];

    #[test]
    fn routes_are_matched_as_axum_does_and_the_rest_is_denied() {
        let get = Method::GET;
        let index = RouteIndex::new(TABLE);
        let of = |m: &Method, p: &str| index.access_of(m, p);
        assert_eq!(of(&get, "/v1/services/web"), Access::Role(Role::Viewer));
        assert_eq!(
            of(&Method::HEAD, "/v1/services/web"),
            Access::Role(Role::Viewer)
        );
        assert_eq!(
            of(&Method::POST, "/v1/services/web/scale"),
            Access::Role(Role::Deployer)
        );
        assert_eq!(of(&get, "/v1/hooks/tokens"), Access::Role(Role::Admin));
        assert_eq!(of(&get, "/v1/hooks/alert"), Access::Hook);
        assert_eq!(of(&get, "/ui/app.js"), Access::Open);
        assert_eq!(of(&get, "/ui/a/b.css"), Access::Open);
        // Unknown paths, methods and empty segments: default deny.
        for (m, p) in [
            (&Method::DELETE, "/v1/services/web"),
            (&get, "/v1/services/"),
            (&get, "/v1/services/web/scale"),
            (&get, "/v1/nope"),
            (&get, "/ui"),
        ] {
            assert_eq!(of(m, p), Access::Role(Role::Viewer), "{m} {p}");
        }
    }

    /// The rule axum's matching amounts to, written out: one route after another, a pattern
    /// segment by segment, the route with the fewest parameters first.
    fn scanned(routes: &[Route], method: &Method, path: &str) -> Access {
        fn matches(pattern: &str, path: &str) -> bool {
            let mut want = pattern.split('/');
            let mut got = path.split('/');
            loop {
                match (want.next(), got.next()) {
                    (None, None) => return true,
                    (Some(w), Some(g)) if w.starts_with("{*") => {
                        return !g.is_empty() || want.next().is_none()
                    }
                    (Some(w), Some(g)) if w.starts_with('{') && !g.is_empty() => {}
                    (Some(w), Some(g)) if w == g => {}
                    _ => return false,
                }
            }
        }
        let method = method.as_str();
        let same = |m: &str| m == method || (method == "HEAD" && m == "GET");
        routes
            .iter()
            .filter(|r| same(r.method) && matches(r.path, path))
            .min_by_key(|r| r.path.matches('{').count())
            .map_or(Access::Role(Role::Viewer), |r| r.access)
    }

    #[test]
    fn the_compiled_table_finds_what_a_scan_of_the_api_routes_finds() {
        let routes = super::super::routes();
        let index = RouteIndex::new(routes);
        // Every route's own path with its parameters filled in several ways (literal words of
        // other routes among them), then near misses: one segment more, one less, a trailing
        // slash, an empty parameter.
        let fills = ["web", "tokens", "a.b-c_1", "ps"];
        let mut paths = Vec::new();
        for r in routes {
            for fill in fills {
                let concrete: Vec<String> = r
                    .path
                    .split('/')
                    .map(|seg| match seg {
                        s if s.starts_with("{*") => format!("{fill}/x.js"),
                        s if s.starts_with('{') => fill.to_string(),
                        s => s.to_string(),
                    })
                    .collect();
                let p = concrete.join("/");
                paths.push(format!("{p}/extra"));
                paths.push(format!("{p}/"));
                if let Some((head, _)) = p.rsplit_once('/') {
                    paths.push(head.to_string());
                    paths.push(format!("{head}/"));
                }
                paths.push(p);
            }
        }
        assert!(paths.len() > 400, "{} paths", paths.len());
        let methods = [
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ];
        for path in &paths {
            for m in &methods {
                assert_eq!(
                    index.access_of(m, path),
                    scanned(routes, m, path),
                    "{m} {path}"
                );
            }
        }
    }

    #[test]
    fn a_token_is_touched_once_a_minute() {
        let u = Usage::default();
        assert!(u.note("ci"));
        assert!(!u.note("ci"));
        assert!(u.note("admin"));
    }

    #[test]
    fn bearer_is_read_case_insensitively() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "bearer  T1 ".parse().unwrap());
        assert_eq!(bearer(&h), Some("T1"));
        h.insert(header::AUTHORIZATION, "Basic x".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }
}
