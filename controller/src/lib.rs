//! Hoist's controller: the Raft-replicated source of truth for services, nodes and tasks, and the
//! operator API in front of it.
//!
//! - [`state`]: the replicated model and its pure `apply`.
//! - [`raft`]: consensus (the only module naming openraft): storage, network, a small facade.
//! - [`api`]: the HTTP API (the only module naming axum).
//! - [`member`]: starting a member: bootstrap, join, restart.
//! - [`events`]: the recent events this member's applied entries told, for `GET /v1/events`.
//! - [`sessions`]: logs and exec of replicas on any node, over the agents' own connections.
//! - [`metrics`]: what `GET /metrics` answers.
//! - [`ui`]: the web dashboard at `/ui`, files compiled into the binary.

// The docs are read with private items (`cargo doc --document-private-items`, as CI builds
// them), where a module's doc may point at the private helpers it explains.
#![allow(rustdoc::private_intra_doc_links)]

pub mod api;
pub mod autoscale;
pub mod credentials;
pub mod events;
pub mod keyring;
pub mod leader;
pub mod member;
pub mod metrics;
pub mod pki;
pub mod raft;
pub mod scheduler;
pub mod sessions;
pub mod state;
pub mod ui;

#[cfg(test)]
mod golden_test;
