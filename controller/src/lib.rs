//! Hoist's controller: the Raft-replicated source of truth for services, nodes and tasks, and the
//! operator API in front of it.
//!
//! - [`state`]: the replicated model and its pure `apply`.
//! - [`raft`]: consensus (the only module naming openraft): storage, network, a small facade.
//! - [`api`]: the HTTP API (the only module naming axum).
//! - [`member`]: starting a member: bootstrap, join, restart.

pub mod api;
pub mod leader;
pub mod member;
pub mod raft;
pub mod scheduler;
pub mod state;

#[cfg(test)]
mod golden_test;
