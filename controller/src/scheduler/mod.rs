//! The scheduler: pure functions from a snapshot of the cluster to placement decisions, without
//! I/O or clocks, so they are tested directly and re-used by `apply` to re-check a plan.
//!
//! - [`feasible`]: can this node take one more replica of this service? If not, why not.
//! - [`rank`]: among the nodes that can, which one: spread over a label, then over nodes, least
//!   loaded first, node id as the final tie-break (deterministic).
//! - [`reconcile`](fn@reconcile): desired state vs tasks → a [`hoist_proto::raft::Plan`] (placements, stops,
//!   rolling-update steps) and, for what cannot be placed, an explanation per node.

pub mod feasible;
pub mod rank;
pub mod reconcile;

pub use feasible::{check, explain, usage_of, Demand, Misfit, NodeUsage};
pub use rank::{place, Placement};
pub use reconcile::{reconcile, Reconciled};
