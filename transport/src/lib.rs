//! How Hoist's daemons talk HTTP: one place that serves every listener (with the same
//! connection limits and timeouts) and builds every client that talks to those listeners (with
//! pool settings that match the servers' idle timeout).
//!
//! Why one place: a hostile client on the same network must not be able to hold connections
//! forever on any listener, and a limit added to one server but forgotten on another is no
//! limit. The cluster's TLS is configured here too, for the same reason (`tls`), and so are
//! protocols other than HTTP that a TLS client asks for by ALPN on the same port
//! (`server::StreamService`: the members' link).

pub mod client;
pub mod pki;
pub mod server;
pub mod tls;

pub use server::{
    serve, serve_tls, serve_tls_with, Limits, StreamIo, StreamService, Streams, TlsSource,
};
