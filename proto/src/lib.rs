//! Wire and storage types shared by Hoist's agent, controller and CLI.
//!
//! This crate depends on nothing of ours so that every part can speak it. The agent's local API is
//! JSON over HTTP on a unix socket; these types are its request and response bodies.
//! Anything persisted is versioned; enum variants are only appended, never reordered.

pub mod agent;
pub mod cluster;
pub mod image;
pub mod node;
pub mod quantity;
pub mod raft;
pub mod service;

pub use agent::*;
pub use image::*;
