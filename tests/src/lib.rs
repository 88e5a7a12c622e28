//! Lab harness.
//!
//! - [`controller_lab`]: controller members in network namespaces, with kill/pause/partition.
//! - [`linearizability`]: a per-key register linearizability checker for recorded histories.

pub mod controller_lab;
pub mod linearizability;
