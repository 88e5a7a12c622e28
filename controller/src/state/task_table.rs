//! The tasks, by id, with an index of which tasks each node and each service holds.
//!
//! The questions asked most at scale are about one node or one service: an agent's assignments
//! (answered on every change to that node), the capacity a plan uses on its nodes (checked by
//! every member applying it), a node's line in `node ls`, a service's replicas in `service ps`,
//! its endpoints and its rollout. Without the indexes each was a scan of every task in the
//! cluster. The indexes are derived: neither encoded nor compared, and kept by the only two ways
//! a task enters or leaves the table, [`TaskTable::insert`] and [`TaskTable::remove`]. A task's
//! node and service never change once it is placed (a move is a new task), which is what lets
//! [`TaskTable::get_mut`] hand out the task itself, through a [`TaskMut`]. Each task is behind
//! its own pointer, so that a change to a table shared with a copy copies pointers, not tasks.
//!
//! The table also stamps each service whenever one of its tasks may have changed, so that the
//! leader's reconciliation can tell, by comparing a stamp with the one it saw, which services'
//! tasks changed since its last pass (`scheduler/reconcile/memo.rs`) without reading them; and it
//! keeps a tally of what `node ls`, the leader's loop and the endpoints watch ask of every node,
//! task or service: each node's tasks meant to run, the tasks draining, and each service's ready
//! replicas (the count an answer of changed replicas carries, `api/agent.rs`). A [`TaskMut`] tallies its task again when
//! it is dropped, so no change through it escapes the tally.

use super::Map;
use hoist_proto::cluster::{Task, TaskState};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A task's id as the table keeps it: one allocation, shared by the id map and the indexes
/// (three `String` copies before; about 60 bytes per task less in a heap profile,
/// `bench/results/task-index-2026-12-06.md`).
type Id = Arc<str>;

/// The ids of one node's or one service's tasks.
type Ids = imbl::OrdSet<Id>;

#[derive(Debug, Clone, Default)]
pub struct TaskTable {
    /// Each task behind its own pointer: a change to a table shared with a copy (the leader's
    /// reconcile view, a snapshot) copies the map's nodes it touches, and a node holds up to 64
    /// entries; pointers make that copy 64 counts, not 64 tasks with their strings.
    by_id: Map<Id, Arc<Task>>,
    by_node: Map<String, Ids>,
    by_service: Map<String, Ids>,
    /// Per service holding tasks: a stamp taken at the last change to any of them.
    stamps: Map<String, u64>,
    tally: Tally,
}

/// What the table tallies from fields of its tasks that `get_mut` may change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Tally {
    /// Per node: how many of its tasks are meant to run (nodes with none are absent).
    running: Map<String, u64>,
    /// The tasks draining (meant to run, leaving every node's endpoints first), whose barrier
    /// the leader checks on every round (`leader/drain.rs`).
    draining: Ids,
    /// Per service: how many of its tasks are endpoints ([`Task::is_endpoint`]; services with
    /// none are absent).
    endpoints: Map<String, u64>,
}

fn meant_to_run(t: &Task) -> bool {
    t.desired == TaskState::Running
}

fn draining(t: &Task) -> bool {
    meant_to_run(t) && t.drain_index.is_some()
}

impl Tally {
    /// Counts `t` in (`add`) or out.
    fn count(&mut self, t: &Task, add: bool) {
        if meant_to_run(t) {
            count(&mut self.running, &t.node, add);
        }
        if draining(t) {
            if add {
                self.draining.insert(Id::from(t.id.as_str()));
            } else {
                self.draining.remove(t.id.as_str());
            }
        }
        if t.is_endpoint() {
            count(&mut self.endpoints, &t.service, add);
        }
    }
}

/// Adds one to (`add`) or takes one from `key`'s count (a node's or a service's).
fn count(counts: &mut Map<String, u64>, key: &str, add: bool) {
    match counts.get_mut(key) {
        Some(n) if add => *n += 1,
        Some(n) if *n > 1 => *n -= 1,
        Some(_) => {
            counts.remove(key);
        }
        None if add => {
            counts.insert(key.to_string(), 1);
        }
        None => {}
    }
}

