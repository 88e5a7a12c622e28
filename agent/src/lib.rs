//! Hoist's node agent: runs containers on its host.
//!
//! The daemon (`hoist-agent`) serves a local HTTP API on a unix socket. Each container is held by
//! its own supervisor process (the shim) so that containers outlive the agent.

pub mod image;
pub mod network;
