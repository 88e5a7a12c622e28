//! When each service's specs last changed, as a Raft index: what lets the leader leave out of
//! an agent's assignments the specs that agent already holds (`api/agent.rs`, and
//! `hoist_proto::held_specs` for the agent's side).
//!
//! An agent that took an answer at index `I` holds each spec as it was then; the spec is the
//! same now when nothing changed its service after `I`. What changes what an agent is sent for a
//! service version: a new version (which may also drop an old one from the history, whose tasks
//! are then sent the current spec), a scale in place, the service deleted or created again (its
//! versions start from 1), and the cluster format (format 0 sends sizes converted). The first
//! four are read off the services map after every command (one `imbl` diff, which costs what
//! changed); a new format, a restored image or an installed snapshot moves the floor below which
//! nothing is known.
//!
//! Derived and kept per process: neither encoded nor compared. Each member notes the changes it
//! applies itself; what came in a snapshot is under the floor. The leader uses it only for polls
//! whose held answer it gave in its current term (its own state, only moving forward), so an
//! index it never noted cannot be newer than that answer.

use super::{Map, ServiceRecord};
use imbl::ordmap::DiffItem;

#[derive(Debug, Clone, Default)]
pub struct SpecChanges {
    /// Every change at or before it may be unnoted.
    floor: u64,
    /// The index of each live service's last change, where newer than `floor`.
    by_service: Map<String, u64>,
}

impl SpecChanges {
    /// The index of the last change to `service`'s specs (at least the floor).
    pub fn last(&self, service: &str) -> u64 {
        self.by_service
            .get(service)
            .copied()
            .unwrap_or(0)
            .max(self.floor)
    }

    /// Everything may have changed at `index`.
    pub fn everything(&mut self, index: u64) {
        self.floor = self.floor.max(index);
        self.by_service.clear();
    }

    /// Notes, at `index`, the services that `before` and `after` (the services map around one
    /// command) hold differently. A deleted service is forgotten: nothing is sent for it but its
    /// name until it is created again, which is a change.
    pub fn note(
        &mut self,
        before: &Map<String, ServiceRecord>,
        after: &Map<String, ServiceRecord>,
        index: u64,
    ) {
        if before.ptr_eq(after) {
            return;
        }
        for d in before.diff(after) {
            match d {
                DiffItem::Add(name, _) | DiffItem::Update { new: (name, _), .. } => {
                    self.by_service.insert(name.clone(), index);
                }
                DiffItem::Remove(name, _) => {
                    self.by_service.remove(name);
                }
            }
        }
    }
}

impl PartialEq for SpecChanges {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for SpecChanges {}

#[cfg(test)]
mod tests {
    use crate::state::tests::{req, spec};
    use crate::state::State;
    use hoist_proto::raft::Command;

    /// Applies `command` at Raft index `index`.
    fn apply(st: &mut State, index: u64, command: Command) {
        st.apply_at(index, &req(index, command));
    }

    #[test]
    fn each_command_that_changes_what_agents_are_sent_is_noted_at_its_index() {
        let mut st = State::default();
        apply(
            &mut st,
            3,
            Command::ApplyService(Box::new(spec("web", "a", 2))),
        );
        apply(
            &mut st,
            4,
            Command::ApplyService(Box::new(spec("db", "b", 1))),
        );
        assert_eq!(
            (st.spec_changes.last("web"), st.spec_changes.last("db")),
            (3, 4)
        );
        // The same spec again changes nothing; a scale does.
        apply(
            &mut st,
            5,
            Command::ApplyService(Box::new(spec("web", "a", 2))),
        );
        assert_eq!(st.spec_changes.last("web"), 3);
        let scale = Command::ScaleService {
            name: "web".into(),
            replicas: 3,
        };
        apply(&mut st, 6, scale);
        assert_eq!(st.spec_changes.last("web"), 6);
        // Deleted, then created again: its version 1 is another spec.
        apply(&mut st, 7, Command::DeleteService { name: "web".into() });
        assert_eq!(st.spec_changes.last("web"), 0);
        apply(
            &mut st,
            8,
            Command::ApplyService(Box::new(spec("web", "c", 1))),
        );
        assert_eq!(st.spec_changes.last("web"), 8);
        assert_eq!(st.spec_changes.last("db"), 4);
        // A new cluster format changes how sizes are sent.
        apply(&mut st, 9, Command::SetClusterFormat { format: 2 });
        assert_eq!(
            (st.spec_changes.last("web"), st.spec_changes.last("db")),
            (9, 9)
        );
        apply(
            &mut st,
            10,
            Command::ApplyService(Box::new(spec("db", "d", 1))),
        );
        assert_eq!(
            (st.spec_changes.last("web"), st.spec_changes.last("db")),
            (9, 10)
        );
    }

    #[test]
    fn a_restored_image_is_a_change_of_everything() {
        let mut st = State::default();
        apply(
            &mut st,
            3,
            Command::ApplyService(Box::new(spec("web", "a", 2))),
        );
        let image = crate::state::encode_snapshot(&st, 0).unwrap();
        apply(
            &mut st,
            4,
            Command::ApplyService(Box::new(spec("web", "b", 2))),
        );
        apply(&mut st, 5, Command::Restore(image));
        assert_eq!(st.spec_changes.last("web"), 5);
        assert_eq!(st.spec_changes.last("other"), 5);
    }
}
