//! How Hoist's daemons talk HTTP: one place that serves every listener (with the same
//! connection limits and timeouts) and builds every client that talks to those listeners (with
//! pool settings that match the servers' idle timeout).
//!
//! Why one place: a hostile client on the same network must not be able to hold connections
//! forever on any listener, and a limit added to one server but forgotten on another is no
//! limit. The cluster's TLS will be configured here too, for the same reason.

pub mod client;
pub mod server;

pub use server::{serve, Limits};
