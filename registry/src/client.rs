//! One registry repository over the OCI distribution API: manifests, blobs (ranged GETs for
//! resume), existence checks, uploads with cross-repository mount, and the auth dance.
//!
//! Every answer body the client reads into memory is bounded: manifests 4 MiB, token and error
//! bodies 1 MiB. Blob bodies are streamed by the caller.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use hoist_proto::RegistryAuth;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{RequestBuilder, Response, StatusCode};

use crate::auth::{self, Challenge};
use crate::name::api_host;
use crate::{Failure, RegistryConfig, RegistryError, MAX_METADATA_BYTES};

/// Largest token-server or error body read.
pub const MAX_SMALL_BODY: u64 = 1 << 20;

/// Manifest media types we ask for, most preferred first.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// A client for one repository of one registry, authenticated for a set of scopes.
#[derive(Debug)]
pub struct RegistryClient {
    http: reqwest::Client,
    /// `http://HOST` or `https://HOST`.
    base: String,
    /// The registry's name, for messages.
    registry: String,
    repository: String,
    credentials: Option<RegistryAuth>,
    scopes: Mutex<BTreeSet<String>>,
    authorization: Mutex<Option<HeaderValue>>,
}

/// Where a started upload continues.
#[derive(Debug)]
pub enum Upload {
    /// The registry mounted the blob from another repository: nothing to send.
    Mounted,
    /// Send the blob to this URL with `PUT ...?digest=`.
    Location(String),
}

fn http_client() -> Result<reqwest::Client, RegistryError> {
    hoist_common::init_tls();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(60))
        .user_agent(concat!("hoist/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| {
            RegistryError::registry(
                "-",
                Failure::Other,
                format!("cannot build http client: {e}"),
            )
        })
}

impl RegistryClient {
    /// Connects to `registry` for `repository` with `actions` (`pull` or `pull,push`), plus pull
    /// access to `mount_from` repositories; pings `/v2/` and authenticates if challenged.
    pub async fn connect(
        config: &RegistryConfig,
        registry: &str,
        repository: &str,
        credentials: Option<RegistryAuth>,
        actions: &str,
        mount_from: &[String],
    ) -> Result<Self, RegistryError> {
        let scheme = if config.is_insecure(registry) {
            "http"
        } else {
            "https"
        };
        let mut scopes = BTreeSet::new();
        if !repository.is_empty() {
            scopes.insert(format!("repository:{repository}:{actions}"));
        }
        for from in mount_from {
            scopes.insert(format!("repository:{from}:pull"));
        }
        let client = Self {
            http: http_client()?,
            base: format!("{scheme}://{}", api_host(registry)),
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            credentials,
            scopes: Mutex::new(scopes),
            authorization: Mutex::new(None),
        };
        client.ping().await?;
        Ok(client)
    }

    /// `GET /v2/`: authenticates when the registry challenges.
    pub async fn ping(&self) -> Result<(), RegistryError> {
        let url = format!("{}/v2/", self.base);
        let resp = self.send(|| Ok(self.http.get(&url))).await?;
        self.check(resp, "GET /v2/").await.map(drop)
    }

    fn err(&self, message: impl Into<String>) -> RegistryError {
        self.fail(Failure::Other, message)
    }

    fn fail(&self, failure: Failure, message: impl Into<String>) -> RegistryError {
        RegistryError::registry(&self.registry, failure, message)
    }

    /// Sends a request (built anew for a retry), answering one 401 challenge with credentials.
    async fn send(
        &self,
        make: impl Fn() -> Result<RequestBuilder, RegistryError>,
    ) -> Result<Response, RegistryError> {
        for attempt in 0..2 {
            let mut rb = make()?;
            if let Some(h) = self.current_authorization() {
                rb = rb.header(AUTHORIZATION, h);
            }
            let resp = rb.send().await.map_err(|e| {
                self.fail(
                    Failure::Unreachable,
                    format!("request failed: {}", error_chain(&e)),
                )
            })?;
            if resp.status() != StatusCode::UNAUTHORIZED || attempt == 1 {
                return Ok(resp);
            }
            let Some(header) = resp
                .headers()
                .get(reqwest::header::WWW_AUTHENTICATE)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
            else {
                return Ok(resp);
            };
            self.authenticate(&header).await?;
        }
        unreachable!("the loop returns on its second attempt")
    }

