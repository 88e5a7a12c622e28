//! The agent's side of the agent–controller protocol (`proto::node`) over HTTP to any controller
//! member. When a member does not answer, or answers that it cannot serve (no leader, 5xx), the
//! next address is tried; the one that answered is tried first next time.
//!
//! Bodies are in the newest format both sides read: every request names this agent's version and
//! format; every answer names the controller's (or, forwarded, the leader's). The agent starts in
//! format 0 with each address, which every controller reads (0.1.0 sent no version and read only
//! postcard), and follows what that address's last successful answer said; an answer without
//! version headers (0.1.0, or a member refusing to forward a newer body to an older leader) takes
//! it back to format 0. Error answers otherwise teach nothing: a member that cannot serve may
//! speak for no one but itself.
//!
//! With a join token that carries the cluster's CA digest (`HOIST2-...`), every request goes over
//! TLS (`https://`) to members that prove they belong to that cluster, and registrations send a
//! signing request for the node's key: the certificate they answer then acts for the node
//! ([`super::tls`]). With a `HOIST1-...` token (an older cluster), plain HTTP and bearer
//! credentials.

use hoist_proto::format::{
    Codec, PeerVersion, CURRENT, FORMAT_HEADER, OLDEST, OLDEST_FORMAT_HEADER, PROTOBUF_MEDIA_TYPE,
    VERSION, VERSION_HEADER,
};
use hoist_proto::held_specs::HeldSpecs;
use hoist_proto::node::{
    Assignments, CertificateRequest, CertificateResponse, Heartbeat, HeartbeatAck, RegisterRequest,
    RegisterResponse, StatusAck, StatusReport, LEADER_HEADER, POSTCARD_MEDIA_TYPE,
};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use super::tls::{Clients, NodeTls, Validity};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No controller address answered.
    #[error("no controller answered ({0})")]
    Unreachable(String),
    /// A controller refused the request (4xx): retrying elsewhere will not help.
    #[error("controller {addr} refused {path}: HTTP {status}: {message}")]
    Refused {
        addr: String,
        path: String,
        status: u16,
        message: String,
    },
    #[error("controller {addr}: bad answer to {path}: {message}")]
    BadAnswer {
        addr: String,
        path: String,
        message: String,
    },
}

impl ClientError {
    /// The controller does not know this node (removed, or its state was reset).
    /// Also when the node's credential or certificate key is unknown or was replaced (401), or
    /// the request lacked it or renewed another key (403): registering again gets a new one.
    pub fn is_unknown_node(&self) -> bool {
        matches!(
            self,
            ClientError::Refused {
                status: 401 | 403 | 404,
                ..
            }
        )
    }
}

#[derive(Debug)]
pub struct ControllerClient {
    /// The `--join` addresses, then leaders that members named and the list did not
    /// ([`with_leader`]).
    addrs: RwLock<Vec<String>>,
    /// How many of `addrs` the agent was started with.
    given: usize,
    preferred: AtomicUsize,
    /// The HTTP clients, replaced when a registration or renewal gives a new certificate (each
    /// request clones the current one out; a `reqwest::Client` is shared inside).
    http: RwLock<Clients>,
    /// `https` with a join token that carries the cluster's CA digest, else `http`.
    scheme: &'static str,
    /// The node's key, certificate and trusted roots, with a `HOIST2` join token.
    tls: Option<NodeTls>,
    /// The format to speak to each address.
    formats: Mutex<HashMap<String, u32>>,
    /// `Bearer <join token>`: what registers the node.
    join: reqwest::header::HeaderValue,
    /// `Bearer <the node's credential>`, once a registration answered one (format 2): what every
    /// other request carries. In memory only: a restarted agent registers again.
    node_credential: Mutex<Option<reqwest::header::HeaderValue>>,
}

fn media_type(format: u32) -> &'static str {
    if format == 0 {
        POSTCARD_MEDIA_TYPE
    } else {
        PROTOBUF_MEDIA_TYPE
    }
}

/// The format to write to `addr` given the formats members answered in (see
/// [`ControllerClient::format_for`]). Pure.
fn format_to_write(known: &HashMap<String, u32>, addr: &str) -> u32 {
    known
        .get(addr)
        .copied()
        .unwrap_or_else(|| known.values().copied().max().unwrap_or(0))
}

