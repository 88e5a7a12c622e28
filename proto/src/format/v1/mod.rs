//! Format 1: protobuf messages (prost, written by hand; no `.proto` compiler in the build), one
//! twin per stored or sent type. Tags are the format: a field gets the next free tag of its
//! message and keeps it forever; enumerations are `int32`s whose values are never reused.
//! A reader fills a field it does not find with its zero value (see `convert.rs` where a field
//! needs another default) and skips fields it does not know.

mod cluster;
pub mod consensus;
mod convert;
mod raft;
mod service;
mod session;
mod state;

pub use cluster::*;
pub use raft::*;
pub use service::*;
pub use session::*;
pub use state::*;