    fn current_authorization(&self) -> Option<HeaderValue> {
        self.authorization
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Answers a challenge: Basic with the credentials, Bearer through the token server.
    async fn authenticate(&self, header: &str) -> Result<(), RegistryError> {
        let challenge = auth::parse_challenge(header).map_err(|e| self.err(e))?;
        let value = match challenge {
            Challenge::Basic => {
                let c = self.credentials.as_ref().ok_or_else(|| {
                    self.fail(
                        Failure::Unauthorized,
                        "authentication required: no credentials given (`hoist login`; for a service, \
                         `hoist service apply --with-registry-auth`)",
                    )
                })?;
                basic_header(c)
            }
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let scopes = {
                    let mut s = self.scopes.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(scope) = scope {
                        s.extend(scope.split(' ').map(str::to_owned));
                    }
                    s.clone()
                };
                let mut rb = self
                    .http
                    .get(&realm)
                    .query(&auth::token_query(service.as_deref(), &scopes));
                if let Some(c) = &self.credentials {
                    rb = rb.basic_auth(&c.username, Some(&c.password));
                }
                let resp = rb.send().await.map_err(|e| {
                    self.fail(
                        Failure::Unreachable,
                        format!("token server {realm}: {}", error_chain(&e)),
                    )
                })?;
                let status = resp.status();
                let body = read_limited(resp, MAX_SMALL_BODY)
                    .await
                    .map_err(|e| self.err(format!("token server {realm}: {e}")))?;
                if !status.is_success() {
                    let failure = match status {
                        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Failure::Unauthorized,
                        _ => Failure::Other,
                    };
                    return Err(self.fail(
                        failure,
                        format!(
                            "token server {realm} answered {status}: {}",
                            error_message(&body)
                        ),
                    ));
                }
                let token = auth::token_from_answer(&body).map_err(|e| self.err(e))?;
                HeaderValue::from_str(&format!("Bearer {token}"))
                    .map_err(|_| self.err("token server returned an invalid token"))?
            }
        };
        *self.authorization.lock().unwrap_or_else(|p| p.into_inner()) = Some(value);
        Ok(())
    }

