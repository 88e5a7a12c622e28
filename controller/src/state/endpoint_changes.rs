//! Below which index this process cannot tell what changed in the services' endpoints: what
//! lets the leader answer an agent's endpoints watch with only the services changed since the
//! answer it holds (`api/agent.rs` `endpoints`, `hoist_proto::node::ServiceEndpoints::merge`
//! for the agent's side).
//!
//! The replicated `State::endpoints_index` says when each service's endpoints last changed, and
//! keeps a removed service's entry (its removal is a change). That holds for every change a
//! command makes, but not for a restored image: it brings the indexes of another time with
//! endpoints that may differ from what an agent holds. A restore, an installed snapshot and a
//! new format raise the floor (`State::everything_changed`); a poll that holds an answer at or
//! below it is answered in full.
//!
//! Derived and kept per process: neither encoded nor compared, like `spec_changes`.

#[derive(Debug, Clone, Default)]
pub struct EndpointChanges {
    floor: u64,
}

impl EndpointChanges {
    /// Everything may have changed at `index`.
    pub fn everything(&mut self, index: u64) {
        self.floor = self.floor.max(index);
    }

    /// Whether an answer at `index` can be brought up to date with the services whose
    /// `endpoints_index` is newer than it.
    pub fn known_since(&self, index: u64) -> bool {
        index > self.floor
    }
}

impl PartialEq for EndpointChanges {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for EndpointChanges {}
