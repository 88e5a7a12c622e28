//! The cluster DNS: an embedded resolver on every agent of the overlay, answering service names
//! from memory.
//!
//! It listens on the node's gateway address (port 53, UDP and TCP), which every container on the
//! node reaches over its bridge: no per-query round trip to another host, and no process per
//! container. The names (`names.rs`, pure): `SERVICE` → its virtual IP (or, with
//! `endpoint_mode = "dnsrr"`, its ready replicas, rotated per query), `tasks.SERVICE` → every ready replica,
//! `SLOT.SERVICE` → the replica of that slot; an unknown single-label name is NXDOMAIN at once;
//! anything else goes to the host's resolvers (`--dns-upstream`), SERVFAIL at once when there are
//! none or they cannot be reached. TTL 5 s.
//!
//! The table is fed by one cluster-wide watch per agent (`GET /v1/agent/endpoints`: the whole
//! table at a Raft index, then the services and replicas changed since, merged into it, at the
//! pace the leader sets), not one long poll per service. Malformed, oversized (over 4 KiB) or
//! truncated queries get FORMERR or are dropped; they never reach the table or another client's
//! answer.

pub mod names;
pub mod server;

pub use names::{Lookup, Registry};
pub use server::{start, DnsConfig};
