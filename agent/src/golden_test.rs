//! The golden files of the agent's own records (`proto/golden/vN/agent-*.json`): what it keeps in
//! its data dir and what its supervisors write, as 0.1.0 wrote them (captured from a running 0.1.0
//! agent, `proto/golden/v0/generator/capture-agent.sh`) and as this build writes them. Every
//! version this build reads loads to the same values; the rules are `hoist_proto::format::golden`'s.
//!
//! Each record carries its own version (`version` in the JSON; 0.1.0's `node.json` had none and
//! reads as 0): JSON with named fields, so a field added with a default is read from older files.

use crate::containers::record::ContainerRecord;
use crate::image::index::Index;
use crate::network::state;
use crate::runtime::{read_json, write_json_atomic, Started};
use crate::worker::identity;
use hoist_proto::format::golden::{assert_none_missing, dir, writing};
use hoist_proto::format::{CURRENT, OLDEST};
use hoist_proto::{ExitInfo, NetworkMode};
use std::path::{Path, PathBuf};

/// The file `name` of `format` copied to `to` (so loaders find it by their own file name), or
/// noted as missing.
fn fetch(format: u32, name: &str, to: &Path, missing: &mut Vec<PathBuf>) -> bool {
    let from = dir(format).join(format!("agent-{name}.json"));
    if !from.exists() {
        missing.push(from);
        return false;
    }
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(&from, to).unwrap();
    true
}

/// Writes what this build writes for a record of the current format, if it is missing.
fn write_current(name: &str, written: &Path) {
    let path = dir(CURRENT).join(format!("agent-{name}.json"));
    if writing() && !path.exists() {
        hoist_proto::format::golden::write_new(&path, &std::fs::read(written).unwrap());
    }
}

/// A variant of the container record, `agent-container-record-NAME.json`, the first one this
/// build's own (0.1.0's record with `change` applied): read, `check`ed (and its version and
/// name), and written back to the same bytes.
fn record_variant(
    format: u32,
    t: &Path,
    name: &str,
    change: impl FnOnce(&mut ContainerRecord),
    missing: &mut Vec<PathBuf>,
    check: impl FnOnce(&ContainerRecord),
) {
    let path = t.join(name).join("container.json");
    let name = format!("container-record-{name}");
    if !dir(format).join(format!("agent-{name}.json")).exists() && writing() {
        let mut r: ContainerRecord = read_json(&dir(format).join("agent-container-record.json"))
            .unwrap()
            .unwrap();
        change(&mut r);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        write_json_atomic(&path, &r).unwrap();
        write_current(&name, &path);
    }
    if fetch(format, &name, &path, missing) {
        let r: ContainerRecord = read_json(&path).unwrap().unwrap();
        assert_eq!((r.version, r.name.as_str()), (1, "web"));
        check(&r);
        write_json_atomic(&path, &r).unwrap();
        write_current(&name, &path);
    }
}

