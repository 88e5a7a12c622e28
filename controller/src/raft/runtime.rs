//! The threads Raft runs on, apart from the API's.
//!
//! A member serves every agent's long polls, status reports and heartbeats, and the operators'
//! API, on the process's main runtime. When that is saturated (a fill of a thousand nodes, each
//! holding its watches, on a host shared with them), a Raft heartbeat waits in the same queue as
//! hundreds of answers being built: the leader's heartbeats and a follower's answers missed the
//! member link's 50 ms, followers started elections, and the cluster changed leader in the middle
//! of the fill, which failed every poll and sent the nodes to register again
//! (`bench/results/sim-compare-2026-12-06-replica-deltas.md`). So the Raft core, its replication
//! tasks, the state machine and the member link's answering side run on a runtime of their own:
//! the operating system gives its threads the CPU when they wake, whatever the API's queue holds.
//! It is etcd's advice (give Raft its own resources) within one process.
//!
//! One runtime per process, made at first use and never dropped: several members in one test
//! process share it.

use std::future::Future;
use std::sync::OnceLock;

/// Worker threads: the core and the state machine can each be busy (a plan of thousands of
/// placements takes tens of milliseconds to apply) while a heartbeat goes out.
const THREADS: usize = 2;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(THREADS)
            .thread_name("hoist-raft")
            .enable_all()
            .build()
            .expect("the Raft runtime")
    })
}

/// Runs `fut` on Raft's runtime (tasks it spawns run there too) and waits for it. A panic in it
/// is raised here; dropping the wait stops it, as dropping `fut` itself would (a link served for
/// a connection the listener closes).
pub async fn run<F>(fut: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let mut task = AbortOnDrop(runtime().spawn(fut));
    match (&mut task.0).await {
        Ok(out) => out,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("a task on the Raft runtime was cancelled: {e}"),
    }
}

/// Starts `fut` on Raft's runtime on its own: it runs to its end whether anyone waits for it or
/// not.
pub fn spawn<F>(fut: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    runtime().spawn(fut)
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn work_runs_on_the_raft_threads_and_stops_when_no_longer_awaited() {
        let name = run(async { std::thread::current().name().map(str::to_string) }).await;
        assert_eq!(name.as_deref(), Some("hoist-raft"));
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
        let waiting = run(async move {
            let _tx = tx;
            std::future::pending::<()>().await
        });
        // Dropped after a moment: the task ends, and with it its sender.
        let _ = tokio::time::timeout(Duration::from_millis(20), waiting).await;
        let closed = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        assert_eq!(closed, Ok(None), "the task was stopped");
    }
}