/// A task handed out to change (anything but its node and service): when dropped, it is
/// tallied again if what the tally reads of it changed.
#[derive(Debug)]
pub struct TaskMut<'a> {
    task: &'a mut Task,
    tally: &'a mut Tally,
    /// What the tally read of it when handed out: meant to run, draining, an endpoint.
    was: (bool, bool, bool),
}

impl Deref for TaskMut<'_> {
    type Target = Task;
    fn deref(&self) -> &Task {
        self.task
    }
}

impl DerefMut for TaskMut<'_> {
    fn deref_mut(&mut self) -> &mut Task {
        self.task
    }
}

impl Drop for TaskMut<'_> {
    fn drop(&mut self) {
        let (ran, drained, served) = self.was;
        let runs = meant_to_run(self.task);
        if runs != ran {
            count(&mut self.tally.running, &self.task.node, runs);
        }
        let drains = draining(self.task);
        if drains != drained {
            if drains {
                self.tally.draining.insert(Id::from(self.task.id.as_str()));
            } else {
                self.tally.draining.remove(self.task.id.as_str());
            }
        }
        let serves = self.task.is_endpoint();
        if serves != served {
            count(&mut self.tally.endpoints, &self.task.service, serves);
        }
    }
}

/// A stamp no other change in this process has: taken from one counter, so equal stamps in a
/// table and its copy mean that service's tasks did not change between them, and a table built
/// anew (a snapshot decoded) cannot repeat one a copy of an older table holds. Stamps never
/// reach the encoding, the comparison or any answer of `apply`, so members stay alike.
fn next_stamp() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Stamps `service` as changed.
fn stamp(stamps: &mut Map<String, u64>, service: &str) {
    match stamps.get_mut(service) {
        Some(s) => *s = next_stamp(),
        None => {
            stamps.insert(service.to_string(), next_stamp());
        }
    }
}

impl PartialEq for TaskTable {
    /// Two tables are equal when they hold the same tasks (the index follows from them).
    fn eq(&self, other: &Self) -> bool {
        self.by_id == other.by_id
    }
}

impl Eq for TaskTable {}

impl TaskTable {
    /// Builds the table and its indexes from tasks by id (a decoded state's).
    pub fn from_map(by_id: Map<String, Arc<Task>>) -> TaskTable {
        TaskTable::from_ids(by_id.into_iter().map(|(id, t)| (Id::from(id), t)).collect())
    }

    fn from_ids(by_id: Map<Id, Arc<Task>>) -> TaskTable {
        let mut table = TaskTable {
            by_id,
            ..TaskTable::default()
        };
        for (id, t) in &table.by_id {
            index(&mut table.by_node, &t.node, id);
            index(&mut table.by_service, &t.service, id);
        }
        for service in table.by_service.keys() {
            table.stamps.insert(service.clone(), next_stamp());
        }
        for t in table.by_id.values() {
            table.tally.count(t, true);
        }
        table
    }

    pub fn get(&self, id: &str) -> Option<&Task> {
        self.by_id.get(id).map(|t| &**t)
    }

