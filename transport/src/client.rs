//! HTTP clients for Hoist's own listeners.

use std::time::Duration;

/// How long a client keeps an idle pooled connection: below the servers' idle timeout
/// ([`crate::Limits::header_read_timeout`]), so that a client never picks a connection the
/// server is closing at the same moment (the request would fail before it is sent).
pub const POOL_IDLE: Duration = Duration::from_secs(20);

/// A client builder for talking to a Hoist daemon: no proxy (cluster addresses are never
/// proxied), pooled connections dropped before the server's idle timeout.
pub fn builder() -> reqwest::ClientBuilder {
    hoist_common::init_tls();
    reqwest::Client::builder()
        .no_proxy()
        .pool_idle_timeout(POOL_IDLE)
}

/// An error with its causes, joined by ": " (a TLS refusal says why only in them, e.g. that a
/// server's chain [`holds no root with the pinned digest`](crate::tls::WRONG_ROOT)).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.ends_with(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

/// A client builder as [`builder`], speaking TLS with `config` (see [`crate::tls::client_config`]):
/// for `https://` URLs of members.
pub fn builder_tls(config: rustls::ClientConfig) -> reqwest::ClientBuilder {
    builder().tls_backend_preconfigured(config)
}

/// How long an HTTP/2 connection may stay silent before its client pings it, and how long the
/// ping may go unanswered before the connection is dropped with its requests.
pub const HTTP2_PING: Duration = Duration::from_secs(10);

/// A client builder as [`builder_tls`] that asks members for HTTP/2 (ALPN `h2`, then HTTP/1.1
/// for a member that does not offer it): the client's requests to a member then share one
/// connection, however many wait at once, instead of holding one each. A connection with
/// requests in flight that hears nothing for [`HTTP2_PING`] is pinged, and dropped if the ping
/// goes unanswered as long, so that a member gone silent fails its long polls in seconds
/// rather than at their timeout.
pub fn builder_tls_http2(mut config: rustls::ClientConfig) -> reqwest::ClientBuilder {
    config.alpn_protocols = vec![
        crate::tls::ALPN_HTTP2.to_vec(),
        crate::tls::ALPN_HTTP1.to_vec(),
    ];
    builder_tls(config)
        .http2_keep_alive_interval(HTTP2_PING)
        .http2_keep_alive_timeout(HTTP2_PING)
}

/// The clients a member calls its peers with: plain HTTP, and mutual TLS once the member has a
/// certificate ([`PeerClients::set_tls`]). [`PeerClients::send`] prefers TLS and falls back to
/// plain HTTP only when the TLS connection could not be made (nothing was sent), and only to a
/// peer that never spoke TLS with this member: a peer without a certificate yet (joining)
/// serves plain HTTP only, while one that has spoken TLS is never downgraded (someone on the
/// network who breaks its handshakes gets no plain request instead).
#[derive(Debug)]
pub struct PeerClients {
    plain: reqwest::Client,
    tls: std::sync::RwLock<Option<reqwest::Client>>,
    /// The TLS configuration of stream protocols (with their ALPN name), set with the client.
    stream: std::sync::RwLock<Option<std::sync::Arc<rustls::ClientConfig>>>,
    /// The addresses that answered over TLS at least once.
    spoke_tls: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl PeerClients {
    /// With `plain` as the plain-HTTP client.
    pub fn new(plain: reqwest::Client) -> PeerClients {
        PeerClients {
            plain,
            tls: std::sync::RwLock::new(None),
            stream: std::sync::RwLock::new(None),
            spoke_tls: std::sync::Mutex::default(),
        }
    }

    /// Calls peers over mutual TLS with `client` from now on.
    pub fn set_tls(&self, client: reqwest::Client) {
        if let Ok(mut slot) = self.tls.write() {
            *slot = Some(client);
        }
    }

    /// Calls peers over a stream protocol with `config` from now on (see
    /// [`crate::server::StreamService`]); `config` offers that protocol's ALPN name.
    pub fn set_stream_tls(&self, config: std::sync::Arc<rustls::ClientConfig>) {
        if let Ok(mut slot) = self.stream.write() {
            *slot = Some(config);
        }
    }

    /// The stream protocol's TLS configuration, once set.
    pub fn stream_tls(&self) -> Option<std::sync::Arc<rustls::ClientConfig>> {
        self.stream.read().ok()?.clone()
    }

    /// Calls peers over plain HTTP only from now on.
    pub fn clear_tls(&self) {
        if let Ok(mut slot) = self.tls.write() {
            *slot = None;
        }
        if let Ok(mut slot) = self.stream.write() {
            *slot = None;
        }
    }

    /// The mutual-TLS client, once set.
    pub fn tls(&self) -> Option<reqwest::Client> {
        self.tls.read().ok()?.clone()
    }

    /// The plain-HTTP client.
    pub fn plain(&self) -> &reqwest::Client {
        &self.plain
    }

    /// Sends the request `build` makes for a client and a base URL (`https://ADDR` or
    /// `http://ADDR`): over TLS when this member has a certificate, again over plain HTTP when
    /// the TLS connection could not be made.
    pub async fn send(
        &self,
        addr: &str,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> reqwest::Result<reqwest::Response> {
        if let Some(tls) = self.tls() {
            match build(&tls, &format!("https://{addr}")).send().await {
                Err(e) if e.is_connect() && !self.spoke_tls(addr) => {
                    tracing::debug!(peer = addr, error = %e, "no TLS with this peer; plain HTTP");
                }
                Ok(answer) => {
                    self.note_tls(addr);
                    return Ok(answer);
                }
                other => return other,
            }
        }
        build(&self.plain, &format!("http://{addr}")).send().await
    }

    fn spoke_tls(&self, addr: &str) -> bool {
        self.spoke_tls
            .lock()
            .map(|s| s.contains(addr))
            .unwrap_or(true)
    }

    fn note_tls(&self, addr: &str) {
        if let Ok(mut s) = self.spoke_tls.lock() {
            if !s.contains(addr) {
                s.insert(addr.to_string());
            }
        }
    }
}

/// The certificate a member at `addr` (`HOST:PORT`) serves now, verified with `config`: one TLS
/// handshake, no request. The leader asks every member this way which root its certificate is
/// under while a rotation of the cluster's root is going on.
pub async fn served_certificate(
    addr: &str,
    config: std::sync::Arc<rustls::ClientConfig>,
    timeout: Duration,
) -> Result<rustls::pki_types::CertificateDer<'static>, String> {
    let name = rustls::pki_types::ServerName::try_from(crate::tls::MEMBER_NAME)
        .map_err(|e| e.to_string())?;
    let handshake = async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with {addr}: {e}"))?;
        let (_, session) = tls.get_ref();
        session
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.clone().into_owned())
            .ok_or_else(|| format!("{addr} presented no certificate"))
    };
    tokio::time::timeout(timeout, handshake)
        .await
        .map_err(|_| format!("TLS with {addr}: no answer in {timeout:?}"))?
}
