//! The driver against a temp directory standing in for cgroupfs: which files get which values.

use super::*;

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap().trim().to_string()
}

#[test]
fn v2_enables_controllers_and_writes_limits() {
    let root = tempfile::tempdir().unwrap();
    let driver = CgroupDriver::new(root.path().into(), "hoist/h1", CgroupVersion::V2);
    let res = Resources {
        memory_bytes: Some(64 << 20),
        cpu_millis: Some(500),
        cpu_weight: Some(200),
        pids_limit: Some(10),
    };
    let h = driver.create("c1", &res).unwrap();
    let dir = root.path().join("hoist/h1/c1");
    assert_eq!(h, CgroupHandle::V2 { dir: dir.clone() });
    assert_eq!(
        read(&root.path().join("cgroup.subtree_control")),
        "+cpu +memory +pids"
    );
    assert_eq!(
        read(&root.path().join("hoist/h1/cgroup.subtree_control")),
        "+cpu +memory +pids"
    );
    assert_eq!(read(&dir.join("memory.max")), (64 << 20).to_string());
    assert_eq!(read(&dir.join("cpu.max")), "50000 100000");
    assert_eq!(read(&dir.join("cpu.weight")), "200");
    assert_eq!(read(&dir.join("pids.max")), "10");
}

#[test]
fn v2_reads_stats_and_oom() {
    let root = tempfile::tempdir().unwrap();
    let driver = CgroupDriver::new(root.path().into(), "hoist", CgroupVersion::V2);
    let h = driver.create("c1", &Resources::default()).unwrap();
    let dir = root.path().join("hoist/c1");
    std::fs::write(dir.join("memory.current"), "1000\n").unwrap();
    std::fs::write(dir.join("memory.stat"), "anon 600\ninactive_file 300\n").unwrap();
    std::fs::write(dir.join("cpu.stat"), "usage_usec 7\nuser_usec 5\n").unwrap();
    std::fs::write(dir.join("pids.current"), "3\n").unwrap();
    assert_eq!(
        h.stats(),
        CgroupStats {
            memory_bytes: 700,
            cpu_usage_ns: 7000,
            pids: 3
        }
    );
    assert!(!h.oom_killed());
    std::fs::write(
        dir.join("memory.events"),
        "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n",
    )
    .unwrap();
    assert!(h.oom_killed());
    assert_eq!(h.oom_kills(), 1);
}

#[test]
fn v1_writes_per_controller() {
    let root = tempfile::tempdir().unwrap();
    for c in ["memory", "cpu", "cpuacct", "pids"] {
        std::fs::create_dir(root.path().join(c)).unwrap();
    }
    let driver = CgroupDriver::new(root.path().into(), "hoist", CgroupVersion::V1);
    let res = Resources {
        memory_bytes: Some(1 << 30),
        cpu_millis: Some(1500),
        cpu_weight: Some(100),
        pids_limit: Some(5),
    };
    let h = driver.create("c1", &res).unwrap();
    let CgroupHandle::V1 { dirs } = &h else {
        panic!("v1")
    };
    assert_eq!(dirs.len(), 4, "no devices controller in this fake root");
    assert_eq!(
        read(&root.path().join("memory/hoist/c1/memory.limit_in_bytes")),
        (1u64 << 30).to_string()
    );
    assert_eq!(
        read(&root.path().join("cpu/hoist/c1/cpu.cfs_quota_us")),
        "150000"
    );
    assert_eq!(
        read(&root.path().join("cpu/hoist/c1/cpu.shares")),
        weight_to_shares(100).to_string()
    );
    assert_eq!(read(&root.path().join("pids/hoist/c1/pids.max")), "5");
    std::fs::write(
        root.path().join("memory/hoist/c1/memory.oom_control"),
        "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
    )
    .unwrap();
    assert!(h.oom_killed());
    assert_eq!(h.oom_kills(), 2);
}

#[test]
fn shares_conversion_matches_kernel_range() {
    assert_eq!(weight_to_shares(100), 1024, "defaults agree");
    assert_eq!(weight_to_shares(1), 10);
    assert_eq!(weight_to_shares(10000), 102_400);
    assert_eq!(weight_to_shares(0), 10, "clamped to the v2 range first");
}

/// The real cgroupfs of this host (root only): limits land in the kernel's files, a process can join,
/// and removal leaves no directory.
#[test]
fn real_cgroupfs_create_join_remove() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let parent = format!("hoist-unit-{}", std::process::id());
    let driver = CgroupDriver::detect(&parent).unwrap();
    let res = Resources {
        memory_bytes: Some(32 << 20),
        pids_limit: Some(7),
        ..Default::default()
    };
    let h = driver.create("c1", &res).unwrap();
    let mut child = std::process::Command::new("sleep")
        .arg("5")
        .spawn()
        .unwrap();
    h.add_process(child.id() as i32).unwrap();
    assert_eq!(h.pids(), vec![child.id() as i32]);
    assert!(h.stats().pids >= 1);
    child.kill().unwrap();
    child.wait().unwrap();
    h.remove().unwrap();
    // the per-test parent too
    let parents: Vec<PathBuf> = match driver.handle_for("x") {
        CgroupHandle::V1 { dirs } => dirs
            .values()
            .map(|d| d.parent().unwrap().to_path_buf())
            .collect(),
        CgroupHandle::V2 { dir } => vec![dir.parent().unwrap().to_path_buf()],
    };
    for p in parents {
        std::fs::remove_dir(&p).unwrap();
    }
}

#[test]
fn a_process_moves_itself_by_thread_on_v1_and_whole_on_v2() {
    let root = tempfile::tempdir().unwrap();
    for c in v1::CONTROLLERS {
        std::fs::create_dir(root.path().join(c)).unwrap();
    }
    let v1 = CgroupDriver::new(root.path().into(), "hoist", CgroupVersion::V1)
        .create("c1", &Resources::default())
        .unwrap();
    assert!(v1.joined_from_inside());
    v1.add_current_process().unwrap();
    for c in v1::CONTROLLERS {
        let dir = root.path().join(c).join("hoist/c1");
        assert_eq!(read(&dir.join("tasks")), "0", "{c}: the calling thread");
        assert!(!dir.join("cgroup.procs").exists(), "{c}: no process move");
    }

    let root = tempfile::tempdir().unwrap();
    let v2 = CgroupDriver::new(root.path().into(), "hoist", CgroupVersion::V2)
        .create("c1", &Resources::default())
        .unwrap();
    assert!(
        !v2.joined_from_inside(),
        "moved by the supervisor, overlapping the setup"
    );
    v2.add_current_process().unwrap();
    assert_eq!(read(&root.path().join("hoist/c1/cgroup.procs")), "0");
}