    /// The task, to change anything but its node and service (see the module's doc). Its
    /// service is stamped as changed, whether or not the caller then changes it.
    pub fn get_mut(&mut self, id: &str) -> Option<TaskMut<'_>> {
        // Copied only when a copy of the table still holds it.
        let task = Arc::make_mut(self.by_id.get_mut(id)?);
        stamp(&mut self.stamps, &task.service);
        Some(TaskMut {
            was: (meant_to_run(task), draining(task), task.is_endpoint()),
            task,
            tally: &mut self.tally,
        })
    }

    pub fn contains_key(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    /// Puts `task` under its id, replacing (and answering) the one there.
    pub fn insert(&mut self, task: Task) -> Option<Task> {
        let id = Id::from(task.id.as_str());
        let (node, service) = (task.node.clone(), task.service.clone());
        if let Some(old) = self.by_id.get(&id) {
            self.tally.count(old, false);
        }
        self.tally.count(&task, true);
        let old = self
            .by_id
            .insert(id.clone(), Arc::new(task))
            .map(Arc::unwrap_or_clone);
        if let Some(old) = &old {
            if old.node != node {
                unindex(&mut self.by_node, &old.node, &id);
            }
            if old.service != service {
                unindex(&mut self.by_service, &old.service, &id);
                self.restamp(&old.service);
            }
        }
        index(&mut self.by_node, &node, &id);
        index(&mut self.by_service, &service, &id);
        stamp(&mut self.stamps, &service);
        old
    }

    pub fn remove(&mut self, id: &str) -> Option<Task> {
        let t = Arc::unwrap_or_clone(self.by_id.remove(id)?);
        self.tally.count(&t, false);
        unindex(&mut self.by_node, &t.node, id);
        unindex(&mut self.by_service, &t.service, id);
        self.restamp(&t.service);
        Some(t)
    }

    /// Stamps `service` after a task left it, or forgets its stamp once it holds none.
    fn restamp(&mut self, service: &str) {
        if self.by_service.contains_key(service) {
            stamp(&mut self.stamps, service);
        } else {
            self.stamps.remove(service);
        }
    }

    /// The stamp of the last change to `service`'s tasks; `None` while it has none. Equal stamps
    /// in two copies of a table mean that the service's tasks are the same in both.
    pub fn stamp_of(&self, service: &str) -> Option<u64> {
        self.stamps.get(service).copied()
    }

    /// How many of `node`'s tasks are meant to run (`desired` running), in one step.
    pub fn running_on(&self, node: &str) -> u64 {
        self.tally.running.get(node).copied().unwrap_or(0)
    }

    /// How many of `service`'s tasks are endpoints (ready replicas), in one step.
    pub fn endpoints_of(&self, service: &str) -> u64 {
        self.tally.endpoints.get(service).copied().unwrap_or(0)
    }

    /// The tasks draining (meant to run, with a `drain_index`), by id: as many steps as there
    /// are.
    pub fn draining(&self) -> impl Iterator<Item = &Task> + '_ {
        (self.tally.draining.iter()).filter_map(|id| self.get(id))
    }

    /// Whether the tally is what tallying the tasks again gives (for tests).
    #[cfg(test)]
    pub(crate) fn tally_is_exact(&self) -> Result<(), String> {
        let counted = TaskTable::from_ids(self.by_id.clone()).tally;
        if counted == self.tally {
            return Ok(());
        }
        Err(format!(
            "the tally of the tasks: kept {:?}, counted {counted:?}",
            self.tally
        ))
    }

    /// How many tasks `service` holds, in one step.
    pub fn count_of(&self, service: &str) -> usize {
        self.by_service.get(service).map_or(0, |ids| ids.len())
    }

    /// The services holding tasks, in order.
    pub fn services(&self) -> impl Iterator<Item = &String> {
        self.by_service.keys()
    }

    /// The tasks on `node`, by id: as many steps as it holds tasks.
    pub fn on_node<'a>(&'a self, node: &str) -> impl Iterator<Item = &'a Task> + 'a {
        self.indexed(&self.by_node, node)
    }

    /// The tasks of `service`, by id: as many steps as it has tasks.
    pub fn of_service<'a>(&'a self, service: &str) -> impl Iterator<Item = &'a Task> + 'a {
        self.indexed(&self.by_service, service)
    }

    fn indexed<'a>(
        &'a self,
        index: &'a Map<String, Ids>,
        key: &str,
    ) -> impl Iterator<Item = &'a Task> + 'a {
        index
            .get(key)
            .into_iter()
            .flat_map(|ids| ids.iter())
            .filter_map(|id| self.get(id))
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn values(&self) -> impl Iterator<Item = &Task> {
        self.by_id.values().map(|t| &**t)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.by_id.keys().map(|id| &**id)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Task)> {
        self.by_id.iter().map(|(id, t)| (&**id, &**t))
    }

    /// Whether both tables share their storage (a copy not changed since).
    pub fn ptr_eq(&self, other: &TaskTable) -> bool {
        self.by_id.ptr_eq(&other.by_id)
    }
}

