//! Hoist's node agent: runs containers on its host.
//!
//! The daemon (`hoist-agent`) serves a local HTTP API on a unix socket ([`api`]) over a container
//! manager ([`containers`]). Each container is held by its own supervisor process
//! ([`runtime::shim`]) so that containers outlive the agent. The kernel-facing parts are
//! [`runtime`] (namespaces, mounts, cgroups, credentials), [`image`] (content store, unpacking)
//! and [`network`] (bridge, veth, addresses, published ports).

pub mod api;
pub mod api_images;
pub mod config;
pub mod containers;
pub mod error;
pub mod image;
pub mod network;
pub mod worker;
pub mod runtime;
