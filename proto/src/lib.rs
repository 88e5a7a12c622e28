//! Wire and storage types shared by Hoist's agent, controller and CLI.
//!
//! This crate depends on nothing of ours so that every part can speak it. The agent's local API is
//! JSON over HTTP on a unix socket; these types are its request and response bodies.
//! What is persisted or sent between processes is versioned: see [`mod@format`].

pub mod agent;
pub mod capabilities;
pub mod cluster;
pub mod events;
pub mod files;
pub mod format;
pub mod held_specs;
pub mod held_tasks;
pub mod image;
pub mod limits;
pub mod node;
pub mod overlay;
pub mod peer_link;
pub mod quantity;
pub mod raft;
pub mod rules;
pub mod service;
pub mod session;
pub mod signal;

pub use agent::*;
pub use image::*;