/// Time allowed for an ordinary request; a long poll gets its wait on top.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The route that registers (with the join token, presenting no certificate).
const REGISTER: &str = "/v1/agent/register";

impl ControllerClient {
    /// A client of the controllers at `addrs` that registers with the join `token` (controllers
    /// of format 2 refuse agent requests without it). A token with the cluster's CA digest
    /// (`HOIST2`) makes it speak TLS, with the node's key kept in `data_dir` (made now if there
    /// is none).
    pub fn new(addrs: Vec<String>, token: &str, data_dir: &Path) -> anyhow::Result<Self> {
        let mut bearer =
            reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.trim()))
                .map_err(|_| anyhow::anyhow!("the join token holds characters a header cannot"))?;
        bearer.set_sensitive(true);
        let digest = hoist_proto::node::parse_join_token(token)
            .map_err(|e| anyhow::anyhow!("--join: {e}"))?
            .ca_digest;
        let (tls, http) = match digest {
            Some(digest) => {
                let tls = NodeTls::new(data_dir, &digest)?;
                let clients = tls.initial_clients()?;
                (Some(tls), clients)
            }
            None => {
                let http = hoist_transport::client::builder()
                    .connect_timeout(super::tls::CONNECT_TIMEOUT)
                    .build()?;
                let clients = Clients {
                    register: http.clone(),
                    other: http,
                };
                (None, clients)
            }
        };
        Ok(ControllerClient {
            given: addrs.len(),
            addrs: RwLock::new(addrs),
            preferred: AtomicUsize::new(0),
            http: RwLock::new(http),
            scheme: if tls.is_some() { "https" } else { "http" },
            tls,
            formats: Mutex::default(),
            join: bearer,
            node_credential: Mutex::new(None),
        })
    }

    /// Asks the members for HTTP/1.1 only, one connection per request in flight, as agents
    /// before HTTP/2 did: for hoist-sim's `--http1`, which measures what one connection per
    /// agent saves. Without TLS the clients speak HTTP/1.1 anyway.
    pub fn http1_only(mut self) -> anyhow::Result<Self> {
        if let Some(tls) = &mut self.tls {
            tls.set_http1_only();
            *self.http.get_mut().unwrap_or_else(|e| e.into_inner()) = tls.initial_clients()?;
        }
        Ok(self)
    }

    /// Whether the controllers are reached over TLS (a `HOIST2` join token).
    pub fn uses_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The node certificate in use and its replacements (TLS only).
    pub fn certificate(&self) -> Option<tokio::sync::watch::Receiver<Option<Validity>>> {
        self.tls.as_ref().map(NodeTls::held)
    }

    /// The HTTP client for a request to `path`.
    fn http_for(&self, path: &str) -> reqwest::Client {
        let clients = self.http.read().unwrap_or_else(|e| e.into_inner());
        if path.starts_with(REGISTER) {
            clients.register.clone()
        } else {
            clients.other.clone()
        }
    }

    /// Takes the certificate and roots a controller at `addr` answered to `path`, and presents
    /// that certificate from now on.
    fn install(
        &self,
        addr: &str,
        path: &str,
        cert: &str,
        ca: &str,
    ) -> Result<Validity, ClientError> {
        let tls = self.tls.as_ref().ok_or_else(|| ClientError::BadAnswer {
            addr: addr.into(),
            path: path.into(),
            message: "a certificate for an agent that does not speak TLS".into(),
        })?;
        let (clients, validity) = tls.accept(cert, ca).map_err(|m| ClientError::BadAnswer {
            addr: addr.into(),
            path: path.into(),
            message: format!("the node certificate: {m}"),
        })?;
        *self.http.write().unwrap_or_else(|e| e.into_inner()) = clients;
        Ok(validity)
    }

    /// The digest of the root the node's certificate was answered with (TLS only).
    pub fn root_digest(&self) -> Option<String> {
        self.tls.as_ref()?.root_digest()
    }

    /// A new certificate for the node's key before the current one expires (TLS only). A
    /// 401/403/404 ([`ClientError::is_unknown_node`]) means the node must register again.
    pub async fn renew(&self, node_id: &str) -> Result<Validity, ClientError> {
        const PATH: &str = "/v1/agent/certificate";
        let csr = self
            .tls
            .as_ref()
            .ok_or_else(|| ClientError::BadAnswer {
                addr: self.preferred_addr(),
                path: PATH.into(),
                message: "no certificate to renew: the agent does not speak TLS".into(),
            })?
            .csr(node_id)
            .map_err(|m| ClientError::BadAnswer {
                addr: self.preferred_addr(),
                path: PATH.into(),
                message: format!("the signing request: {m}"),
            })?;
        let req = CertificateRequest {
            node_id: node_id.to_string(),
            csr,
        };
        let resp: CertificateResponse = self.call(PATH, Some(&req), REQUEST_TIMEOUT).await?;
        let addr = self.preferred_addr();
        let validity = self.install(&addr, PATH, &resp.certificate, &resp.ca_certificate)?;
        self.open_connection(&addr).await;
        Ok(validity)
    }

    /// Opens the new clients' connection to `addr` with one cheap request (`GET /v1/health`),
    /// so that the requests the node then makes at once (its long polls, heartbeats and
    /// reports) find it in the pool and share it over HTTP/2: started together on an empty
    /// pool, each would open a connection of its own. A failure only leaves that to them.
    async fn open_connection(&self, addr: &str) {
        let url = format!("{}://{addr}/v1/health", self.scheme);
        let opened = self
            .http_for("/v1/health")
            .get(url)
            .timeout(REQUEST_TIMEOUT);
        if let Err(e) = opened.send().await {
            tracing::debug!(controller = %addr, error = %e, "opening the connection");
        }
    }

    /// The address tried first.
    fn preferred_addr(&self) -> String {
        let i = self.preferred.load(Ordering::Relaxed);
        self.addrs_now().get(i).cloned().unwrap_or_default()
    }

    /// The addresses to try, as now known.
    fn addrs_now(&self) -> Vec<String> {
        self.addrs.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Where the leader a member named sits in the list, added if new ([`with_leader`]).
    fn learn_leader(&self, hint: &str) -> Option<usize> {
        let mut addrs = self.addrs.write().unwrap_or_else(|e| e.into_inner());
        let known = addrs.len();
        let i = with_leader(&mut addrs, self.given, hint)?;
        if addrs.len() > known {
            tracing::info!(leader = %hint, "a member named a leader outside --join; trying it too");
        }
        Some(i)
    }

    /// The format to speak to `addr` now.
    pub fn format_of(&self, addr: &str) -> u32 {
        let formats = self.formats.lock().unwrap_or_else(|e| e.into_inner());
        formats.get(addr).copied().unwrap_or(0)
    }

    /// The format to write a request to `addr` in: the one it answered in, else (an address
    /// not reached yet, e.g. the next member when the usual one is down) the newest any member
    /// answered in, since members of one cluster share a format outside an upgrade. A member
    /// that turns out older says so in its answer, which teaches its format for the next try.
    fn format_for(&self, addr: &str) -> u32 {
        let formats = self.formats.lock().unwrap_or_else(|e| e.into_inner());
        format_to_write(&formats, addr)
    }

    /// Learns `addr`'s format from an answer (see the module doc).
    fn learn(&self, addr: &str, told: &PeerVersion, said_anything: bool, success: bool) {
        let format = if !said_anything {
            0
        } else if success {
            told.common_format()
        } else {
            return;
        };
        let mut formats = self.formats.lock().unwrap_or_else(|e| e.into_inner());
        if formats.insert(addr.to_string(), format) != Some(format) {
            tracing::info!(controller = %addr, version = %told.version, format, "speaking to the controller in this format");
        }
    }

    /// Registers. The overlay's fields (format 2) go only to a controller known to read them: a
    /// first registration goes without them, which teaches the controller's format, and is
    /// repeated with them at once when the controller reads format 2.
    ///
    /// Over TLS every registration sends a signing request for the node's key; the certificate
    /// answered is kept and presented from then on (a registration itself presents none).
    pub async fn register(&self, req: &RegisterRequest) -> Result<RegisterResponse, ClientError> {
        let req = &match &self.tls {
            Some(tls) => {
                let id = req.node_id.as_deref().unwrap_or("new");
                let csr = tls.csr(id).map_err(|m| ClientError::BadAnswer {
                    addr: self.preferred_addr(),
                    path: REGISTER.into(),
                    message: format!("the signing request: {m}"),
                })?;
                RegisterRequest {
                    csr: Some(csr),
                    ..req.clone()
                }
            }
            None => req.clone(),
        };
        let mut resp = self.register_once(req).await?;
        // A first registration in an older format (before this client knew the controller's)
        // gets no credential: once the controller is known to read format 2, again (once).
        // Over TLS the certificate acts for the node, and no credential comes with it.
        let complete = resp.node_credential.is_some() || resp.certificate.is_some();
        if !complete && self.format_of(&self.preferred_addr()) >= 2 {
            let again = RegisterRequest {
                node_id: Some(resp.node_id.clone()),
                ..req.clone()
            };
            resp = self.register_once(&again).await?;
        }
        match (&resp.certificate, &resp.ca_certificate) {
            (Some(cert), Some(ca)) => {
                let addr = self.preferred_addr();
                self.install(&addr, REGISTER, cert, ca)?;
                self.open_connection(&addr).await;
            }
            _ if self.tls.is_some() => tracing::warn!(
                controller = %self.preferred_addr(),
                "the registration answered no node certificate: requests go without one"
            ),
            _ => {}
        }
        let credential = resp.node_credential.as_deref().and_then(|c| {
            let mut v = reqwest::header::HeaderValue::from_str(&format!("Bearer {c}")).ok()?;
            v.set_sensitive(true);
            Some(v)
        });
        *self.node_credential.lock().expect("credential lock") = credential;
        Ok(resp)
    }

    /// The `Authorization` a request to `path` carries: the join token to register; then the
    /// node's credential, or none once the node presents a certificate (which acts for it:
    /// the join token is not sent where it is not needed).
    fn bearer_for(&self, path: &str) -> Option<reqwest::header::HeaderValue> {
        if path.starts_with(REGISTER) {
            return Some(self.join.clone());
        }
        if let Some(credential) = self
            .node_credential
            .lock()
            .expect("credential lock")
            .clone()
        {
            return Some(credential);
        }
        let certified = self.tls.as_ref().is_some_and(NodeTls::has_certificate);
        (!certified).then(|| self.join.clone())
    }

    /// One registration. Its format-2 fields (the overlay's, the signing request) go only to a
    /// controller known to read them: without them first, then with them at once when the
    /// answer says the controller reads format 2.
    async fn register_once(&self, req: &RegisterRequest) -> Result<RegisterResponse, ClientError> {
        let newer = req.wg_public_key.is_some() || req.wg_endpoint.is_some() || req.csr.is_some();
        if !newer || self.format_of(&self.preferred_addr()) >= 2 {
            return self.call(REGISTER, Some(req), REQUEST_TIMEOUT).await;
        }
        let bare = RegisterRequest {
            wg_public_key: None,
            wg_endpoint: None,
            csr: None,
            ..req.clone()
        };
        let resp: RegisterResponse = self.call(REGISTER, Some(&bare), REQUEST_TIMEOUT).await?;
        if self.format_of(&self.preferred_addr()) < 2 {
            return Ok(resp);
        }
        let full = RegisterRequest {
            node_id: Some(resp.node_id.clone()),
            ..req.clone()
        };
        self.call(REGISTER, Some(&full), REQUEST_TIMEOUT).await
    }

    pub async fn heartbeat(&self, hb: &Heartbeat) -> Result<HeartbeatAck, ClientError> {
        self.call("/v1/agent/heartbeat", Some(hb), REQUEST_TIMEOUT)
            .await
    }

    pub async fn status(&self, report: &StatusReport) -> Result<StatusAck, ClientError> {
        self.call("/v1/agent/status", Some(report), REQUEST_TIMEOUT)
            .await
    }

    /// Waits up to `wait` for the node's assignments to change past `index`. `overlay_index` is
    /// the [`Assignments::overlay_index`] of the overlay this node holds (0: none): the answer
    /// leaves the overlay out while that is current. `specs`: the specs of the answer at `index`
    /// that this node holds; the answer leaves out those unchanged
    /// ([`hoist_proto::node::Assignment::spec_held`]). `tasks_term`: the term of that answer,
    /// whose tasks this node holds; an answer of that term names only those unchanged
    /// ([`Assignments::unchanged`]). Make an answer whole with [`hoist_proto::held_tasks::merge`].
    pub async fn assignments(
        &self,
        node: &str,
        index: u64,
        overlay_index: u64,
        specs: Option<&HeldSpecs>,
        tasks_term: Option<u64>,
        wait: Duration,
    ) -> Result<Assignments, ClientError> {
        let mut path = format!(
            "/v1/agent/assignments?node={node}&index={index}&wait_ms={}",
            wait.as_millis()
        );
        if overlay_index != 0 {
            path.push_str(&format!("&overlay_index={overlay_index}"));
        }
        if let Some(h) = specs.filter(|h| index != 0 && !h.is_empty()) {
            path.push_str(&format!("&specs={}&specs_term={}", h.query(), h.term));
        }
        if let Some(term) = tasks_term.filter(|_| index != 0) {
            path.push_str(&format!("&tasks_term={term}"));
        }
        self.call::<Heartbeat, _>(&path, None, wait + REQUEST_TIMEOUT)
            .await
    }

    /// Sends this node's view of its overlay peers (format 2).
    pub async fn overlay_report(
        &self,
        report: &hoist_proto::node::OverlayReport,
    ) -> Result<StatusAck, ClientError> {
        self.call("/v1/agent/overlay", Some(report), REQUEST_TIMEOUT)
            .await
    }

    /// Sends this node's named volumes (format 2: refused before sending to an older leader).
    pub async fn volume_report(
        &self,
        report: &hoist_proto::node::VolumeReport,
    ) -> Result<StatusAck, ClientError> {
        self.call("/v1/agent/volumes", Some(report), REQUEST_TIMEOUT)
            .await
    }

    /// Waits up to `wait` for the sessions asked of this node (format 2, `hoist_proto::session`).
    pub async fn sessions(
        &self,
        node: &str,
        wait: Duration,
    ) -> Result<hoist_proto::session::SessionRequests, ClientError> {
        let path = format!(
            "/v1/agent/sessions?node={node}&wait_ms={}",
            wait.as_millis()
        );
        self.call::<Heartbeat, _>(&path, None, wait + REQUEST_TIMEOUT)
            .await
    }

    /// Streams a session's output (framed bytes as they come from `frames`) as the body of one
    /// request to the member that answered last; returns when that member answers: the output
    /// ended, or the leader no longer wants it (its operator left).
    pub async fn session_output(
        &self,
        node: &str,
        id: &str,
        frames: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    ) -> Result<(), ClientError> {
        let addr = self.preferred_addr();
        let path = format!("/v1/agent/sessions/{id}?node={node}");
        let body = futures::stream::unfold(frames, |mut rx| async move {
            let b = rx.recv().await?;
            Some((Ok::<_, std::io::Error>(b), rx))
        });
        let mut req = self
            .http_for(&path)
            .post(format!("{}://{addr}{path}", self.scheme))
            .header("content-type", PROTOBUF_MEDIA_TYPE)
            .header(VERSION_HEADER, VERSION)
            .header(FORMAT_HEADER, CURRENT)
            .header(OLDEST_FORMAT_HEADER, OLDEST)
            .body(reqwest::Body::wrap_stream(body));
        if let Some(bearer) = self.bearer_for(&path) {
            req = req.header(reqwest::header::AUTHORIZATION, bearer);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| ClientError::Unreachable(self.send_failure(&addr, &e)))?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let body = resp.bytes().await.unwrap_or_default();
        Err(ClientError::Refused {
            addr,
            path,
            status,
            message: message_of(&body),
        })
    }

    /// The current content of every secret and config task `task` of this node references
    /// (format 2; secrets decrypted by the controller). Refused with 404 when the task is not
    /// this node's; a 503 (the controller cannot decrypt yet) is a failure to retry later.
    pub async fn task_files(
        &self,
        node: &str,
        task: &str,
    ) -> Result<hoist_proto::files::TaskFiles, ClientError> {
        let path = format!("/v1/agent/files?node={node}&task={task}");
        self.call::<Heartbeat, _>(&path, None, REQUEST_TIMEOUT)
            .await
    }

    /// Waits up to `wait` for any service's ready replicas to change past `index` (format 2).
    pub async fn endpoints(
        &self,
        index: u64,
        wait: Duration,
    ) -> Result<hoist_proto::node::ServiceEndpoints, ClientError> {
        // `changed=2`: this agent merges an answer of the services, and the replicas, changed
        // since `index` into the table it holds at that index (`ServiceEndpoints::merge`). A
        // controller of the first changes answers services only; an older one ignores it and
        // answers the whole table.
        let path = format!(
            "/v1/agent/endpoints?index={index}&wait_ms={}&changed=2",
            wait.as_millis()
        );
        self.call::<Heartbeat, _>(&path, None, wait + REQUEST_TIMEOUT)
            .await
    }

    async fn call<Req: Codec, Resp: Codec>(
        &self,
        path: &str,
        body: Option<&Req>,
        timeout: Duration,
    ) -> Result<Resp, ClientError> {
        let mut addrs = self.addrs_now();
        let start = self.preferred.load(Ordering::Relaxed);
        // Each address once, the preferred one first; a leader a member names comes next.
        let mut order: Vec<usize> = (0..addrs.len())
            .map(|k| (start + k) % addrs.len())
            .collect();
        let mut failures = Vec::new();
        let http = self.http_for(path);
        let bearer = self.bearer_for(path);
        let mut next = 0;
        while let Some(&i) = order.get(next) {
            next += 1;
            let addr = &addrs[i].clone();
            let url = format!("{}://{addr}{path}", self.scheme);
            let format = self.format_for(addr);
            let mut req = match body {
                Some(b) => {
                    let bytes = match b.encode(format) {
                        Ok(bytes) => bytes,
                        // Another member may read it.
                        Err(e) => {
                            failures.push(format!(
                                "{addr}: the request cannot be said in format {format}: {e}"
                            ));
                            continue;
                        }
                    };
                    http.post(&url)
                        .header("content-type", media_type(format))
                        .body(bytes)
                }
                None => http.get(&url),
            }
            .header("accept", media_type(format))
            .header(VERSION_HEADER, VERSION)
            .header(FORMAT_HEADER, CURRENT)
            .header(OLDEST_FORMAT_HEADER, OLDEST)
            .timeout(timeout);
            if let Some(bearer) = &bearer {
                req = req.header(reqwest::header::AUTHORIZATION, bearer.clone());
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    failures.push(self.send_failure(addr, &e));
                    continue;
                }
            };
            let get = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok());
            let told = PeerVersion::from_headers(
                get(VERSION_HEADER),
                get(FORMAT_HEADER),
                get(OLDEST_FORMAT_HEADER),
            );
            let answered_in = match get("content-type") {
                Some(ct) if ct.starts_with(PROTOBUF_MEDIA_TYPE) => CURRENT,
                _ => 0,
            };
            let said_anything = get(FORMAT_HEADER).is_some();
            let leader = get(LEADER_HEADER).map(str::to_owned);
            let status = resp.status().as_u16();
            self.learn(addr, &told, said_anything, (200..300).contains(&status));
            let body = match resp.bytes().await {
                Ok(b) => b,
                Err(e) => {
                    failures.push(format!("{addr}: {}", short(&e)));
                    continue;
                }
            };
            if status >= 500 || status == 421 || status == 429 {
                failures.push(format!("{addr}: HTTP {status}: {}", message_of(&body)));
                if let Some(j) = leader.as_deref().and_then(|l| self.learn_leader(l)) {
                    addrs = self.addrs_now();
                    if !order[next..].contains(&j) && !order[..next].contains(&j) {
                        order.insert(next, j);
                    }
                }
                continue;
            }
            self.preferred.store(i, Ordering::Relaxed);
            if !(200..300).contains(&status) {
                return Err(ClientError::Refused {
                    addr: addr.clone(),
                    path: path.into(),
                    status,
                    message: message_of(&body),
                });
            }
            return Resp::decode(&body, answered_in).map_err(|e| ClientError::BadAnswer {
                addr: addr.clone(),
                path: path.into(),
                message: e.to_string(),
            });
        }
        Err(ClientError::Unreachable(failures.join("; ")))
    }

    /// What a request to `addr` that got no answer says: over TLS, why the handshake failed
    /// (rustls' words, e.g. that the member's chain holds no root with the token's digest).
    fn send_failure(&self, addr: &str, e: &reqwest::Error) -> String {
        if let Some(tls) = &self.tls {
            if let Some(m) = super::tls::tls_failure(addr, &causes(e), tls.pinned()) {
                return m;
            }
        }
        format!("{addr}: {}", short(e))
    }
}