/// Puts `id` in `key`'s entry of `index`.
fn index(index: &mut Map<String, Ids>, key: &str, id: &Id) {
    match index.get_mut(key) {
        Some(ids) => {
            ids.insert(Id::clone(id));
        }
        None => {
            index.insert(key.to_string(), Ids::unit(Id::clone(id)));
        }
    }
}

/// Takes `id` out of `key`'s entry of `index`, and the entry out once empty.
fn unindex(index: &mut Map<String, Ids>, key: &str, id: &str) {
    if let Some(ids) = index.get_mut(key) {
        ids.remove(id);
        if ids.is_empty() {
            index.remove(key);
        }
    }
}

impl std::ops::Index<&str> for TaskTable {
    type Output = Task;
    fn index(&self, id: &str) -> &Task {
        &self.by_id[id]
    }
}

impl FromIterator<(String, Task)> for TaskTable {
    fn from_iter<I: IntoIterator<Item = (String, Task)>>(iter: I) -> Self {
        TaskTable::from_ids(
            (iter.into_iter())
                .map(|(id, t)| (Id::from(id), Arc::new(t)))
                .collect(),
        )
    }
}

/// A task by id, as the table's iterators hand it out.
type Entry<'a> = (&'a str, &'a Task);

impl<'a> IntoIterator for &'a TaskTable {
    type Item = Entry<'a>;
    type IntoIter = std::iter::Map<
        imbl::ordmap::Iter<'a, Id, Arc<Task>, imbl::shared_ptr::DefaultSharedPtr>,
        fn((&'a Id, &'a Arc<Task>)) -> Entry<'a>,
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.by_id.iter().map(|(id, t)| (&**id, &**t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::test_task;

    fn ids<'a>(t: impl Iterator<Item = &'a Task>) -> Vec<&'a str> {
        t.map(|t| t.id.as_str()).collect()
    }

    #[test]
    fn the_indexes_follow_inserts_replacements_and_removals() {
        let mut table = TaskTable::default();
        for (id, service, node) in [("a", "web", "n1"), ("b", "api", "n2"), ("c", "web", "n1")] {
            table.insert(test_task(id, service, 1, 0, node));
        }
        assert_eq!(ids(table.on_node("n1")), ["a", "c"]);
        assert_eq!(ids(table.on_node("n2")), ["b"]);
        assert_eq!(ids(table.of_service("web")), ["a", "c"]);
        // A replacement under the same id elsewhere moves it in both indexes.
        table.insert(test_task("c", "api", 1, 0, "n2"));
        assert_eq!(ids(table.on_node("n1")), ["a"]);
        assert_eq!(ids(table.on_node("n2")), ["b", "c"]);
        assert_eq!(ids(table.of_service("web")), ["a"]);
        assert_eq!(ids(table.of_service("api")), ["b", "c"]);
        assert_eq!(table.remove("a").map(|t| t.id), Some("a".into()));
        assert_eq!(ids(table.on_node("n1")), Vec::<&str>::new());
        assert_eq!(ids(table.of_service("web")), Vec::<&str>::new());
        assert!(table.remove("a").is_none());
        assert!(
            table.by_node.get("n1").is_none(),
            "an empty node leaves the index"
        );
        assert!(table.by_service.get("web").is_none());
        let rebuilt = TaskTable::from_ids(table.by_id.clone());
        assert_eq!(rebuilt.by_node, table.by_node);
        assert_eq!(rebuilt.by_service, table.by_service);
        assert_eq!(rebuilt, table);
    }

