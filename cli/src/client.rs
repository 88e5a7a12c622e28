//! A small HTTP/1.1 client for the agent's unix socket: JSON requests, JSON answers, and
//! newline-delimited JSON streams. Agent errors come back as [`ClientError::Api`] with the agent's
//! code and message, so commands can print them as they are.

use bytes::Bytes;
use hoist_proto::ApiError;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::{Path, PathBuf};

type Body = BoxBody<Bytes, std::io::Error>;

#[derive(Debug)]
pub enum ClientError {
    /// The agent could not be reached.
    Connect {
        socket: PathBuf,
        source: std::io::Error,
    },
    /// The agent answered with an error.
    Api { error: ApiError },
    /// The conversation broke (bad HTTP, bad JSON, connection lost).
    Transport(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Connect { socket, source } => write!(
                f,
                "cannot connect to the hoist agent at {}: {source} (is hoist-agent running? set --agent or HOIST_AGENT)",
                socket.display()
            ),
            ClientError::Api { error, .. } => f.write_str(&error.message),
            ClientError::Transport(m) => write!(f, "talking to the agent: {m}"),
        }
    }
}

impl std::error::Error for ClientError {}

fn transport(e: impl std::fmt::Display) -> ClientError {
    ClientError::Transport(e.to_string())
}

async fn collect(resp: hyper::Response<hyper::body::Incoming>) -> Result<Bytes, ClientError> {
    Ok(resp
        .into_body()
        .collect()
        .await
        .map_err(transport)?
        .to_bytes())
}

#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
}

impl Client {
    pub fn new(socket: &Path) -> Self {
        Self {
            socket: socket.to_path_buf(),
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Body,
        content_type: &str,
    ) -> Result<hyper::Response<hyper::body::Incoming>, ClientError> {
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|source| ClientError::Connect {
                socket: self.socket.clone(),
                source,
            })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(transport)?;
        tokio::spawn(conn);
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, "hoist-agent")
            .header(hyper::header::CONTENT_TYPE, content_type)
            .body(body)
            .map_err(transport)?;
        let resp = sender.send_request(req).await.map_err(transport)?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let bytes = collect(resp).await?;
        let error = serde_json::from_slice(&bytes).unwrap_or_else(|_| ApiError {
            code: "http".into(),
            message: format!(
                "agent answered {status}: {}",
                String::from_utf8_lossy(&bytes)
            ),
        });
        Err(ClientError::Api { error })
    }

    fn body(value: Option<&impl Serialize>) -> Result<Body, ClientError> {
        let bytes = match value {
            Some(v) => Bytes::from(serde_json::to_vec(v).map_err(transport)?),
            None => Bytes::new(),
        };
        Ok(Full::new(bytes).map_err(|never| match never {}).boxed())
    }

    /// A request whose answer is one JSON value (or nothing, for 204).
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, ClientError> {
        let body = Self::body(body)?;
        let resp = self.send(method, path, body, "application/json").await?;
        let bytes = collect(resp).await?;
        let bytes = if bytes.is_empty() {
            Bytes::from_static(b"null")
        } else {
            bytes
        };
        serde_json::from_slice(&bytes).map_err(|e| transport(format!("unexpected answer: {e}")))
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(Method::GET, path, None::<&()>).await
    }

    /// A request whose answer is a stream of JSON lines, handed to `each` as they arrive.
    pub async fn stream<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
        mut each: impl FnMut(T) -> bool,
    ) -> Result<(), ClientError> {
        let body = Self::body(body)?;
        let mut resp = self.send(method, path, body, "application/json").await?;
        each_line(&mut resp, &mut each).await
    }

    /// A `GET` whose answer body (e.g. a tarball) is copied to `out`; returns the bytes written.
    pub async fn download(
        &self,
        path: &str,
        out: &mut (impl tokio::io::AsyncWrite + Unpin),
    ) -> Result<u64, ClientError> {
        use tokio::io::AsyncWriteExt;
        let body = Self::body(None::<&()>)?;
        let mut resp = self
            .send(Method::GET, path, body, "application/json")
            .await?;
        let mut n = 0u64;
        while let Some(frame) = resp.body_mut().frame().await {
            let frame = frame.map_err(transport)?;
            if let Some(data) = frame.data_ref() {
                out.write_all(data).await.map_err(transport)?;
                n += data.len() as u64;
            }
        }
        out.flush().await.map_err(transport)?;
        Ok(n)
    }

    /// Uploads a file as the request body (streamed, not read into memory).
    pub async fn upload<T: DeserializeOwned>(
        &self,
        path: &str,
        file: tokio::fs::File,
    ) -> Result<T, ClientError> {
        use futures::TryStreamExt;
        let stream = tokio_util::io::ReaderStream::new(file).map_ok(Frame::data);
        let body = StreamBody::new(stream).boxed();
        let resp = self
            .send(Method::POST, path, body, "application/x-tar")
            .await?;
        let bytes = collect(resp).await?;
        serde_json::from_slice(&bytes).map_err(|e| transport(format!("unexpected answer: {e}")))
    }
}

impl Client {
    /// Streams `body` as the request body and hands each JSON line of the answer to `each`.
    pub async fn upload_stream<T: DeserializeOwned>(
        &self,
        path: &str,
        body: impl tokio::io::AsyncRead + Send + Sync + 'static,
        mut each: impl FnMut(T) -> bool,
    ) -> Result<(), ClientError> {
        use futures::TryStreamExt;
        let stream = tokio_util::io::ReaderStream::new(body).map_ok(Frame::data);
        let body = StreamBody::new(stream).boxed();
        let mut resp = self
            .send(Method::POST, path, body, "application/x-tar")
            .await?;
        each_line(&mut resp, &mut each).await
    }
}

/// Hands each JSON line of a newline-delimited answer to `each` until it returns false.
async fn each_line<T: DeserializeOwned>(
    resp: &mut hyper::Response<hyper::body::Incoming>,
    each: &mut impl FnMut(T) -> bool,
) -> Result<(), ClientError> {
    let mut buf: Vec<u8> = Vec::new();
    while let Some(frame) = resp.body_mut().frame().await {
        let frame = frame.map_err(transport)?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        buf.extend_from_slice(data);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let item = serde_json::from_slice(&line)
                .map_err(|e| transport(format!("bad stream record: {e}")))?;
            if !each(item) {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Percent-encodes a path segment or query value.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