/// The messages of `e` and its causes, outermost first.
fn causes(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut out = Vec::new();
    let mut next = Some(e);
    while let Some(e) = next {
        out.push(e.to_string());
        next = e.source();
    }
    out
}

/// How many leaders outside `--join` an agent remembers (members added later).
const MAX_LEARNED: usize = 8;

/// Where `hint`, a leader a member named, sits in `addrs`: its index, appended if the list
/// lacks it and holds fewer than [`MAX_LEARNED`] learned ones past the `given`. `None` for a
/// hint that is not `HOST:PORT`. Pure.
fn with_leader(addrs: &mut Vec<String>, given: usize, hint: &str) -> Option<usize> {
    let (host, port) = hint.rsplit_once(':')?;
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
    if !host_ok || port.parse::<u16>().is_err() {
        return None;
    }
    if let Some(i) = addrs.iter().position(|a| a == hint) {
        return Some(i);
    }
    if addrs.len() >= given + MAX_LEARNED {
        return None;
    }
    addrs.push(hint.to_string());
    Some(addrs.len() - 1)
}

/// The `message` of a JSON error body, or the body's text.
fn message_of(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| text.chars().take(200).collect())
}

fn short(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_outside_the_join_list_is_learned_once_and_bounded() {
        let mut addrs = vec!["a:7000".to_string(), "b:7000".to_string()];
        // Named in the list: its index.
        assert_eq!(with_leader(&mut addrs, 2, "b:7000"), Some(1));
        // A member added later: appended, then found again.
        assert_eq!(with_leader(&mut addrs, 2, "10.0.0.4:7000"), Some(2));
        assert_eq!(with_leader(&mut addrs, 2, "10.0.0.4:7000"), Some(2));
        assert_eq!(with_leader(&mut addrs, 2, "[fd00::4]:7000"), Some(3));
        // Not HOST:PORT: ignored.
        for bad in [
            "",
            "c",
            "c:",
            "c:x",
            "c:70000",
            "http://c:1",
            "c/x:1",
            "c d:1",
            ":1",
        ] {
            assert_eq!(with_leader(&mut addrs, 2, bad), None, "{bad:?}");
        }
        assert_eq!(addrs.len(), 4);
        // At most MAX_LEARNED past the given ones.
        for n in 0..20 {
            with_leader(&mut addrs, 2, &format!("m{n}:7000"));
        }
        assert_eq!(addrs.len(), 2 + MAX_LEARNED);
        assert_eq!(with_leader(&mut addrs, 2, "m99:7000"), None);
        assert_eq!(with_leader(&mut addrs, 2, "a:7000"), Some(0));
    }

    #[test]
    fn a_member_not_reached_yet_is_written_to_in_the_newest_format_members_answered_in() {
        let mut known = HashMap::new();
        // Nothing known: format 0, which every controller reads (0.1.0 sent no version).
        assert_eq!(format_to_write(&known, "a:7000"), 0);
        known.insert("a:7000".to_string(), 2);
        // The usual member is down: the next one gets format 2 (a registration's signing
        // request cannot be said in format 0), not a refusal to try it.
        assert_eq!(format_to_write(&known, "b:7000"), 2);
        // A member that answered in an older format is written to in it.
        known.insert("b:7000".to_string(), 0);
        assert_eq!(format_to_write(&known, "b:7000"), 0);
        assert_eq!(format_to_write(&known, "a:7000"), 2);
    }
}