    #[test]
    fn the_indexes_read_the_task_as_changed_and_a_copy_keeps_the_old() {
        let mut table = TaskTable::default();
        for (id, node) in [("a", "n1"), ("b", "n1"), ("c", "n2")] {
            table.insert(test_task(id, "web", 1, 0, node));
        }
        let copy = table.clone();
        table.get_mut("a").expect("a").restarts = 7;
        let restarts = |t: &TaskTable| {
            let by_node: Vec<u64> = t.on_node("n1").map(|t| t.restarts).collect();
            let by_service: Vec<u64> = t.of_service("web").map(|t| t.restarts).collect();
            (by_node, by_service)
        };
        assert_eq!(restarts(&table), (vec![7, 0], vec![7, 0, 0]));
        assert_eq!(restarts(&copy), (vec![0, 0], vec![0, 0, 0]));
        // Unshared now: a second change is made in place.
        let before = Arc::as_ptr(&table.by_id["a"]);
        table.get_mut("a").expect("a").restarts = 8;
        assert_eq!(Arc::as_ptr(&table.by_id["a"]), before);
        assert_eq!(restarts(&table), (vec![8, 0], vec![8, 0, 0]));
    }

    #[test]
    fn a_task_id_is_kept_once_for_the_map_and_both_indexes() {
        let mut table = TaskTable::default();
        table.insert(test_task("a", "web", 1, 0, "n1"));
        let (key, _) = table.by_id.get_key_value("a").expect("a");
        for ids in [&table.by_node["n1"], &table.by_service["web"]] {
            assert!(Arc::ptr_eq(ids.get("a").expect("indexed"), key));
        }
        let rebuilt = TaskTable::from_ids(table.by_id.clone());
        let (key, _) = rebuilt.by_id.get_key_value("a").expect("a");
        assert!(Arc::ptr_eq(
            rebuilt.by_node["n1"].get("a").expect("indexed"),
            key
        ));
    }

    #[test]
    fn a_service_is_stamped_by_any_change_to_its_tasks_and_only_then() {
        let mut table = TaskTable::default();
        assert_eq!(table.stamp_of("web"), None);
        for (id, service) in [("a", "web"), ("b", "api"), ("c", "web")] {
            table.insert(test_task(id, service, 1, 0, "n1"));
        }
        let copy = table.clone();
        let (web, api) = (table.stamp_of("web"), table.stamp_of("api"));
        assert!(web.is_some() && api.is_some() && web != api);
        // Reading changes nothing; a task handed out to change stamps its service alone.
        assert_eq!(table.get("a").map(|t| t.slot), Some(0));
        assert_eq!((table.stamp_of("web"), table.stamp_of("api")), (web, api));
        table.get_mut("a").expect("a").restarts += 1;
        assert_ne!(table.stamp_of("web"), web);
        assert_eq!(table.stamp_of("api"), api);
        // The copy taken before keeps what it saw.
        assert_eq!((copy.stamp_of("web"), copy.stamp_of("api")), (web, api));
        let web = table.stamp_of("web");
        table.remove("c");
        assert_ne!(
            table.stamp_of("web"),
            web,
            "a task leaving stamps its service"
        );
        table.remove("b");
        assert_eq!(
            table.stamp_of("api"),
            None,
            "a service without tasks has no stamp"
        );
        // A table built anew repeats no stamp of the one it was built from.
        let rebuilt = TaskTable::from_ids(table.by_id.clone());
        assert_ne!(rebuilt.stamp_of("web"), table.stamp_of("web"));
        assert_eq!(rebuilt.services().collect::<Vec<_>>(), ["web"]);
    }

