//! A small HTTP client for the controller API: tries each `--controller` address in turn, moves on
//! when one is down or has no leader, and turns error bodies into readable errors.

use crate::credentials::ClientCert;
use hoist_proto::cluster::ErrorBody;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use std::time::Duration;

/// A client builder for the controllers: no proxy, and the operator's credentials on every
/// request (`credentials.rs`).
pub fn http_builder() -> reqwest::ClientBuilder {
    builder_with(crate::credentials::token(), certificate())
}

/// The client certificate to present; an unusable one was said by [`ControllerClient::new`].
fn certificate() -> Option<&'static ClientCert> {
    crate::credentials::certificate().ok().flatten()
}

/// A builder for `token` and `cert`: over TLS verified by the root's digest a `HOISTOP2` token
/// carries (no trust on first use), else by the root kept with the certificate; plain HTTP
/// with neither. The certificate, when there is one, is presented.
fn builder_with(token: Option<&str>, cert: Option<&ClientCert>) -> reqwest::ClientBuilder {
    let pinned = token
        .and_then(crate::credentials::ca_digest_of)
        .map(|digest| hoist_transport::tls::Trust::Pinned(digest.to_string()));
    let tls = pinned
        .or_else(|| cert.map(|c| c.trust.clone()))
        .and_then(|trust| {
            hoist_transport::tls::client_config(trust, cert.map(|c| c.identity.clone())).ok()
        });
    let mut b = match tls {
        Some(config) => hoist_transport::client::builder_tls(config),
        None => hoist_transport::client::builder(),
    };
    if let Some(token) = token {
        if let Ok(mut v) = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")) {
            v.set_sensitive(true);
            b = b.default_headers([(reqwest::header::AUTHORIZATION, v)].into_iter().collect());
        }
    }
    b
}

/// Why a controller call failed.
#[derive(Debug)]
pub enum CallError {
    /// The API answered with an error body.
    Api { status: StatusCode, body: ErrorBody },
    /// No controller answered usefully.
    Unreachable(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Api { body, .. } => {
                write!(f, "{}", body.message)?;
                for e in body.errors.iter().skip(1) {
                    write!(f, "\n  {e}")?;
                }
                Ok(())
            }
            CallError::Unreachable(m) => write!(f, "no controller answered: {m}"),
        }
    }
}

impl std::error::Error for CallError {}

/// The addresses to try and a connection pool.
#[derive(Debug, Clone)]
pub struct ControllerClient {
    /// The addresses as given (`HOST:PORT`, or with a scheme).
    addrs: Vec<String>,
    bases: Vec<String>,
    http: reqwest::Client,
}

/// The scheme for requests with `token` and `cert`: `https` when the token carries the root's
/// digest or a client certificate is presented.
pub fn scheme_for(token: Option<&str>, cert: Option<&ClientCert>) -> &'static str {
    if token.and_then(crate::credentials::ca_digest_of).is_some() || cert.is_some() {
        "https"
    } else {
        "http"
    }
}

/// Base URLs of `addrs` for `token` and `cert`: an address without a scheme gets
/// [`scheme_for`]'s.
fn bases_of(addrs: &[String], token: Option<&str>, cert: Option<&ClientCert>) -> Vec<String> {
    let scheme = scheme_for(token, cert);
    addrs
        .iter()
        .map(|a| {
            if a.contains("://") {
                a.trim_end_matches('/').to_string()
            } else {
                format!("{scheme}://{a}")
            }
        })
        .collect()
}

/// How many passes over the address list before giving up on 503s (elections take < 1 s).
const ROUNDS: usize = 4;

impl ControllerClient {
    /// `addrs` are `HOST:PORT` or `http(s)://HOST:PORT`; an entry may hold several,
    /// comma-separated. Without a scheme, `https` with a token that carries the cluster's root
    /// digest or with a client certificate, else `http`.
    pub fn new(addrs: &[String]) -> anyhow::Result<ControllerClient> {
        let cert = crate::credentials::certificate().map_err(anyhow::Error::msg)?;
        let addrs: Vec<String> = addrs
            .iter()
            .flat_map(|a| a.split(','))
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect();
        let bases = bases_of(&addrs, crate::credentials::token(), cert);
        if bases.is_empty() {
            anyhow::bail!(
                "no controller address: pass --controller HOST:PORT or set HOIST_CONTROLLER"
            );
        }
        let http = http_builder()
            .connect_timeout(Duration::from_millis(700))
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(ControllerClient { addrs, bases, http })
    }

    /// The same client, sending `token` instead of the process's credentials.
    pub fn with_token(self, token: &str) -> anyhow::Result<ControllerClient> {
        let http = builder_with(Some(token), None)
            .connect_timeout(Duration::from_millis(700))
            .timeout(Duration::from_secs(30))
            .build()?;
        let bases = bases_of(&self.addrs, Some(token), None);
        Ok(ControllerClient {
            http,
            bases,
            ..self
        })
    }

