//! Tasks an agent already holds, named only in its assignments.
//!
//! A poll is woken by one change to its node (a new task, a stop), or by any peer's change to
//! the overlay, and a whole answer lists every task of the node: while a cluster fills, the
//! leader builds, encodes and sends O(tasks on the node) entries per placement, and O(tasks in
//! the cluster) per node that joins. So a poll may name the term of the answer whose tasks it
//! holds (`tasks_term=T`, with that answer's `index`); a leader of that term then lists in full
//! only the tasks changed since `index` and names the others by id
//! ([`crate::node::Assignments::unchanged`], with [`crate::node::Assignments::changed_since`]).
//! The agent takes the named ones from what it holds ([`merge`]); a held task named nowhere is
//! gone, as in a whole answer.
//!
//! What makes a named task the one a whole answer would carry (the leader's side is in the
//! controller's `api/agent.rs` and `state/assignment_changes.rs`): the same term is the same
//! leader, whose state only moves forward; it notes the index of every change to each task's
//! entry and to each service's specs, and names a task only when neither is newer than the
//! poll's `index`. A task that reads secrets or configs is always sent in full.
//!
//! Format 2; an older controller ignores `tasks_term` and answers in full (`changed_since` 0).

use crate::node::Assignments;
use std::collections::HashMap;

/// Makes `answer` whole: the tasks it names as unchanged taken from `held` (the tasks of the
/// answer the poll named), listed with the changed ones by id as a whole answer lists them, and
/// the specs it left out filled in ([`crate::held_specs::fill`]). An answer that is whole
/// already only has its specs filled in. Names the first task or spec `held` lacks: the answer
/// cannot be taken, and the agent should ask for a whole one (`index` 0).
pub fn merge(held: &[crate::node::Assignment], answer: &mut Assignments) -> Result<(), String> {
    if answer.changed_since != 0 {
        let by_id: HashMap<&str, &crate::node::Assignment> =
            held.iter().map(|t| (t.task_id.as_str(), t)).collect();
        let mut tasks = Vec::with_capacity(answer.tasks.len() + answer.unchanged.len());
        for id in &answer.unchanged {
            match by_id.get(id.as_str()) {
                Some(t) => tasks.push((*t).clone()),
                None => {
                    return Err(format!(
                        "the controller named task {id:?} unchanged, which this agent does not hold"
                    ))
                }
            }
        }
        tasks.append(&mut answer.tasks);
        tasks.sort_by(|a, b| a.task_id.cmp(&b.task_id));
        if let Some(w) = tasks.windows(2).find(|w| w[0].task_id == w[1].task_id) {
            return Err(format!(
                "the controller listed task {:?} twice",
                w[0].task_id
            ));
        }
        answer.tasks = tasks;
        answer.unchanged.clear();
        answer.changed_since = 0;
    }
    crate::held_specs::fill(held, &mut answer.tasks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::TaskState;
    use crate::node::Assignment;
    use crate::service::ServiceSpec;

    fn task(id: &str, image: &str, desired: TaskState) -> Assignment {
        Assignment {
            task_id: id.into(),
            service: "web".into(),
            service_version: 1,
            slot: 0,
            spec: ServiceSpec::new("web", image),
            desired,
            files: vec![],
            spec_held: false,
        }
    }

    fn answer(tasks: Vec<Assignment>, unchanged: &[&str], changed_since: u64) -> Assignments {
        Assignments {
            index: 9,
            term: 2,
            tasks,
            overlay: None,
            overlay_index: 0,
            changed_since,
            unchanged: unchanged.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn the_tasks_named_are_taken_from_what_is_held_and_the_others_are_gone() {
        let running = TaskState::Running;
        let held = [
            task("a", "nginx", running),
            task("b", "nginx", running),
            task("c", "nginx", running),
        ];
        // "b" is told to stop, "d" is new, "c" is gone (named nowhere), "a" is unchanged.
        let mut stop_b = task("b", "nginx", TaskState::Shutdown);
        stop_b.spec = ServiceSpec::new("web", "");
        stop_b.spec_held = true;
        let mut a = answer(vec![task("d", "nginx", running), stop_b], &["a"], 7);
        merge(&held, &mut a).unwrap();
        let whole = vec![
            task("a", "nginx", running),
            task("b", "nginx", TaskState::Shutdown),
            task("d", "nginx", running),
        ];
        assert_eq!(a, answer(whole, &[], 0));
    }

    #[test]
    fn a_whole_answer_is_taken_as_it_is() {
        let mut a = answer(vec![task("b", "x", TaskState::Running)], &[], 0);
        let before = a.clone();
        merge(&[task("a", "y", TaskState::Running)], &mut a).unwrap();
        assert_eq!(a, before, "not merged with what is held");
    }

    #[test]
    fn a_task_named_that_is_not_held_is_an_error() {
        let held = [task("a", "nginx", TaskState::Running)];
        let e = merge(&held, &mut answer(vec![], &["a", "z"], 3)).unwrap_err();
        assert!(e.contains("\"z\""), "{e}");
        let twice = vec![task("a", "nginx", TaskState::Running)];
        let e = merge(&held, &mut answer(twice, &["a"], 3)).unwrap_err();
        assert!(e.contains("twice"), "{e}");
    }
}
