//! The golden files of proto's own types, and the add-only rule for all of them.

use super::golden::{assert_none_missing, check, root};
use super::{samples, CURRENT, OLDEST};
use crate::cluster::ServiceChange;
use crate::node::{Heartbeat, HeartbeatAck, OverlayReport};
use crate::raft::Response;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

#[test]
fn every_golden_file_of_every_format_read_decodes() {
    let mut missing = Vec::new();
    for format in OLDEST..=CURRENT {
        let m = &mut missing;
        check(format, "service-spec", &samples::spec_full(format), m);
        let minimal = crate::service::ServiceSpec::new("web", "busybox");
        check(format, "service-spec-minimal", &minimal, m);
        check(format, "node", &samples::node(format), m);
        check(format, "task", &samples::task(), m);
        check(format, "rollout", &samples::rollout(), m);
        for (name, c) in samples::commands(format) {
            check(format, &format!("request-{name}"), &samples::request(c), m);
        }
        for (name, r) in samples::responses(format) {
            check(format, &format!("response-{name}"), &r, m);
        }
        check(format, "stall-notice", &samples::stall_notice(), m);
        check(
            format,
            "register-request",
            &samples::register_request(format),
            m,
        );
        check(
            format,
            "register-response",
            &samples::register_response(),
            m,
        );
        check(format, "heartbeat", &samples::heartbeat(), m);
        check(format, "heartbeat-ack", &samples::heartbeat_ack(), m);
        check(format, "assignments", &samples::assignments(format), m);
        check(format, "status-report", &samples::status_report(), m);
        check(format, "status-ack", &samples::status_ack(), m);
        if format >= 2 {
            check(
                format,
                "service-endpoints",
                &samples::service_endpoints(),
                m,
            );
            check(format, "overlay-report", &samples::overlay_report(), m);
            // The routing mesh's fields, in files of their own (format 2's first files are fixed).
            check(format, "service-spec-mesh", &samples::spec_mesh(), m);
            check(format, "task-draining", &samples::task_draining(), m);
            // The root an agent's certificate should be under (after a rotation).
            let ack = HeartbeatAck {
                ca_digest: "4d".repeat(32),
                ..samples::heartbeat_ack()
            };
            check(format, "heartbeat-ack-ca-digest", &ack, m);
            // The heartbeat pace the leader sets as the cluster grows.
            let ack = HeartbeatAck {
                heartbeat_interval_ms: 4_000,
                ..samples::heartbeat_ack()
            };
            check(format, "heartbeat-ack-pace", &ack, m);
            let hb = Heartbeat {
                endpoints_applied: 61,
                ..samples::heartbeat()
            };
            check(format, "heartbeat-applied", &hb, m);
            check(
                format,
                "service-endpoints-vip",
                &samples::service_endpoints_vip(),
                m,
            );
            let report = OverlayReport {
                mesh_error: Some("nft: Error: Could not process rule".into()),
                ..samples::overlay_report()
            };
            check(format, "overlay-report-mesh-error", &report, m);
            check(format, "volume-report", &samples::volume_report(), m);
            // Container hardening's fields, in a file of their own.
            let hardened = samples::spec_hardened();
            check(format, "service-spec-hardened", &hardened, m);
            let mut service = samples::service(samples::spec_full(format));
            service.vip = Some("10.201.0.1".into());
            let change = Response::Service(ServiceChange {
                service,
                changed: true,
            });
            check(format, "response-service-vip", &change, m);
            // Secrets and configs: references, assignments, an agent's fetch.
            check(format, "service-spec-files", &samples::spec_files(), m);
            check(
                format,
                "assignments-files",
                &samples::assignments_files(),
                m,
            );
            check(format, "task-files", &samples::task_files(), m);
            // The overlay sent only when it changed since the index the agent holds.
            let [full, unchanged, changed] = samples::assignments_overlay_index();
            check(format, "assignments-overlay-index", &full, m);
            check(format, "assignments-overlay-unchanged", &unchanged, m);
            check(format, "assignments-overlay-changed", &changed, m);
            // A spec the poll holds left out.
            let held = samples::assignments_spec_held();
            check(format, "assignments-spec-held", &held, m);
            // Tasks the poll holds named only.
            let changed = samples::assignments_changed();
            check(format, "assignments-changed", &changed, m);
            // Endpoints: the services changed since the index the agent holds, the others named.
            let changed = samples::service_endpoints_changed();
            check(format, "service-endpoints-changed", &changed, m);
            // Endpoints: a service's changed replicas, the removed ones named, and the count.
            let changed = samples::service_endpoints_replicas_changed();
            check(format, "service-endpoints-replicas-changed", &changed, m);
            check(
                format,
                "register-response-credential",
                &samples::register_response_credential(),
                m,
            );
            // The cluster PKI: a node's key hash, CSRs, certificates and their renewal.
            check(format, "node-cert-key", &samples::node_cert_key(), m);
            check(
                format,
                "register-request-csr",
                &samples::register_request_csr(),
                m,
            );
            check(
                format,
                "register-response-certificate",
                &samples::register_response_certificate(),
                m,
            );
            check(
                format,
                "certificate-request",
                &samples::certificate_request(),
                m,
            );
            check(
                format,
                "certificate-response",
                &samples::certificate_response(),
                m,
            );
            peer_link_frames(format, m);
        }
    }
    assert_none_missing(&missing);
}

