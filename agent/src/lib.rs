//! Hoist's node agent: runs containers on its host.
//!
//! The daemon (`hoist-agent`) serves a local HTTP API on a unix socket ([`api`]) over a container
//! manager ([`containers`]). Each container is held by its own supervisor process
//! ([`runtime::shim`]) so that containers outlive the agent. The kernel-facing parts are
//! [`runtime`] (namespaces, mounts, cgroups, credentials), [`image`] (content store, unpacking)
//! and [`network`] (bridge, veth, addresses, published ports). The manager and the network take
//! those parts as traits at construction; [`testing`] has a recording fake of each, so that the
//! manager runs in unit tests as a normal user.

// The docs are read with private items (`cargo doc --document-private-items`, as CI builds
// them), where a module's doc may point at the private helpers it explains.
#![allow(rustdoc::private_intra_doc_links)]

pub mod api;
pub mod api_body;
pub mod api_commit;
pub mod api_images;
pub mod api_openapi;
pub mod api_query;
pub mod config;
pub mod containers;
pub mod dns;
pub mod error;
pub mod image;
pub mod mesh;
pub mod metrics;
pub mod network;
pub mod overlay;
pub mod runtime;
pub mod testing;
pub mod worker;

#[cfg(test)]
mod golden_test;
