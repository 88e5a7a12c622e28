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

/// A client builder as [`builder`], speaking TLS with `config` (see [`crate::tls::client_config`]):
/// for `https://` URLs of members.
pub fn builder_tls(config: rustls::ClientConfig) -> reqwest::ClientBuilder {
    builder().tls_backend_preconfigured(config)
}