    #[test]
    fn each_node_counts_its_tasks_meant_to_run_through_every_change() {
        let mut table = TaskTable::default();
        for (id, node) in [("a", "n1"), ("b", "n1"), ("c", "n2")] {
            let mut t = test_task(id, "web", 1, 0, node);
            t.desired = TaskState::Running;
            table.insert(t);
        }
        assert_eq!((table.running_on("n1"), table.running_on("n2")), (2, 1));
        // A stop through get_mut counts when the handle is dropped; other changes do not.
        table.get_mut("a").expect("a").desired = TaskState::Shutdown;
        table.get_mut("b").expect("b").restarts += 1;
        assert_eq!(table.running_on("n1"), 1);
        // A replacement under the same id on another node moves the count.
        let mut moved = test_task("b", "web", 1, 0, "n2");
        moved.desired = TaskState::Running;
        table.insert(moved);
        assert_eq!((table.running_on("n1"), table.running_on("n2")), (0, 2));
        table.remove("c");
        table.remove("a");
        assert_eq!((table.running_on("n1"), table.running_on("n2")), (0, 1));
        assert!(
            table.tally.running.get("n1").is_none(),
            "a node with none leaves the map"
        );
        assert_eq!(table.tally_is_exact(), Ok(()));
        table.tally.running.insert("n3".into(), 1);
        assert!(table.tally_is_exact().is_err(), "the check can fail");
    }

    #[test]
    fn the_draining_tasks_are_tallied_through_every_change() {
        let mut table = TaskTable::default();
        let ids = |t: &TaskTable| t.draining().map(|t| t.id.clone()).collect::<Vec<_>>();
        let mut a = test_task("a", "web", 1, 0, "n1");
        a.drain_index = Some(3);
        table.insert(a);
        table.insert(test_task("b", "web", 1, 1, "n1"));
        assert_eq!(ids(&table), ["a"]);
        table.get_mut("b").expect("b").drain_index = Some(4);
        assert_eq!(ids(&table), ["a", "b"]);
        // Stopped: no longer draining.
        table.get_mut("a").expect("a").desired = TaskState::Shutdown;
        assert_eq!(ids(&table), ["b"]);
        table.remove("b");
        assert!(ids(&table).is_empty());
        assert_eq!(table.tally_is_exact(), Ok(()));
    }

    #[test]
    fn each_service_counts_its_ready_replicas_through_every_change() {
        let mut table = TaskTable::default();
        let ready = |id: &str, service: &str| {
            let mut t = test_task(id, service, 1, 0, "n1");
            t.state = TaskState::Running;
            t.address = Some("10.200.0.2".into());
            t
        };
        table.insert(ready("a", "web"));
        table.insert(ready("b", "web"));
        table.insert(test_task("c", "web", 1, 2, "n1"));
        table.insert(ready("d", "api"));
        assert_eq!(
            (table.endpoints_of("web"), table.endpoints_of("api")),
            (2, 1)
        );
        // Ready through get_mut, then drained, stopped, failed: each counted once dropped.
        let mut c = table.get_mut("c").expect("c");
        c.state = TaskState::Running;
        c.address = Some("10.200.0.3".into());
        drop(c);
        assert_eq!(table.endpoints_of("web"), 3);
        table.get_mut("a").expect("a").drain_index = Some(4);
        table.get_mut("b").expect("b").desired = TaskState::Shutdown;
        table.get_mut("c").expect("c").restarts += 1;
        assert_eq!(table.endpoints_of("web"), 1);
        table.get_mut("c").expect("c").state = TaskState::Failed;
        assert_eq!(table.endpoints_of("web"), 0);
        // Replaced by a task of another service, then removed.
        table.insert(ready("d", "web"));
        assert_eq!(
            (table.endpoints_of("web"), table.endpoints_of("api")),
            (1, 0)
        );
        table.remove("d");
        assert_eq!(table.endpoints_of("web"), 0);
        assert!(
            table.tally.endpoints.is_empty(),
            "services with none leave the map"
        );
        assert_eq!(table.tally_is_exact(), Ok(()));
        table.tally.endpoints.insert("web".into(), 1);
        assert!(table.tally_is_exact().is_err(), "the check can fail");
    }
}
