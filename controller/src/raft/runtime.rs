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
/// is raised here.
pub async fn run<F>(fut: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match runtime().spawn(fut).await {
        Ok(out) => out,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("a task on the Raft runtime was cancelled: {e}"),
    }
}