    /// The base URLs (`http(s)://HOST:PORT`), in the order given.
    pub fn bases(&self) -> &[String] {
        &self.bases
    }

    /// Sends a request, trying the next address on connection errors and 503s.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Vec<u8>, CallError> {
        Ok(self.call_with(method, path, body, &[]).await?.0)
    }

    /// [`ControllerClient::call`] with extra request headers; answers the response headers too.
    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
        headers: &[(&str, &str)],
    ) -> Result<(Vec<u8>, reqwest::header::HeaderMap), CallError> {
        let resp = self.open(&self.http, method, path, body, headers).await?;
        let resp_headers = resp.headers().clone();
        let base = resp.url().origin().ascii_serialization();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| CallError::Unreachable(format!("{base}: {e}")))?;
        Ok((bytes.to_vec(), resp_headers))
    }

    /// Sends a request with `http`, trying the next address on connection errors and 503s;
    /// answers the first successful response with its body unread (a streamed answer is read
    /// as it comes, with a client without an overall timeout).
    pub async fn open(
        &self,
        http: &reqwest::Client,
        method: Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
        headers: &[(&str, &str)],
    ) -> Result<reqwest::Response, CallError> {
        let mut last = String::new();
        for round in 0..ROUNDS {
            if round > 0 {
                tokio::time::sleep(Duration::from_millis(250 * round as u64)).await;
            }
            for base in &self.bases {
                let mut req = http.request(method.clone(), format!("{base}{path}"));
                if let Some((ct, bytes)) = &body {
                    req = req.header("content-type", *ct).body(bytes.clone());
                }
                for (k, v) in headers {
                    req = req.header(*k, *v);
                }
                let resp = match req.send().await {
                    Ok(r) => r,
                    Err(e) => {
                        let why = hoist_transport::client::error_chain(&e);
                        // A member under another root than the token's: nothing goes there,
                        // and the others are no more this cluster's.
                        if why.contains(hoist_transport::tls::WRONG_ROOT) {
                            return Err(CallError::Unreachable(format!(
                                "{base} is not a member of the cluster the token is for: {why}"
                            )));
                        }
                        last = format!("{base}: {why}{}", certificate_hint(&why));
                        continue;
                    }
                };
                let status = resp.status();
                if status.is_success() {
                    return Ok(resp);
                }
                let bytes = resp
                    .bytes()
                    .await
                    .map_err(|e| CallError::Unreachable(format!("{base}: {e}")))?;
                let body = error_body(base, status, &bytes);
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    last = format!("{base}: {}", body.message);
                    continue;
                }
                return Err(CallError::Api { status, body });
            }
        }
        Err(CallError::Unreachable(last))
    }

    /// A JSON call with a JSON answer.
    pub async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<T, CallError> {
        let body = body.map(|b| {
            (
                "application/json",
                serde_json::to_vec(b).expect("json encodes"),
            )
        });
        let bytes = self.call(method, path, body).await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| CallError::Unreachable(format!("answer does not decode: {e}")))
    }

    /// The status of the member at exactly `address` (no fail-over), for per-member views.
    pub async fn status_of(&self, address: &str) -> Option<hoist_proto::cluster::ClusterStatus> {
        // The scheme this client's token speaks (see `bases_of`).
        let scheme = self
            .bases
            .first()
            .and_then(|b| b.split_once("://"))
            .map_or("http", |(s, _)| s);
        let url = format!("{scheme}://{address}/v1/cluster/status");
        let r = self
            .http
            .get(url)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?;
        r.json().await.ok()
    }
}

/// What to check when a TLS connection made with a client certificate failed (`why`).
fn certificate_hint(why: &str) -> String {
    match certificate() {
        Some(c) if why.contains("alert") || why.contains("certificate") => format!(
            " (with the client certificate {}: is it of this cluster and current, and is the \
             ca.crt beside it the cluster's root? `hoist token cert` with a token makes new ones)",
            c.path.display()
        ),
        _ => String::new(),
    }
}

/// The error body of an answer, or one made of its text when it has none.
fn error_body(base: &str, status: StatusCode, bytes: &[u8]) -> ErrorBody {
    serde_json::from_slice(bytes).unwrap_or_else(|_| ErrorBody {
        code: "http".into(),
        message: format!("{base}: HTTP {status}: {}", String::from_utf8_lossy(bytes)),
        field: None,
        errors: vec![],
    })
}

/// Prints an error the way every command does and returns the exit code.
pub fn report(e: &CallError) -> i32 {
    eprintln!("error: {e}");
    match e {
        CallError::Api { status, .. } if status.is_client_error() => 1,
        CallError::Api { .. } => 1,
        CallError::Unreachable(_) => 3,
    }
}
