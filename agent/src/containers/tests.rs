//! The manager over the fakes of `crate::testing`, as a normal user: the kernel-facing steps of
//! a create, a create that fails at any of them leaves nothing, remove releases everything, and
//! restore after an agent killed at any step of a create cleans up or adopts, by its rules.

use super::Manager;
use crate::network::Network;
use crate::testing::FakeHost;
use hoist_proto::{
    ContainerStatus, CreateContainer, ImageConfig, ImageHealthcheck, MountKind, NetworkMode,
    PortMapping, Protocol, Resources, VolumeMount,
};
use std::future::Future;
use std::sync::Arc;

/// Runs `f` on a runtime of its own; dropping it at the end ends every task it spawned, as the
/// death of the agent process would.
fn run<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

fn request(network: NetworkMode) -> CreateContainer {
    let ports = match network {
        NetworkMode::Bridge => vec![PortMapping {
            host_port: 8080,
            container_port: 80,
            protocol: Protocol::Tcp,
        }],
        _ => Vec::new(),
    };
    CreateContainer {
        image: "busybox".into(),
        name: Some("web".into()),
        network,
        ports,
        resources: Resources {
            memory_bytes: Some(64 << 20),
            ..Resources::default()
        },
        ..CreateContainer::default()
    }
}

/// Each network mode with the kernel-facing calls its create makes, in order.
fn cases() -> Vec<(NetworkMode, Vec<&'static str>)> {
    vec![
        (
            NetworkMode::Bridge,
            vec![
                "image resolve",
                "cgroup create",
                "netns remove",
                "netns bridged",
                "nft apply",
                "supervisor start",
            ],
        ),
        (
            NetworkMode::None,
            vec!["image resolve", "cgroup create", "supervisor start"],
        ),
        (
            NetworkMode::Host,
            vec!["image resolve", "cgroup create", "supervisor start"],
        ),
    ]
}

/// An agent started on `host` and restored, as `main` does it.
async fn agent(host: &Arc<FakeHost>) -> (Arc<Manager>, Arc<Network>) {
    let (mgr, net) = host.agent().await;
    mgr.restore().await.expect("restore");
    (mgr, net)
}