/// The member link's framing (`crate::peer_link`): a hello, a request and a refusal, whole
/// frames as they travel. The framing is named by its ALPN protocol, not by the format; its files
/// live with the format that introduced it.
fn peer_link_frames(format: u32, m: &mut Vec<std::path::PathBuf>) {
    use crate::peer_link::{self as link, Hello, Kind, Status};
    let hello = Hello {
        member: 2,
        version: "0.3.0".into(),
        format: 2,
        oldest_format: 0,
    };
    super::golden::check_bytes(
        format,
        "peer-hello.bin",
        &hello,
        |h| link::encode_request(Kind::Hello, 2, &h.to_bytes()),
        |b| {
            let (kind, f, body) = link::decode_request(&b[4..]).map_err(|e| e.to_string())?;
            assert_eq!((kind, f), (Ok(Kind::Hello), 2));
            Hello::from_bytes(body).map_err(|e| e.to_string())
        },
        m,
    );
    let body = b"protobuf AppendEntries".to_vec();
    super::golden::check_bytes(
        format,
        "peer-request-append.bin",
        &body,
        |b| link::encode_request(Kind::Append, 2, b),
        |b| {
            let (kind, f, body) = link::decode_request(&b[4..]).map_err(|e| e.to_string())?;
            assert_eq!((kind, f), (Ok(Kind::Append), 2));
            Ok(body.to_vec())
        },
        m,
    );
    let reason = b"member 4 is not a member of this cluster (removed)".to_vec();
    super::golden::check_bytes(
        format,
        "peer-answer-refused.bin",
        &reason,
        |b| link::encode_answer(Status::Refused, 2, b),
        |b| {
            let (status, f, body) = link::decode_answer(&b[4..]).map_err(|e| e.to_string())?;
            assert_eq!((status, f), (Status::Refused, 2));
            Ok(body.to_vec())
        },
        m,
    );
}

/// Every file under `golden/vN/` (the generators' sources aside).
fn golden_files() -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root()).expect("proto/golden") {
        let entry = entry.expect("golden dir entry");
        let name = entry.file_name().to_string_lossy().to_string();
        if !(name.starts_with('v') && entry.path().is_dir()) {
            continue;
        }
        for f in std::fs::read_dir(entry.path()).expect("golden version dir") {
            let f = f.expect("golden file");
            if f.path().is_file() {
                out.push(format!("{name}/{}", f.file_name().to_string_lossy()));
            }
        }
    }
    out.sort();
    out
}

fn manifest(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (hash, file) = l.split_once("  ").expect("`<sha256>  <file>` lines");
            (file.to_string(), hash.to_string())
        })
        .collect()
}

/// Runs git in the repository; `None` outside one (a source tarball).
fn git(args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(root())
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).to_string())
}

#[test]
fn golden_files_are_add_only() {
    let text = std::fs::read_to_string(root().join("SHA256SUMS")).expect("proto/golden/SHA256SUMS");
    let listed = manifest(&text);
    for file in golden_files() {
        let bytes = std::fs::read(root().join(&file)).expect("read golden file");
        let hash = hex::encode(Sha256::digest(&bytes));
        match listed.get(&file) {
            None => panic!("proto/golden/{file} is not in proto/golden/SHA256SUMS"),
            Some(h) => assert_eq!(
                *h, hash,
                "proto/golden/{file} changed: golden files are add-only (make a new one)"
            ),
        }
    }
    let present = golden_files();
    for file in listed.keys() {
        assert!(
            present.contains(file),
            "proto/golden/{file} was deleted: golden files are add-only"
        );
    }
    // The manifest itself only grows, and no commit ever changed or removed a golden file.
    let Some(top) = git(&["rev-parse", "--show-toplevel"]) else {
        eprintln!("not a git checkout: the manifest check alone applies");
        return;
    };
    let top = top.trim();
    if let Some(committed) = git(&["show", "HEAD:proto/golden/SHA256SUMS"]) {
        for (file, hash) in manifest(&committed) {
            assert_eq!(
                listed.get(&file),
                Some(&hash),
                "proto/golden/SHA256SUMS lost or changed the line of {file} since HEAD"
            );
        }
    }
    let changed = git(&[
        "log",
        "--format=%h",
        "--name-status",
        "--diff-filter=MDR",
        "--",
        ":(glob)proto/golden/v*/*",
    ])
    .unwrap_or_default();
    assert!(
        changed.trim().is_empty(),
        "commits changed or removed golden files in {top}:\n{changed}"
    );
}