    /// Turns a non-success answer into an error naming the request and the registry's message.
    async fn check(&self, resp: Response, what: &str) -> Result<Response, RegistryError> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = read_limited(resp, MAX_SMALL_BODY).await.unwrap_or_default();
        let hint = if status == StatusCode::UNAUTHORIZED {
            if self.credentials.is_some() {
                " (credentials rejected)"
            } else {
                " (authentication required: run `hoist login`)"
            }
        } else {
            ""
        };
        let failure = match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Failure::Unauthorized,
            StatusCode::NOT_FOUND => Failure::NotFound,
            _ => Failure::Other,
        };
        Err(self.fail(
            failure,
            format!("{what}: {status}{hint}: {}", error_message(&body)),
        ))
    }

    fn url(&self, kind: &str, reference: &str) -> String {
        format!("{}/v2/{}/{kind}/{reference}", self.base, self.repository)
    }

    /// Fetches a manifest or index: `(bytes, content type, Docker-Content-Digest)`.
    pub async fn manifest(
        &self,
        reference: &str,
    ) -> Result<(Bytes, Option<String>, Option<String>), RegistryError> {
        let url = self.url("manifests", reference);
        let resp = self
            .send(|| Ok(self.http.get(&url).header(ACCEPT, MANIFEST_ACCEPT)))
            .await?;
        let resp = self
            .check(resp, &format!("manifest {}:{reference}", self.repository))
            .await?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.split(';').next().unwrap_or(s).trim().to_owned())
        };
        let content_type = header(CONTENT_TYPE.as_str());
        let digest = header("docker-content-digest");
        let bytes = read_limited(resp, MAX_METADATA_BYTES)
            .await
            .map_err(|e| self.err(format!("manifest {reference}: {e}")))?;
        Ok((bytes, content_type, digest))
    }

    /// A small blob (config) read whole, bounded by `MAX_METADATA_BYTES`; the caller verifies it.
    pub async fn small_blob(&self, digest: &str) -> Result<Bytes, RegistryError> {
        let resp = self.blob_from(digest, 0).await?;
        read_limited(resp, MAX_METADATA_BYTES)
            .await
            .map_err(|e| self.err(format!("blob {digest}: {e}")))
    }

    /// Starts a blob download at `offset` (a `Range` request when > 0). A 200 answer to a
    /// ranged request means the registry ignored the range: the caller skips `offset` bytes.
    pub async fn blob_from(&self, digest: &str, offset: u64) -> Result<Response, RegistryError> {
        let url = self.url("blobs", digest);
        let resp = self
            .send(|| {
                let rb = self.http.get(&url);
                Ok(if offset > 0 {
                    rb.header("range", format!("bytes={offset}-"))
                } else {
                    rb
                })
            })
            .await?;
        self.check(resp, &format!("blob {digest}")).await
    }

    /// `HEAD` a blob: whether the repository already has it.
    pub async fn blob_exists(&self, digest: &str) -> Result<bool, RegistryError> {
        let url = self.url("blobs", digest);
        let resp = self.send(|| Ok(self.http.head(&url))).await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => self
                .check(resp, &format!("HEAD blob {digest}"))
                .await
                .map(|_| false),
        }
    }

    /// Starts an upload; with `mount` = `(digest, from repository)` asks for a cross-repository
    /// mount first (201 = mounted, 202 = fell back to a normal upload session).
    pub async fn start_upload(&self, mount: Option<(&str, &str)>) -> Result<Upload, RegistryError> {
        let mut url = format!("{}/v2/{}/blobs/uploads/", self.base, self.repository);
        if let Some((digest, from)) = mount {
            url.push_str(&format!("?mount={}&from={}", enc(digest), enc(from)));
        }
        let resp = self
            .send(|| Ok(self.http.post(&url).header(CONTENT_LENGTH, "0")))
            .await?;
        let created = resp.status() == StatusCode::CREATED;
        let resp = self.check(resp, "start blob upload").await?;
        if created && mount.is_some() {
            return Ok(Upload::Mounted);
        }
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| self.err("upload started without a Location"))?;
        Ok(Upload::Location(self.absolute(location)))
    }

    fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_owned()
        } else {
            format!("{}{location}", self.base)
        }
    }

    /// Sends a whole blob from a file to an upload location (monolithic `PUT`).
    pub async fn put_blob(
        &self,
        location: &str,
        digest: &str,
        path: &Path,
        size: u64,
    ) -> Result<(), RegistryError> {
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{sep}digest={}", enc(digest));
        let resp = self
            .send(|| {
                let file = std::fs::File::open(path).map_err(|e| RegistryError::Io {
                    op: "open blob",
                    path: path.to_path_buf(),
                    source: e,
                })?;
                let stream = tokio_util::io::ReaderStream::with_capacity(
                    tokio::fs::File::from_std(file),
                    256 << 10,
                );
                Ok(self
                    .http
                    .put(&url)
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, size)
                    .body(reqwest::Body::wrap_stream(stream)))
            })
            .await?;
        self.check(resp, &format!("upload blob {digest}"))
            .await
            .map(drop)
    }

    /// `PUT` a manifest under a tag or digest; returns the registry's `Docker-Content-Digest`.
    pub async fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<Option<String>, RegistryError> {
        let url = self.url("manifests", reference);
        let resp = self
            .send(|| {
                Ok(self
                    .http
                    .put(&url)
                    .header(CONTENT_TYPE, media_type)
                    .body(bytes.clone()))
            })
            .await?;
        let resp = self
            .check(
                resp,
                &format!("put manifest {}:{reference}", self.repository),
            )
            .await?;
        Ok(resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned))
    }

    pub fn registry(&self) -> &str {
        &self.registry
    }
}

fn basic_header(c: &RegistryAuth) -> HeaderValue {
    use base64::Engine as _;
    let token =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password));
    HeaderValue::from_str(&format!("Basic {token}")).unwrap_or(HeaderValue::from_static(""))
}

/// Reads a whole body, failing when it is larger than `limit` bytes.
pub async fn read_limited(mut resp: Response, limit: u64) -> Result<Bytes, String> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(format!("answer is larger than {limit} bytes"));
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| error_chain(&e))? {
        if out.len() as u64 + chunk.len() as u64 > limit {
            return Err(format!("answer is larger than {limit} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}

/// The distribution error body's first message, or the body itself, shortened.
pub fn error_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(e) = serde_json::from_slice::<Errors>(body) {
        if let Some(first) = e.errors.first() {
            return format!("{} {}", first.code, first.message)
                .trim()
                .to_owned();
        }
    }
    let text = String::from_utf8_lossy(body);
    let line = text.lines().next().unwrap_or("").trim();
    line.chars().take(200).collect()
}

/// An error with its causes (reqwest hides the useful part in `source()`).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_distribution_errors() {
        let body =
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(error_message(body), "MANIFEST_UNKNOWN manifest unknown");
        assert_eq!(error_message(b"plain text\nmore"), "plain text");
        assert_eq!(enc("sha256:ab"), "sha256%3Aab");
    }
}
