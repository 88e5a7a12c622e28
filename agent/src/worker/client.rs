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

use hoist_proto::format::{
    Codec, PeerVersion, CURRENT, FORMAT_HEADER, OLDEST, OLDEST_FORMAT_HEADER, PROTOBUF_MEDIA_TYPE,
    VERSION, VERSION_HEADER,
};
use hoist_proto::node::{
    Assignments, Heartbeat, HeartbeatAck, RegisterRequest, RegisterResponse, StatusAck,
    StatusReport, POSTCARD_MEDIA_TYPE,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

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
    /// Also when the node's credential is unknown or was replaced (401), or the request
    /// lacked it (403): registering again gets a new one.
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
    addrs: Vec<String>,
    preferred: AtomicUsize,
    http: reqwest::Client,
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

/// Time allowed for an ordinary request; a long poll gets its wait on top.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

impl ControllerClient {
    /// A client of the controllers at `addrs` that authenticates every request with the join
    /// `token` (controllers of format 2 refuse agent requests without it).
    pub fn new(addrs: Vec<String>, token: &str) -> anyhow::Result<Self> {
        let mut bearer =
            reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.trim()))
                .map_err(|_| anyhow::anyhow!("the join token holds characters a header cannot"))?;
        bearer.set_sensitive(true);
        let http = hoist_transport::client::builder()
            .connect_timeout(Duration::from_secs(1))
            .build()?;
        Ok(ControllerClient {
            addrs,
            preferred: AtomicUsize::new(0),
            http,
            formats: Mutex::default(),
            join: bearer,
            node_credential: Mutex::new(None),
        })
    }

    /// The address tried first.
    fn preferred_addr(&self) -> String {
        let i = self.preferred.load(Ordering::Relaxed);
        self.addrs.get(i).cloned().unwrap_or_default()
    }

    /// The format to speak to `addr` now.
    pub fn format_of(&self, addr: &str) -> u32 {
        let formats = self.formats.lock().unwrap_or_else(|e| e.into_inner());
        formats.get(addr).copied().unwrap_or(0)
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
    pub async fn register(&self, req: &RegisterRequest) -> Result<RegisterResponse, ClientError> {
        let mut resp = self.register_once(req).await?;
        // A first registration in an older format (before this client knew the controller's)
        // gets no credential: once the controller is known to read format 2, again.
        if resp.node_credential.is_none() && self.format_of(&self.preferred_addr()) >= 2 {
            let again = RegisterRequest {
                node_id: Some(resp.node_id.clone()),
                ..req.clone()
            };
            resp = self.register_once(&again).await?;
        }
        let credential = resp.node_credential.as_deref().and_then(|c| {
            let mut v = reqwest::header::HeaderValue::from_str(&format!("Bearer {c}")).ok()?;
            v.set_sensitive(true);
            Some(v)
        });
        *self.node_credential.lock().expect("credential lock") = credential;
        Ok(resp)
    }

    /// The `Authorization` a request to `path` carries.
    fn bearer_for(&self, path: &str) -> reqwest::header::HeaderValue {
        if path.starts_with("/v1/agent/register") {
            return self.join.clone();
        }
        self.node_credential
            .lock()
            .expect("credential lock")
            .clone()
            .unwrap_or_else(|| self.join.clone())
    }

    async fn register_once(&self, req: &RegisterRequest) -> Result<RegisterResponse, ClientError> {
        let overlay = req.wg_public_key.is_some() || req.wg_endpoint.is_some();
        if !overlay || self.format_of(&self.preferred_addr()) >= 2 {
            return self
                .call("/v1/agent/register", Some(req), REQUEST_TIMEOUT)
                .await;
        }
        let bare = RegisterRequest {
            wg_public_key: None,
            wg_endpoint: None,
            ..req.clone()
        };
        let resp: RegisterResponse = self
            .call("/v1/agent/register", Some(&bare), REQUEST_TIMEOUT)
            .await?;
        if self.format_of(&self.preferred_addr()) < 2 {
            return Ok(resp);
        }
        let full = RegisterRequest {
            node_id: Some(resp.node_id.clone()),
            ..req.clone()
        };
        self.call("/v1/agent/register", Some(&full), REQUEST_TIMEOUT)
            .await
    }

    pub async fn heartbeat(&self, hb: &Heartbeat) -> Result<HeartbeatAck, ClientError> {
        self.call("/v1/agent/heartbeat", Some(hb), REQUEST_TIMEOUT)
            .await
    }

    pub async fn status(&self, report: &StatusReport) -> Result<StatusAck, ClientError> {
        self.call("/v1/agent/status", Some(report), REQUEST_TIMEOUT)
            .await
    }

    /// Waits up to `wait` for the node's assignments to change past `index`.
    pub async fn assignments(
        &self,
        node: &str,
        index: u64,
        wait: Duration,
    ) -> Result<Assignments, ClientError> {
        let path = format!(
            "/v1/agent/assignments?node={node}&index={index}&wait_ms={}",
            wait.as_millis()
        );
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
        let resp = self
            .http
            .post(format!("http://{addr}{path}"))
            .header(reqwest::header::AUTHORIZATION, self.bearer_for(&path))
            .header("content-type", PROTOBUF_MEDIA_TYPE)
            .header(VERSION_HEADER, VERSION)
            .header(FORMAT_HEADER, CURRENT)
            .header(OLDEST_FORMAT_HEADER, OLDEST)
            .body(reqwest::Body::wrap_stream(body))
            .send()
            .await
            .map_err(|e| ClientError::Unreachable(format!("{addr}: {}", short(&e))))?;
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
        let path = format!(
            "/v1/agent/endpoints?index={index}&wait_ms={}",
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
        let start = self.preferred.load(Ordering::Relaxed);
        let mut failures = Vec::new();
        for k in 0..self.addrs.len() {
            let i = (start + k) % self.addrs.len();
            let addr = &self.addrs[i];
            let url = format!("http://{addr}{path}");
            let format = self.format_of(addr);
            let req = match body {
                Some(b) => {
                    let bytes = b.encode(format).map_err(|e| ClientError::BadAnswer {
                        addr: addr.clone(),
                        path: path.into(),
                        message: format!("cannot be said in format {format}: {e}"),
                    })?;
                    self.http
                        .post(&url)
                        .header("content-type", media_type(format))
                        .body(bytes)
                }
                None => self.http.get(&url),
            }
            .header("accept", media_type(format))
            .header(reqwest::header::AUTHORIZATION, self.bearer_for(path))
            .header(VERSION_HEADER, VERSION)
            .header(FORMAT_HEADER, CURRENT)
            .header(OLDEST_FORMAT_HEADER, OLDEST)
            .timeout(timeout);
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    failures.push(format!("{addr}: {}", short(&e)));
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