fn entries(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// No trace of any container: not in the index, no directory, cgroup, netns, address, port
/// rule, supervisor or network record.
fn assert_nothing_left(host: &FakeHost, mgr: &Manager, net: &Network, why: &str) {
    assert!(
        mgr.list(true).is_empty(),
        "{why}: listed {:?}",
        mgr.list(true)
    );
    let world = host.snapshot_world();
    assert!(
        world.cgroups.is_empty(),
        "{why}: cgroups {:?}",
        world.cgroups
    );
    assert!(
        world.namespaces.is_empty(),
        "{why}: netns {:?}",
        world.namespaces
    );
    assert!(
        host.published().is_empty(),
        "{why}: ports {:?}",
        host.published()
    );
    assert!(
        world.supervisors.values().all(|s| s.exit.is_some()),
        "{why}: supervisors {:?}",
        world.supervisors
    );
    assert!(
        net.addresses().is_empty(),
        "{why}: addresses {:?}",
        net.addresses()
    );
    let config = host.config();
    assert_eq!(
        entries(&config.containers_dir()),
        Vec::<String>::new(),
        "{why}"
    );
    assert_eq!(entries(&config.run_dir()), vec!["netns"], "{why}");
    assert_eq!(entries(&config.netns_dir()), Vec::<String>::new(), "{why}");
    assert_eq!(
        entries(&config.volumes_dir()),
        Vec::<String>::new(),
        "{why}: volumes"
    );
    let state =
        std::fs::read_to_string(config.network_dir().join("attachments.json")).unwrap_or_default();
    assert!(!state.contains("10.89.0."), "{why}: network state {state}");
}

#[test]
fn create_makes_the_kernel_calls_in_order() {
    for (mode, steps) in cases() {
        let host = FakeHost::new();
        run(async {
            let (mgr, net) = agent(&host).await;
            let before = host.calls().len();
            let (c, created) = mgr.create(request(mode), false).await.expect("create");
            assert_eq!(host.ops_since(before), steps, "{mode:?}");
            assert_eq!(created.name, "web");
            assert!(c.state().is_running());
            let world = host.snapshot_world();
            assert_eq!(world.cgroups.len(), 1);
            assert_eq!(
                world.cgroups.get(&c.record.id).and_then(|r| r.memory_bytes),
                Some(64 << 20)
            );
            let info = c.info();
            let spec: crate::runtime::RuntimeSpec =
                serde_json::from_slice(&std::fs::read(c.dir.spec()).expect("spec"))
                    .expect("spec json");
            match mode {
                NetworkMode::Bridge | NetworkMode::Cluster => {
                    assert!(spec.netns.is_some() && !spec.own_netns);
                    assert_eq!(info.ip_address.as_deref(), Some("10.89.0.2"));
                    let ns = world.namespaces.get(&c.record.id).expect("netns");
                    assert_eq!(ns.ip.to_string(), "10.89.0.2");
                    let port = (Protocol::Tcp, 8080, c.record.id.clone());
                    assert_eq!(host.published().into_iter().collect::<Vec<_>>(), vec![port]);
                    assert_eq!(
                        world.sysctls.get("net/ipv4/ip_forward").map(String::as_str),
                        Some("1")
                    );
                }
                NetworkMode::None => {
                    // Its first process makes the namespace: the agent pins none.
                    assert!(world.namespaces.is_empty());
                    assert!(net.addresses().is_empty());
                    assert!(spec.own_netns && spec.netns.is_none());
                }
                NetworkMode::Host => {
                    assert!(world.namespaces.is_empty());
                    assert!(!spec.own_netns && spec.netns.is_none());
                }
            }
        });
    }
}

#[test]
fn a_create_failing_at_any_step_leaves_nothing() {
    for (mode, steps) in cases() {
        for (k, op) in steps.iter().enumerate() {
            let host = FakeHost::new();
            let why = format!("{mode:?}, failing {op} (step {k})");
            run(async {
                let (mgr, net) = agent(&host).await;
                let before = host.calls().len();
                host.fail_nth(k);
                let err = mgr
                    .create(request(mode), false)
                    .await
                    .map(|_| ())
                    .expect_err(&why);
                assert!(
                    err.to_string().contains("injected failure of"),
                    "{why}: {err}"
                );
                assert_eq!(host.calls()[before + k].op, *op, "{why}");
                assert_nothing_left(&host, &mgr, &net, &why);
                // And the name, address and port are free again.
                let (c, _) = mgr.create(request(mode), false).await.expect(&why);
                if mode == NetworkMode::Bridge {
                    assert_eq!(c.info().ip_address.as_deref(), Some("10.89.0.2"), "{why}");
                }
            });
        }
    }
}

#[test]
fn remove_releases_everything() {
    for (mode, _) in cases() {
        let host = FakeHost::new();
        run(async {
            let (mgr, net) = agent(&host).await;
            let (c, _) = mgr.create(request(mode), false).await.expect("create");
            let id = c.record.id.clone();
            let err = mgr.remove(&id, false).await.expect_err("running");
            assert_eq!(err.code(), "conflict");
            let before = host.calls().len();
            mgr.remove("web", true).await.expect("remove");
            let mut expected = vec!["supervisor kill"];
            match mode {
                NetworkMode::Bridge | NetworkMode::Cluster => {
                    expected.extend(["nft apply", "netns remove"])
                }
                NetworkMode::None | NetworkMode::Host => expected.push("netns remove"),
            }
            expected.push("cgroup remove");
            assert_eq!(host.ops_since(before), expected, "{mode:?}");
            assert_eq!(c.wait_exit().await.code, 137);
            assert_nothing_left(&host, &mgr, &net, &format!("{mode:?}"));
            let err = mgr.remove(&id, false).await.expect_err("gone");
            assert_eq!(err.code(), "not_found");
        });
    }
}

#[test]
fn a_refused_port_batch_on_remove_falls_back_to_what_is_there() {
    let host = FakeHost::new();
    run(async {
        let (mgr, net) = agent(&host).await;
        mgr.create(request(NetworkMode::Bridge), false)
            .await
            .expect("create");
        host.fail_op("nft apply");
        let before = host.calls().len();
        mgr.remove("web", true).await.expect("remove");
        assert_eq!(
            host.ops_since(before),
            [
                "supervisor kill",
                "nft apply",
                "nft list",
                "nft apply",
                "netns remove",
                "cgroup remove"
            ]
        );
        assert_nothing_left(&host, &mgr, &net, "after the fallback");
    });
}

#[test]
fn an_exited_container_keeps_its_exit_until_removed() {
    let host = FakeHost::new();
    run(async {
        let (mgr, net) = agent(&host).await;
        let (c, _) = mgr
            .create(request(NetworkMode::Bridge), false)
            .await
            .expect("create");
        host.exit_container(&c.record.id, 3);
        assert_eq!(mgr.wait("web").await.expect("wait").code, 3);
        assert_eq!(c.info().status, ContainerStatus::Exited);
        let err = mgr
            .kill("web", libc::SIGTERM)
            .await
            .expect_err("not running");
        assert_eq!(err.code(), "conflict");
        mgr.remove("web", false).await.expect("remove");
        assert_nothing_left(&host, &mgr, &net, "exited");
    });
}

#[test]
fn restore_after_a_crash_at_any_step_cleans_up_or_adopts() {
    for (mode, steps) in cases() {
        // Killed right before each step, and once after the last.
        for k in 0..=steps.len() {
            let host = FakeHost::new();
            let why = match steps.get(k) {
                Some(op) => format!("{mode:?}, killed before {op} (step {k})"),
                None => format!("{mode:?}, killed after the create"),
            };
            let id = run(async {
                let (mgr, _net) = agent(&host).await;
                if k < steps.len() {
                    host.snapshot_before(k);
                }
                let (c, _) = mgr.create(request(mode), false).await.expect(&why);
                if k == steps.len() {
                    host.snapshot();
                }
                c.record.id.clone()
            });
            host.rewind();
            run(async {
                let (mgr, net) = agent(&host).await;
                if k < steps.len() {
                    // The create never finished: all of it is released.
                    assert_nothing_left(&host, &mgr, &net, &why);
                    return;
                }
                // It had started: its supervisor still runs it; the agent adopts it.
                let c = mgr.get(&id).expect(&why);
                assert!(c.state().is_running(), "{why}");
                assert_eq!(host.snapshot_world().cgroups.len(), 1, "{why}");
                if mode == NetworkMode::Bridge {
                    assert_eq!(net.addresses().len(), 1, "{why}");
                    assert_eq!(host.published().len(), 1, "{why}");
                }
                host.exit_container(&id, 0);
                assert_eq!(c.wait_exit().await.code, 0, "{why}");
                mgr.remove(&id, false).await.expect(&why);
                assert_nothing_left(&host, &mgr, &net, &why);
            });
        }
    }
}

#[test]
fn after_a_reboot_a_container_is_kept_as_exited_255() {
    let host = FakeHost::new();
    let id = run(async {
        let (mgr, _net) = agent(&host).await;
        let (c, _) = mgr
            .create(request(NetworkMode::Bridge), false)
            .await
            .expect("create");
        c.record.id.clone()
    });
    host.reboot();
    run(async {
        let (mgr, net) = agent(&host).await;
        let info = mgr.get(&id).expect("kept").info();
        assert_eq!(info.status, ContainerStatus::Exited);
        assert_eq!(info.exit.map(|e| e.code), Some(255));
        mgr.remove(&id, false).await.expect("remove");
        assert_nothing_left(&host, &mgr, &net, "after a reboot");
    });
}

/// A record that does not read (corrupt, or written by a newer agent) leaves its container
/// exactly as it is: directory, network and all. Nothing is removed on a guess.
#[test]
fn a_container_whose_record_does_not_read_is_left_untouched() {
    let host = FakeHost::new();
    let id = run(async {
        let (mgr, _net) = agent(&host).await;
        let (c, _) = mgr
            .create(request(NetworkMode::Bridge), false)
            .await
            .expect("create");
        c.record.id.clone()
    });
    let dir = host.data_dir().join("containers").join(&id);
    std::fs::write(dir.join("container.json"), b"{\"version\": 9").unwrap();
    run(async {
        let (mgr, net) = agent(&host).await;
        assert!(mgr.get(&id).is_err(), "not adopted");
        assert!(dir.exists(), "the directory stays");
        assert!(net.attachment(&id).is_some(), "the network stays");
    });
}

/// An image with `VOLUME /data` (holding a file) and `/empty` (nothing there), and a check.
fn add_volume_image(host: &FakeHost) {
    host.add_image(
        "vol",
        ImageConfig {
            cmd: Some(vec!["sh".into()]),
            volumes: vec!["/data".into(), "/empty/".into()],
            healthcheck: Some(ImageHealthcheck {
                test: vec!["CMD".into(), "true".into()],
                ..ImageHealthcheck::default()
            }),
            shell: Some(vec!["/bin/ash".into(), "-c".into()]),
            ..ImageConfig::default()
        },
        &[
            ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
            ("data/seed", "from the image\n"),
        ],
    );
}

fn volume_request() -> CreateContainer {
    CreateContainer {
        image: "vol".into(),
        ..request(NetworkMode::Bridge)
    }
}

#[test]
fn image_volumes_get_anonymous_volumes_that_go_with_the_container() {
    let host = FakeHost::new();
    add_volume_image(&host);
    let bound = tempfile::tempdir().unwrap();
    run(async {
        let (mgr, _net) = agent(&host).await;
        let before = host.calls().len();
        let (c, _) = mgr.create(volume_request(), false).await.expect("create");
        assert_eq!(
            host.ops_since(before),
            cases()[0].1,
            "volumes add no kernel call"
        );
        let vols = c.record.anonymous_volumes.clone();
        let targets: Vec<&str> = vols.iter().map(|v| v.target.as_str()).collect();
        assert_eq!(targets, ["/data", "/empty"]);
        let root = host.config().volumes_dir();
        let data = crate::containers::volumes::data_path(&root, &vols[0].id);
        assert_eq!(
            std::fs::read_to_string(data.join("seed")).unwrap(),
            "from the image\n"
        );
        let empty = crate::containers::volumes::data_path(&root, &vols[1].id);
        assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
        // The supervisor is told to mount them.
        let spec: crate::runtime::RuntimeSpec =
            crate::runtime::read_json(&c.dir.spec()).unwrap().unwrap();
        assert!(spec
            .binds
            .iter()
            .any(|b| b.source == data && b.target == "/data" && !b.read_only));
        // Inspect shows them, and the image's check and shell are kept for the worker.
        let info = c.info();
        assert_eq!(info.mounts.len(), 2);
        assert!(info
            .mounts
            .iter()
            .all(|m| m.kind == MountKind::Volume && m.name.is_some()));
        assert_eq!(info.mounts[0].source, data.display().to_string());
        assert_eq!(info.healthcheck.as_ref().unwrap().test, ["CMD", "true"]);
        assert_eq!(info.shell.as_deref().unwrap()[0], "/bin/ash");

        // They survive the exit and an agent restart, with what was written.
        std::fs::write(data.join("written"), "by the container").unwrap();
        host.exit_container(&c.record.id, 0);
        c.wait_exit().await;
        let id = c.record.id.clone();
        drop(mgr);
        let (mgr, net) = agent(&host).await;
        let c = mgr.get(&id).expect("restored");
        assert_eq!(c.record.anonymous_volumes, vols);
        assert!(data.join("written").exists(), "kept across a restart");
        mgr.remove(&id, false).await.expect("remove");
        assert!(
            !data.exists() && !empty.exists(),
            "removed with the container"
        );
        assert_nothing_left(&host, &mgr, &net, "after rm");

        // A bind mount at the exact path wins; it shows among the mounts.
        let req = CreateContainer {
            volumes: vec![VolumeMount {
                host_path: bound.path().display().to_string(),
                container_path: "/data/".into(),
                read_only: true,
            }],
            ..volume_request()
        };
        let (c, _) = mgr.create(req, false).await.expect("create with a bind");
        let targets: Vec<&str> = c
            .record
            .anonymous_volumes
            .iter()
            .map(|v| v.target.as_str())
            .collect();
        assert_eq!(targets, ["/empty"]);
        let mounts: Vec<(MountKind, String, bool)> = c
            .info()
            .mounts
            .into_iter()
            .map(|m| (m.kind, m.destination, m.read_only))
            .collect();
        assert_eq!(
            mounts,
            [
                (MountKind::Bind, "/data".to_string(), true),
                (MountKind::Volume, "/empty".to_string(), false)
            ]
        );
        assert_eq!(
            entries(bound.path()),
            Vec::<String>::new(),
            "nothing copied into a bind"
        );
        mgr.remove("web", true).await.expect("remove");
        assert_nothing_left(&host, &mgr, &net, "after rm of the bound one");
    });
}

#[test]
fn a_create_with_volumes_failing_at_any_step_leaves_nothing() {
    let steps = &cases()[0].1;
    for (k, op) in steps.iter().enumerate() {
        let host = FakeHost::new();
        add_volume_image(&host);
        let why = format!("failing {op} (step {k})");
        run(async {
            let (mgr, net) = agent(&host).await;
            host.fail_nth(k);
            mgr.create(volume_request(), false)
                .await
                .map(|_| ())
                .expect_err(&why);
            assert_nothing_left(&host, &mgr, &net, &why);
        });
    }
}

#[test]
fn a_volume_over_a_file_of_the_image_is_refused_and_leaves_nothing() {
    let host = FakeHost::new();
    host.add_image(
        "bad",
        ImageConfig {
            cmd: Some(vec!["sh".into()]),
            volumes: vec!["/ok".into(), "/etc/passwd".into()],
            ..ImageConfig::default()
        },
        &[("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")],
    );
    run(async {
        let (mgr, net) = agent(&host).await;
        let req = CreateContainer {
            image: "bad".into(),
            ..request(NetworkMode::Bridge)
        };
        let err = mgr
            .create(req, false)
            .await
            .map(|_| ())
            .expect_err("refused");
        assert_eq!(err.code(), "invalid", "{err}");
        assert!(err.to_string().contains("/etc/passwd"), "{err}");
        assert_nothing_left(&host, &mgr, &net, "refused volume");
    });
}

/// Killed before each step of a create with volumes, and once after: the next agent removes the
/// volumes of a create that never finished, and keeps those of a container it adopts.
#[test]
fn restore_removes_the_volumes_of_an_unfinished_create_and_keeps_the_others() {
    let steps = &cases()[0].1;
    for k in 0..=steps.len() {
        let host = FakeHost::new();
        add_volume_image(&host);
        let why = format!("killed before step {k}");
        let id = run(async {
            let (mgr, _net) = agent(&host).await;
            if k < steps.len() {
                host.snapshot_before(k);
            }
            let (c, _) = mgr.create(volume_request(), false).await.expect(&why);
            if k == steps.len() {
                host.snapshot();
            }
            c.record.id.clone()
        });
        host.rewind();
        run(async {
            let (mgr, net) = agent(&host).await;
            if k < steps.len() {
                assert_nothing_left(&host, &mgr, &net, &why);
                return;
            }
            let c = mgr.get(&id).expect(&why);
            assert_eq!(
                entries(&host.config().volumes_dir()).len(),
                2,
                "{why}: the adopted container keeps its volumes"
            );
            host.exit_container(&id, 0);
            c.wait_exit().await;
            mgr.remove(&id, false).await.expect(&why);
            assert_nothing_left(&host, &mgr, &net, &why);
        });
    }
}

/// A volume no record names is removed at start, unless a record did not read: then every
/// volume stays, as its owner cannot be known.
#[test]
fn orphaned_volumes_are_swept_unless_a_record_does_not_read() {
    let host = FakeHost::new();
    add_volume_image(&host);
    let root = host.config().volumes_dir();
    let orphan = "0f".repeat(32);
    let id = run(async {
        let (mgr, _net) = agent(&host).await;
        let (c, _) = mgr.create(volume_request(), false).await.expect("create");
        c.record.id.clone()
    });
    std::fs::create_dir_all(root.join(&orphan).join("_data")).unwrap();
    let record = host
        .data_dir()
        .join("containers")
        .join(&id)
        .join("container.json");
    let good = std::fs::read(&record).unwrap();
    std::fs::write(&record, b"{\"version\": 9").unwrap();
    run(async {
        let _ = agent(&host).await;
    });
    assert_eq!(entries(&root).len(), 3, "nothing removed on a guess");
    std::fs::write(&record, good).unwrap();
    run(async {
        let _ = agent(&host).await;
    });
    let left = entries(&root);
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(!left.contains(&orphan));
}

/// The complete spec's fields reach the supervisor's spec (tmpfs, rlimits, named volumes as
/// binds); a named volume starts with the image's content, outlives its container and the
/// anonymous-volume sweep of a restart, is reused by the next container, and is removed only by
/// `remove_volume` once no container names it.
#[test]
fn named_volumes_tmpfs_and_ulimits_reach_the_runtime_and_volumes_outlive_containers() {
    use hoist_proto::{NamedVolumeMount, TmpfsMount, Ulimit};
    let host = FakeHost::new();
    add_volume_image(&host);
    let req = || CreateContainer {
        named_volumes: vec![NamedVolumeMount {
            name: "db-data".into(),
            target: "/data".into(),
            read_only: false,
        }],
        tmpfs: vec![TmpfsMount {
            target: "/run".into(),
            size_bytes: Some(64 << 20),
            mode: Some(0o1777),
            read_only: false,
        }],
        ulimits: [(
            "nofile".to_string(),
            Ulimit {
                soft: 1024,
                hard: 4096,
            },
        )]
        .into(),
        user: Some("0:0".into()),
        hostname: Some("db-1".into()),
        ..volume_request()
    };
    run(async {
        let (mgr, _net) = agent(&host).await;
        let before = host.calls().len();
        let (c, _) = mgr.create(req(), false).await.expect("create");
        assert_eq!(host.ops_since(before), cases()[0].1, "no extra kernel call");
        // /data has a named volume: only /empty gets an anonymous one.
        let anon: Vec<&str> = c
            .record
            .anonymous_volumes
            .iter()
            .map(|v| v.target.as_str())
            .collect();
        assert_eq!(anon, ["/empty"]);
        let root = mgr.named_volumes_root();
        let data = super::named_volumes::data_path(&root, "db-data");
        assert_eq!(
            std::fs::read_to_string(data.join("seed")).unwrap(),
            "from the image\n"
        );
        let spec: crate::runtime::RuntimeSpec =
            crate::runtime::read_json(&c.dir.spec()).unwrap().unwrap();
        assert!(spec
            .binds
            .iter()
            .any(|b| b.source == data && b.target == "/data"));
        assert_eq!(spec.tmpfs, req().tmpfs);
        assert_eq!(
            spec.rlimits,
            [crate::runtime::security::Rlimit {
                name: "nofile".into(),
                resource: libc::RLIMIT_NOFILE as i32,
                soft: 1024,
                hard: 4096
            }]
        );
        assert_eq!(spec.hostname, "db-1");
        let kinds: Vec<(MountKind, Option<String>, String)> = c
            .info()
            .mounts
            .into_iter()
            .map(|m| (m.kind, m.name.filter(|n| n.len() < 64), m.destination))
            .collect();
        assert!(kinds.contains(&(MountKind::Volume, Some("db-data".into()), "/data".into())));
        assert!(kinds.contains(&(MountKind::Tmpfs, None, "/run".into())));

        // Listed, in use, not removable.
        let vols = mgr.volumes();
        assert_eq!(vols.len(), 1);
        assert_eq!(
            (vols[0].name.as_str(), vols[0].used_by.as_slice()),
            ("db-data", &["web".to_string()][..])
        );
        // What the worker reports to the leader: the same, with a creation time, no walk.
        let reported = mgr.node_volumes();
        assert_eq!(reported.len(), 1);
        assert_eq!(
            (reported[0].name.as_str(), reported[0].used_by.as_slice()),
            ("db-data", &["web".to_string()][..])
        );
        assert!(reported[0].created_ms.is_some() && reported[0].size_bytes.is_none());
        assert!(mgr.volume_size("db-data") > 0);
        let err = mgr.remove_volume("db-data").unwrap_err();
        assert_eq!(err.code(), "conflict");
        assert_eq!(
            err.to_string(),
            "volume db-data is in use by container(s) web: remove them first"
        );
        assert_eq!(mgr.remove_volume("nope").unwrap_err().code(), "not_found");
        assert_eq!(mgr.volume("nope").unwrap_err().code(), "not_found");
        assert_eq!(mgr.remove_volume("../x").unwrap_err().code(), "invalid");

        // The container goes; the volume and what was written stay, through a restart too.
        std::fs::write(data.join("written"), "kept").unwrap();
        std::fs::remove_file(data.join("seed")).unwrap();
        mgr.remove("web", true).await.expect("remove");
        assert!(
            data.join("written").exists(),
            "kept when its container is removed"
        );
        drop(mgr);
        let (mgr, _net) = agent(&host).await;
        assert!(data.join("written").exists(), "kept across the start sweep");
        // The next container (an update of the task) finds it as it was: nothing copied again.
        let (c, _) = mgr.create(req(), false).await.expect("create again");
        assert!(data.join("written").exists() && !data.join("seed").exists());
        assert!(mgr.volume("db-data").unwrap().size_bytes.is_some());
        mgr.remove(&c.record.id, true).await.expect("remove");
        assert!(mgr.volume("db-data").unwrap().used_by.is_empty());
        mgr.remove_volume("db-data").expect("removed once unused");
        assert!(!data.exists() && mgr.volumes().is_empty());
    });
}

/// Bad values of the complete spec are refused by name before anything is made.
#[test]
fn bad_spec_fields_are_refused_naming_the_field() {
    use hoist_proto::{NamedVolumeMount, TmpfsMount, Ulimit};
    let host = FakeHost::new();
    add_volume_image(&host);
    let tmpfs = |target: &str, size: Option<u64>, mode: Option<u32>| TmpfsMount {
        target: target.into(),
        size_bytes: size,
        mode,
        read_only: false,
    };
    let named = |name: &str, target: &str| NamedVolumeMount {
        name: name.into(),
        target: target.into(),
        read_only: false,
    };
    let cases: Vec<(CreateContainer, &str)> = vec![
        (
            CreateContainer {
                ulimits: [("nofile".to_string(), Ulimit { soft: 10, hard: 5 })].into(),
                ..volume_request()
            },
            "ulimit nofile: soft 10 is above hard 5",
        ),
        (
            CreateContainer {
                ulimits: [("files".to_string(), Ulimit { soft: 1, hard: 1 })].into(),
                ..volume_request()
            },
            "ulimit files: \"files\" is not a ulimit",
        ),
        (
            CreateContainer {
                tmpfs: vec![tmpfs("run", None, None)],
                ..volume_request()
            },
            "tmpfs run: \"run\" must be an absolute path",
        ),
        (
            CreateContainer {
                tmpfs: vec![tmpfs("/run", Some(0), None)],
                ..volume_request()
            },
            "tmpfs /run: size must be more than 0",
        ),
        (
            CreateContainer {
                tmpfs: vec![tmpfs("/run", None, Some(0o17777))],
                ..volume_request()
            },
            "tmpfs /run: mode 17777 is not a permission mode",
        ),
        (
            CreateContainer {
                named_volumes: vec![named("_bad", "/data")],
                ..volume_request()
            },
            "volume _bad:/data: \"_bad\" is not a volume name",
        ),
        (
            CreateContainer {
                named_volumes: vec![named("v", "/")],
                ..volume_request()
            },
            "volume v:/: the root directory cannot be a mount point",
        ),
        (
            CreateContainer {
                named_volumes: vec![named("v", "/data")],
                tmpfs: vec![tmpfs("/data/", None, None)],
                ..volume_request()
            },
            "mounts: two mounts target /data",
        ),
        (
            CreateContainer {
                user: Some("a b".into()),
                ..volume_request()
            },
            "user: \"a b\" is not a user",
        ),
        (
            CreateContainer {
                hostname: Some("-x".into()),
                ..volume_request()
            },
            "hostname: \"-x\" is not a hostname",
        ),
        (
            CreateContainer {
                resources: Resources {
                    memory_bytes: Some(4 << 20),
                    ..Resources::default()
                },
                ..volume_request()
            },
            "memory: 4MiB is below the minimum of 6MiB",
        ),
    ];
    run(async {
        let (mgr, net) = agent(&host).await;
        for (req, want) in cases {
            let err = mgr.create(req, false).await.map(|_| ()).expect_err(want);
            assert_eq!(err.code(), "invalid", "{err}");
            assert!(err.to_string().starts_with(want), "{err} (wanted {want})");
            assert_nothing_left(&host, &mgr, &net, want);
        }
        assert!(
            mgr.volumes().is_empty(),
            "no volume made for a refused create"
        );
    });
}

// Secrets and configs of a service replica (`containers::files`).

use super::files::ContainerFiles;
use hoist_proto::files::{FileContent, FileKind, FileVersion, OnUpdate, ResolvedRef};
use std::os::unix::fs::MetadataExt;

fn secret_value(version: u64) -> String {
    format!("s3cret-value-{version}")
}

fn content(kind: FileKind, name: &str, version: u64, data: String) -> FileContent {
    FileContent {
        kind,
        name: name.into(),
        version,
        data: data.into_bytes(),
    }
}

fn fv(kind: FileKind, name: &str, version: u64) -> FileVersion {
    FileVersion {
        kind,
        name: name.into(),
        version,
    }
}

/// Secret `db-pass` at `/run/secrets/db-pass` (0400, owner 1000:1000, SIGHUP on a new version)
/// and config `app.conf` at `/etc/app.conf`, at versions 1.
fn replica_files() -> ContainerFiles {
    let r = |kind, source: &str, target: &str, mode, uid, on_update| ResolvedRef {
        kind,
        source: source.into(),
        target: target.into(),
        mode,
        uid,
        gid: uid,
        on_update,
    };
    ContainerFiles {
        refs: vec![
            r(
                FileKind::Secret,
                "db-pass",
                "/run/secrets/db-pass",
                0o400,
                1000,
                OnUpdate::Signal(libc::SIGHUP),
            ),
            r(
                FileKind::Config,
                "app.conf",
                "/etc/app.conf",
                0o444,
                0,
                OnUpdate::Replace,
            ),
        ],
        content: vec![
            content(FileKind::Secret, "db-pass", 1, secret_value(1)),
            content(FileKind::Config, "app.conf", 1, "workers = 4\n".into()),
        ],
    }
}

/// Every file below `dir` (links not followed) whose bytes hold `needle`, relative to `dir`.
fn files_holding(dir: &std::path::Path, needle: &str) -> Vec<String> {
    fn walk(root: &std::path::Path, dir: &std::path::Path, needle: &[u8], out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = e.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                walk(root, &path, needle, out);
            } else if meta.is_file() {
                let bytes = std::fs::read(&path).unwrap_or_default();
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    out.push(path.strip_prefix(root).unwrap().display().to_string());
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, needle.as_bytes(), &mut out);
    out.sort();
    out
}

/// Waits until `f` holds.
async fn until(what: &str, f: impl Fn() -> bool) {
    for _ in 0..5000 {
        if f() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    panic!("{what}");
}

#[test]
fn a_replicas_files_are_written_to_its_volatile_directory_only() {
    let host = FakeHost::new();
    run(async {
        let (mgr, net) = agent(&host).await;
        let (c, _) = mgr
            .create_with_files(request(NetworkMode::None), false, Some(replica_files()))
            .await
            .expect("create");
        let id = c.record.id.clone();
        let files = c.dir.files();
        assert_eq!(
            std::fs::read_link(files.join("..data")).unwrap(),
            std::path::Path::new("..v1")
        );
        assert_eq!(
            std::fs::read_to_string(files.join("..data/0")).unwrap(),
            secret_value(1)
        );
        let meta = std::fs::metadata(files.join("..v1/0")).unwrap();
        assert_eq!(
            (meta.mode() & 0o7777, meta.uid(), meta.gid()),
            (0o400, 1000, 1000)
        );
        assert_eq!(
            std::fs::read_to_string(files.join("..data/1")).unwrap(),
            "workers = 4\n"
        );
        // The secret's value is in that one file of the data dir, nowhere else: not in the
        // record, the runtime spec, files.json, nor anything on disk.
        let at = format!("run/{id}/files/..v1/0");
        assert_eq!(files_holding(&host.data_dir(), &secret_value(1)), [at]);
        // The runtime mounts the directory and links the targets, in the references' order.
        let spec: crate::runtime::RuntimeSpec =
            crate::runtime::read_json(&c.dir.spec()).unwrap().unwrap();
        let mount = spec.files.expect("files mounted");
        assert_eq!(mount.source, files);
        assert_eq!(mount.targets, ["/run/secrets/db-pass", "/etc/app.conf"]);
        assert_eq!(mount.owner, None);
        // The versions are known, in memory and in files.json.
        let versions = [
            fv(FileKind::Secret, "db-pass", 1),
            fv(FileKind::Config, "app.conf", 1),
        ];
        assert_eq!(mgr.file_versions(&id), versions);
        let state: super::files::FilesState = crate::runtime::read_json(&c.dir.files_state())
            .unwrap()
            .unwrap();
        assert_eq!(state.versions(), versions);
        // Removal takes them with the rest.
        mgr.remove(&id, true).await.expect("remove");
        assert_nothing_left(&host, &mgr, &net, "removed");
    });
}

#[test]
fn a_new_version_is_swapped_in_and_its_signal_sent() {
    let host = FakeHost::new();
    run(async {
        let (mgr, _net) = agent(&host).await;
        let (c, _) = mgr
            .create_with_files(request(NetworkMode::None), false, Some(replica_files()))
            .await
            .expect("create");
        let id = c.record.id.clone();
        let files = c.dir.files();
        let secret_inode = std::fs::metadata(files.join("..v1/0")).unwrap().ino();
        // A new config: replaced, no signal (its reference asks for none).
        let before = host.calls().len();
        let rotated = mgr
            .update_files(
                &id,
                vec![
                    content(FileKind::Secret, "db-pass", 1, secret_value(1)),
                    content(FileKind::Config, "app.conf", 2, "workers = 8\n".into()),
                ],
            )
            .await
            .expect("rotate");
        assert_eq!(rotated.changed, [fv(FileKind::Config, "app.conf", 2)]);
        assert!(rotated.signals.is_empty());
        assert!(host.ops_since(before).is_empty(), "no signal");
        assert_eq!(
            std::fs::read_to_string(files.join("..data/1")).unwrap(),
            "workers = 8\n"
        );
        assert_eq!(entries(&files), ["..data", "..v2"]);
        // The unchanged secret is the same file, not written again.
        assert_eq!(
            std::fs::metadata(files.join("..v2/0")).unwrap().ino(),
            secret_inode
        );
        assert_eq!(
            mgr.file_versions(&id),
            [
                fv(FileKind::Secret, "db-pass", 1),
                fv(FileKind::Config, "app.conf", 2)
            ]
        );
        // The same versions again, or older ones: nothing happens.
        let again = mgr
            .update_files(
                &id,
                vec![content(FileKind::Config, "app.conf", 1, "old".into())],
            )
            .await
            .expect("nothing to do");
        assert_eq!(again, super::files::Rotated::default());
        assert_eq!(entries(&files), ["..data", "..v2"]);
        // A new secret: replaced, then SIGHUP to the main process.
        let before = host.calls().len();
        let rotated = mgr
            .update_files(
                &id,
                vec![content(FileKind::Secret, "db-pass", 2, secret_value(2))],
            )
            .await
            .expect("rotate");
        assert_eq!(rotated.signals, [libc::SIGHUP]);
        assert_eq!(
            std::fs::read_to_string(files.join("..data/0")).unwrap(),
            secret_value(2)
        );
        let kill = &host.calls()[before];
        assert_eq!(
            (kill.op, kill.subject.as_str()),
            ("supervisor kill", format!("{id} {}", libc::SIGHUP).as_str())
        );
        assert_eq!(
            files_holding(&host.data_dir(), &secret_value(1)),
            Vec::<String>::new()
        );
        // The fake's container ends on any signal: an exited container's files go at once.
        c.wait_exit().await;
        until("the files of the exited container go", || {
            !files.exists() && !c.dir.files_state().exists()
        })
        .await;
        assert!(mgr.file_versions(&id).is_empty());
        assert_eq!(
            files_holding(&host.data_dir(), "s3cret-value"),
            Vec::<String>::new()
        );
        let e = mgr
            .update_files(
                &id,
                vec![content(FileKind::Secret, "db-pass", 3, secret_value(3))],
            )
            .await
            .expect_err("exited");
        assert_eq!(e.code(), "conflict");
    });
}

#[test]
fn a_restarted_agent_knows_the_versions_its_containers_have() {
    let host = FakeHost::new();
    let (id, first_state) = run(async {
        let (mgr, _net) = agent(&host).await;
        let (c, _) = mgr
            .create_with_files(request(NetworkMode::None), false, Some(replica_files()))
            .await
            .expect("create");
        let first = std::fs::read(c.dir.files_state()).unwrap();
        mgr.update_files(
            &c.record.id,
            vec![content(
                FileKind::Config,
                "app.conf",
                2,
                "workers = 8\n".into(),
            )],
        )
        .await
        .expect("rotate");
        (c.record.id.clone(), first)
    });
    let dir = run(async {
        let (mgr, _net) = agent(&host).await;
        assert_eq!(
            mgr.file_versions(&id),
            [
                fv(FileKind::Secret, "db-pass", 1),
                fv(FileKind::Config, "app.conf", 2)
            ]
        );
        // And goes on rotating from there.
        let rotated = mgr
            .update_files(
                &id,
                vec![content(
                    FileKind::Config,
                    "app.conf",
                    3,
                    "workers = 9\n".into(),
                )],
            )
            .await
            .expect("rotate");
        assert_eq!(rotated.changed, [fv(FileKind::Config, "app.conf", 3)]);
        let c = mgr.get(&id).unwrap();
        assert_eq!(entries(&c.dir.files()), ["..data", "..v3"]);
        c.dir.clone()
    });
    // An agent killed between a rename and the state's write: files.json lags the files.
    std::fs::write(dir.files_state(), first_state).unwrap();
    run(async {
        let (mgr, _net) = agent(&host).await;
        assert_eq!(
            mgr.file_versions(&id),
            [
                fv(FileKind::Secret, "db-pass", 0),
                fv(FileKind::Config, "app.conf", 0)
            ],
            "unknown: fetched again"
        );
        let rotated = mgr
            .update_files(
                &id,
                vec![
                    content(FileKind::Secret, "db-pass", 1, secret_value(1)),
                    content(FileKind::Config, "app.conf", 3, "workers = 9\n".into()),
                ],
            )
            .await
            .expect("rotate");
        assert_eq!(rotated.changed.len(), 2);
        assert_eq!(entries(&dir.files()), ["..data", "..v4"]);
        assert_eq!(
            std::fs::read_to_string(dir.files().join("..data/1")).unwrap(),
            "workers = 9\n"
        );
    });
}

#[test]
fn files_a_replica_cannot_have_are_refused_and_leave_nothing() {
    let host = FakeHost::new();
    run(async {
        let (mgr, net) = agent(&host).await;
        // A target where a mount goes.
        let req = CreateContainer {
            tmpfs: vec![hoist_proto::TmpfsMount {
                target: "/etc/app.conf".into(),
                size_bytes: None,
                mode: None,
                read_only: false,
            }],
            ..request(NetworkMode::None)
        };
        let err = mgr
            .create_with_files(req, false, Some(replica_files()))
            .await
            .map(|_| ())
            .expect_err("clash");
        assert_eq!(err.code(), "invalid");
        assert!(
            err.to_string()
                .starts_with("config \"app.conf\": target /etc/app.conf"),
            "{err}"
        );
        assert_nothing_left(&host, &mgr, &net, "a clash");
        // No content for a reference.
        let mut missing = replica_files();
        missing.content.pop();
        let err = mgr
            .create_with_files(request(NetworkMode::None), false, Some(missing))
            .await
            .map(|_| ())
            .expect_err("no content");
        assert!(err.to_string().contains("app.conf"), "{err}");
        assert_nothing_left(&host, &mgr, &net, "no content");
        // A start that fails after the files were written takes them away.
        host.fail_op("supervisor start");
        mgr.create_with_files(request(NetworkMode::None), false, Some(replica_files()))
            .await
            .map(|_| ())
            .expect_err("start fails");
        assert_nothing_left(&host, &mgr, &net, "a failed start");
        assert_eq!(
            files_holding(&host.data_dir(), "s3cret-value"),
            Vec::<String>::new()
        );
    });
    // A node whose volatile directory is not a tmpfs keeps no secret (configs it may).
    let host = FakeHost::new();
    run(async {
        let network = host.network().await;
        let config = crate::config::AgentConfig {
            volatile_on_tmpfs: false,
            ..host.config()
        };
        let mgr = Manager::new(config, host.deps(network.clone()));
        mgr.restore().await.expect("restore");
        let err = mgr
            .create_with_files(request(NetworkMode::None), false, Some(replica_files()))
            .await
            .map(|_| ())
            .expect_err("no tmpfs");
        assert_eq!(err.code(), "conflict");
        assert!(err.to_string().contains("not a tmpfs"), "{err}");
        assert_nothing_left(&host, &mgr, &network, "no tmpfs");
        let mut configs = replica_files();
        configs.refs.remove(0);
        mgr.create_with_files(request(NetworkMode::None), false, Some(configs))
            .await
            .expect("configs only");
    });
}

#[test]
fn a_user_namespaced_replicas_files_belong_to_its_ids() {
    if !nix::unistd::getuid().is_root() {
        // Giving files away takes root.
        return;
    }
    let host = FakeHost::new();
    run(async {
        let (mgr, _net) = agent(&host).await;
        let req = CreateContainer {
            userns: true,
            ..request(NetworkMode::None)
        };
        let (c, _) = mgr
            .create_with_files(req, false, Some(replica_files()))
            .await
            .expect("create");
        let range = host.config().userns_range;
        let meta = std::fs::metadata(c.dir.files().join("..v1/0")).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid()),
            (range.first + 1000, range.first + 1000)
        );
        let meta = std::fs::metadata(c.dir.files().join("..v1/1")).unwrap();
        assert_eq!(meta.uid(), range.first);
        let spec: crate::runtime::RuntimeSpec =
            crate::runtime::read_json(&c.dir.spec()).unwrap().unwrap();
        assert_eq!(spec.files.unwrap().owner, Some(range.first));
        // An owner outside the range is refused.
        let mut far = replica_files();
        far.refs[0].uid = range.count;
        let req = CreateContainer {
            userns: true,
            name: Some("web2".into()),
            ..request(NetworkMode::None)
        };
        let err = mgr
            .create_with_files(req, false, Some(far))
            .await
            .map(|_| ())
            .expect_err("outside");
        assert!(
            err.to_string()
                .starts_with("secret \"db-pass\": owner 65536:1000"),
            "{err}"
        );
    });
}
