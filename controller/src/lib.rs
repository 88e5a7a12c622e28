//! Hoist's controller: the Raft-replicated source of truth for services, nodes and tasks, and the
//! operator API in front of it.
//!
//! - [`state`]: the replicated model and its pure `apply`.
//! - [`raft`]: consensus (the only module naming openraft): storage, network, a small facade.

pub mod raft;
pub mod state;