#[test]
fn every_agent_record_of_every_format_read_loads() {
    let mut missing = Vec::new();
    for format in OLDEST..=CURRENT {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();

        let rec_path = t.join("container.json");
        if fetch(format, "container-record", &rec_path, &mut missing) {
            let r: ContainerRecord = read_json(&rec_path).unwrap().unwrap();
            assert_eq!((r.version, r.name.as_str()), (1, "web"));
            assert_eq!(r.command, ["sleep", "1000"]);
            assert_eq!(r.stop_signal, 15);
            assert_eq!(r.spec.ports[0].host_port, 18080);
            assert_eq!(r.spec.resources.memory_bytes, Some(64 << 20));
            assert_eq!(r.spec.labels["team"], "blue");
            assert_eq!(
                (r.spec.stop_signal.as_deref(), r.spec.stop_grace_ms),
                (None, None)
            );
            assert!(r.anonymous_volumes.is_empty() && r.healthcheck.is_none() && r.shell.is_none());
            write_json_atomic(&rec_path, &r).unwrap();
            let written = std::fs::read_to_string(&rec_path).unwrap();
            for added in [
                "anonymous_volumes",
                "healthcheck",
                "shell",
                "ulimits",
                "tmpfs",
                "named_volumes",
            ] {
                assert!(!written.contains(added), "{added} is left out when empty");
            }
            write_current("container-record", &rec_path);
        }

        let net = t.join("network");
        if fetch(format, "network-state", &state::path(&net), &mut missing) {
            let s = state::load(&net).unwrap();
            let (_, a) = s.attachments.iter().next().unwrap();
            assert_eq!(a.mode, NetworkMode::Bridge);
            assert_eq!(
                a.attachment.ip.map(|ip| ip.to_string()).as_deref(),
                Some("10.97.0.2")
            );
            assert_eq!(a.ports[0].container_port, 80);
            state::write_atomic(&net, &state::encode(&s)).unwrap();
            write_current("network-state", &state::path(&net));
        }

        let index_path = t.join("index.json");
        if fetch(format, "image-index", &index_path, &mut missing) {
            let i = Index::load(&index_path).unwrap();
            assert!(i.references.contains_key("busybox:latest"), "{i:?}");
            assert_eq!(i.snapshots.len(), 1);
            i.save(&index_path).unwrap();
            write_current("image-index", &index_path);
        }

        let node_dir = t.join("node");
        if fetch(
            format,
            "node-identity",
            &identity::identity_path(&node_dir),
            &mut missing,
        ) {
            let id = identity::load(&node_dir).unwrap();
            assert_eq!(id.version, format.min(identity::IDENTITY_VERSION));
            assert!(id.node_id.is_some() && id.cluster_id.is_some());
            assert_eq!(id.term_seen, 1);
            identity::save(&node_dir, &id).unwrap();
            write_current("node-identity", &identity::identity_path(&node_dir));
        }

        let started = t.join("started.json");
        if fetch(format, "started", &started, &mut missing) {
            let s: Started = read_json(&started).unwrap().unwrap();
            assert!(s.pid > 0 && s.shim_pid > 0 && !s.started_at.is_empty());
            write_json_atomic(&started, &s).unwrap();
            write_current("started", &started);
        }

        let exit = t.join("exit.json");
        if fetch(format, "exit", &exit, &mut missing) {
            let e: ExitInfo = read_json(&exit).unwrap().unwrap();
            assert_eq!((e.code, e.signal, e.oom_killed), (137, Some(9), false));
            write_json_atomic(&exit, &e).unwrap();
            write_current("exit", &exit);
        }

        if format >= 2 {
            // A container record with the fields added after 0.3.0 (anonymous volumes, the
            // image's check and shell): the first one is this build's own.
            let volumes = |r: &mut ContainerRecord| {
                r.anonymous_volumes = vec![crate::containers::volumes::AnonymousVolume {
                    id: "5f".repeat(32),
                    target: "/data".into(),
                }];
                r.healthcheck = Some(hoist_proto::ImageHealthcheck {
                    test: vec!["CMD-SHELL".into(), "test -e /data/ready".into()],
                    interval_ns: 2_000_000_000,
                    retries: 2,
                    ..Default::default()
                });
                r.shell = Some(vec!["/bin/ash".into(), "-c".into()]);
            };
            record_variant(format, t, "volumes", volumes, &mut missing, |r| {
                assert_eq!(r.anonymous_volumes[0].target, "/data");
                assert_eq!(r.anonymous_volumes[0].id.len(), 64);
                let h = r.healthcheck.as_ref().unwrap();
                assert_eq!(
                    (h.test.len(), h.interval_ns, h.retries),
                    (2, 2_000_000_000, 2)
                );
                assert_eq!(r.shell.as_deref().unwrap()[0], "/bin/ash");
            });

            // A container record using the complete spec's create fields (ulimits, tmpfs, named
            // volumes): the first one is this build's own.
            let spec_fields = |r: &mut ContainerRecord| {
                r.spec.ulimits.insert(
                    "nofile".into(),
                    hoist_proto::Ulimit {
                        soft: 1024,
                        hard: 4096,
                    },
                );
                r.spec.tmpfs = vec![hoist_proto::TmpfsMount {
                    target: "/run".into(),
                    size_bytes: Some(64 << 20),
                    mode: Some(0o1777),
                    read_only: false,
                }];
                r.spec.named_volumes = vec![hoist_proto::NamedVolumeMount {
                    name: "db-data".into(),
                    target: "/var/lib/db".into(),
                    read_only: true,
                }];
            };
            record_variant(format, t, "spec-fields", spec_fields, &mut missing, |r| {
                assert_eq!(
                    (r.spec.ulimits["nofile"].soft, r.spec.ulimits["nofile"].hard),
                    (1024, 4096)
                );
                assert_eq!(
                    (
                        r.spec.tmpfs[0].target.as_str(),
                        r.spec.tmpfs[0].size_bytes,
                        r.spec.tmpfs[0].mode
                    ),
                    ("/run", Some(64 << 20), Some(0o1777))
                );
                let v = &r.spec.named_volumes[0];
                assert_eq!(
                    (v.name.as_str(), v.target.as_str(), v.read_only),
                    ("db-data", "/var/lib/db", true)
                );
            });

            // Container hardening's create fields (capabilities, no_new_privileges, a user
            // namespace), and the record of a user-namespaced container with its host id range.
            let hardening = |r: &mut ContainerRecord| {
                r.spec.cap_add = vec!["NET_ADMIN".into()];
                r.spec.cap_drop = vec!["ALL".into()];
                r.spec.no_new_privileges = Some(false);
                r.spec.userns = true;
            };
            record_variant(format, t, "hardening", hardening, &mut missing, |r| {
                assert_eq!(
                    (r.spec.cap_add.len(), r.spec.cap_add[0].as_str()),
                    (1, "NET_ADMIN")
                );
                assert_eq!(r.spec.cap_drop, ["ALL"]);
                assert_eq!(
                    (r.spec.no_new_privileges, r.spec.userns),
                    (Some(false), true)
                );
            });
            let range = crate::runtime::userns::IdRange::DEFAULT;
            let userns = |r: &mut ContainerRecord| {
                r.spec.userns = true;
                r.userns = Some(range);
            };
            record_variant(format, t, "userns", userns, &mut missing, |r| {
                assert!(r.spec.userns);
                assert_eq!(r.userns, Some(range));
            });

            // The overlay's record came with format 2; the first one is this build's own.
            let data = t.join("ov");
            let path = crate::overlay::state::path(&data);
            if !dir(format).join("agent-overlay-state.json").exists() && writing() {
                let s = crate::overlay::state::OverlayState {
                    version: crate::overlay::state::STATE_VERSION,
                    cluster_id: "0123456789abcdef".into(),
                    subnet: "10.200.3.0/24".into(),
                    cluster_cidr: "10.200.0.0/16".into(),
                };
                crate::overlay::state::save(&data, &s).unwrap();
                write_current("overlay-state", &path);
            }
            if fetch(format, "overlay-state", &path, &mut missing) {
                let s = crate::overlay::state::load(&data).unwrap().unwrap();
                assert_eq!(
                    (s.subnet.as_str(), s.cluster_cidr.as_str()),
                    ("10.200.3.0/24", "10.200.0.0/16")
                );
                crate::overlay::state::save(&data, &s).unwrap();
                write_current("overlay-state", &path);
            }
        }
    }
    // Written just now (HOIST_WRITE_GOLDEN) is not missing.
    missing.retain(|p| !p.exists());
    assert_none_missing(&missing);
}
