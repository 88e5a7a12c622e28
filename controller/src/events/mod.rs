//! The cluster's recent events on this member: a bounded ring fed by the state machine with
//! what each applied entry tells (`state/events.rs`), read by `GET /v1/events` streams.
//!
//! Every member derives the same events from the same log, so the ring is neither replicated
//! nor persisted nor part of snapshots (no stored format): a member that restarts fills it again
//! from the entries it re-applies after its snapshot, and says which events it no longer holds
//! (`events.lost`) instead of pretending to.
//!
//! Apply never waits for a reader: it appends under a short lock and bumps a watch. Each stream
//! keeps its own position and reads from the ring at its own pace; one that falls behind the
//! ring's oldest event is told so and goes on from there.

mod filter;
mod ring;

pub use filter::Filter;
pub use ring::{EventLog, Lost, Read, Start, EVENTS_KEPT};
