//! What containers and services take from their image's config, on the lab: a `VOLUME` gets an
//! anonymous volume holding the image's content there, which lives with its container (across an
//! agent restart) and goes with `hoist rm`, and which a bind mount at the same path replaces; a
//! `HEALTHCHECK` is the default check of a service's replicas, reported in `hoist service ps`,
//! and a spec's check wins over it.
//!
//! The images are docker-archives made here (`hoist image load`): the probe busybox as the first
//! layer, a second layer with `/data`, and a config with Docker's `Volumes` and `Healthcheck`.

use anyhow::{ensure, Context, Result};
use hoist_tests::cluster_lab::ClusterLab;
use hoist_tests::controller_lab::serial;
use hoist_tests::{probe_image_tar, Host};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn sha256(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The second layer: `/data` (0750, 1234:1234) with `seed` (0640, 1234:1234) and `link -> seed`.
fn data_layer() -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let mut entry =
        |path: &str, kind: tar::EntryType, mode: u32, body: &[u8], link: Option<&str>| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_uid(1234);
            h.set_gid(1234);
            h.set_mtime(1_700_000_000);
            h.set_size(body.len() as u64);
            if let Some(l) = link {
                h.set_link_name(l)?;
            }
            b.append_data(&mut h, path, body)
        };
    entry("data/", tar::EntryType::Directory, 0o750, b"", None)?;
    entry(
        "data/seed",
        tar::EntryType::Regular,
        0o640,
        b"seeded\n",
        None,
    )?;
    entry(
        "data/link",
        tar::EntryType::Symlink,
        0o777,
        b"",
        Some("seed"),
    )?;
    Ok(b.into_inner()?)
}

/// A docker-archive of image `tag`: the probe busybox and [`data_layer`], with `config` merged
/// into Docker's `config` object.
fn image_archive(dir: &Path, tag: &str, config: Value) -> Result<PathBuf> {
    let base = std::fs::read(probe_image_tar()).context("read the probe image")?;
    let data = data_layer()?;
    let arch = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "amd64",
    };
    let mut cfg = json!({
        "Cmd": ["sh"],
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    });
    if let (Some(c), Value::Object(extra)) = (cfg.as_object_mut(), config) {
        c.extend(extra);
    }
    let image = json!({
        "architecture": arch,
        "os": "linux",
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": [
            format!("sha256:{}", sha256(&base)),
            format!("sha256:{}", sha256(&data)),
        ]},
    });
    let config_bytes = serde_json::to_vec(&image)?;
    let config_name = format!("{}.json", sha256(&config_bytes));
    let manifest = json!([{
        "Config": config_name,
        "RepoTags": [tag],
        "Layers": ["base/layer.tar", "data/layer.tar"],
    }]);
    let path = dir.join(format!("{}.tar", tag.replace([':', '/'], "_")));
    let mut b = tar::Builder::new(std::fs::File::create(&path)?);
    let mut file = |name: &str, body: &[u8]| -> std::io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(body.len() as u64);
        b.append_data(&mut h, name, body)
    };
    file("manifest.json", &serde_json::to_vec(&manifest)?)?;
    file(&config_name, &config_bytes)?;
    file("base/layer.tar", &base)?;
    file("data/layer.tar", &data)?;
    b.into_inner()?;
    Ok(path)
}

fn load(h: &Host, archive: &Path) -> Result<()> {
    h.hoist_ok(&["image", "load", "-i", archive.to_str().unwrap_or_default()])
        .map(drop)
}

fn volume_dirs(h: &Host) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(h.data_dir().join("volumes"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn an_image_volume_starts_with_the_image_content_and_goes_with_the_container() -> Result<()> {
    let mut h = Host::start("vol")?;
    let dir = tempfile::tempdir()?;
    load(
        &h,
        &image_archive(dir.path(), "vol:1", json!({"Volumes": {"/data": {}}}))?,
    )?;

    // The container sees the image's files in its volume, with their owners, modes and links,
    // and writes one of its own.
    let script = "cat /data/seed; stat -c '%u:%g %a' /data /data/seed; readlink /data/link; \
                  echo mine > /data/new; grep ' /data ' /proc/self/mountinfo | wc -l";
    let out = h.hoist_ok(&[
        "run",
        "--name",
        "v",
        "--network",
        "none",
        "vol:1",
        "sh",
        "-c",
        script,
    ])?;
    assert_eq!(
        out, "seeded\n1234:1234 750\n1234:1234 640\nseed\n1\n",
        "{out}"
    );
    let info = h.inspect("v")?;
    let mounts = info["mounts"].as_array().cloned().unwrap_or_default();
    assert_eq!(mounts.len(), 1, "{info}");
    let m = &mounts[0];
    assert_eq!(
        (m["type"].as_str(), m["destination"].as_str()),
        (Some("volume"), Some("/data"))
    );
    let id = m["name"].as_str().unwrap_or_default().to_string();
    let source = PathBuf::from(m["source"].as_str().unwrap_or_default());
    assert_eq!(source, h.data_dir().join("volumes").join(&id).join("_data"));
    assert_eq!(std::fs::read_to_string(source.join("new"))?, "mine\n");
    assert_eq!(std::fs::read_to_string(source.join("seed"))?, "seeded\n");
    assert_eq!(volume_dirs(&h), std::slice::from_ref(&id));

    // The volume lives as long as its container: across an agent restart, then gone with rm.
    h.kill_agent()?;
    h.start_agent()?;
    assert!(source.join("new").exists(), "kept across an agent restart");
    let cid = h.inspect("v")?["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    h.hoist_ok(&["rm", "v"])?;
    assert!(
        volume_dirs(&h).is_empty(),
        "rm removes the volume: {:?}",
        volume_dirs(&h)
    );
    let left = h.leftovers(&cid);
    assert!(left.is_empty(), "{left:#?}");

    // `--rm` removes it too.
    h.hoist_ok(&["run", "--rm", "--network", "none", "vol:1", "true"])?;
    assert!(volume_dirs(&h).is_empty(), "{:?}", volume_dirs(&h));

    // A bind mount at the same path wins: no volume, nothing copied into the host directory.
    let bound = tempfile::tempdir()?;
    std::fs::write(bound.path().join("from-host"), "host\n")?;
    let spec = format!("{}:/data", bound.path().display());
    let out = h.hoist_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &spec,
        "vol:1",
        "ls",
        "/data",
    ])?;
    assert_eq!(out, "from-host\n");
    assert!(volume_dirs(&h).is_empty(), "{:?}", volume_dirs(&h));
    let mut names: Vec<_> = std::fs::read_dir(bound.path())?
        .flatten()
        .map(|e| e.file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["from-host"]);
    Ok(())
}

/// The image `HEALTHCHECK` of a service's replicas: a failing one makes them unhealthy in
/// `hoist service ps`, a passing one healthy, and the spec's own check wins over the image's.
#[test]
fn a_service_without_a_check_uses_its_image_healthcheck() -> Result<()> {
    let _g = serial();
    let mut lab = ClusterLab::start(1, &["--node-grace", "3s", "--heartbeat-interval", "500ms"])?;
    lab.add_agent("a1", &[])?;
    let dir = tempfile::tempdir()?;
    let check = |test: Value| json!({"Healthcheck": {"Test": test, "Interval": 300_000_000u64, "Timeout": 2_000_000_000u64, "Retries": 1}});
    let host = &lab.agents[0].host;
    load(
        host,
        &image_archive(
            dir.path(),
            "hc-fail:1",
            check(json!(["CMD-SHELL", "exit 3"])),
        )?,
    )?;
    load(
        host,
        &image_archive(
            dir.path(),
            "hc-ok:1",
            check(json!(["CMD", "test", "-e", "/data/seed"])),
        )?,
    )?;
    load(
        host,
        &image_archive(dir.path(), "hc-none:1", check(json!(["NONE"])))?,
    )?;

    let service = |name: &str, image: &str| json!({"name": name, "image": image, "command": ["sleep", "1000"], "replicas": 1});
    for (name, image) in [
        ("sick", "hc-fail:1"),
        ("fine", "hc-ok:1"),
        ("plain", "hc-none:1"),
    ] {
        let (code, out, err) = lab.apply(&service(name, image), &["-d"])?;
        ensure!(code == 0, "apply {name}: {out} {err}");
    }
    let mut spec_wins = service("spec", "hc-fail:1");
    spec_wins["health_check"] =
        json!({"command": ["true"], "interval": "300ms", "timeout": "2s", "retries": 1});
    let (code, out, err) = lab.apply(&spec_wins, &["-d"])?;
    ensure!(code == 0, "apply spec: {out} {err}");

    let health = |name: &str| -> Result<Vec<String>> {
        let ps = lab.service_ps(name)?;
        Ok(ps["replicas"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter(|s| s["task"]["state"] == "running")
                    .map(|s| s["task"]["health"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default())
    };
    // Reported unhealthy with the probe's outcome (then the controller replaces the replica).
    let sick = lab.wait_until(
        "the image's failing check reported",
        Duration::from_secs(30),
        || {
            let (_, out, _) = lab.hoist(&["service", "ps", "sick"])?;
            Ok((out.contains("unhealthy").then(|| out.clone()), out))
        },
    )?;
    assert!(
        sick.contains("unhealthy: /bin/sh -c exit 3 exited with code 3"),
        "{sick}"
    );
    for (name, want) in [("fine", "healthy"), ("plain", "none"), ("spec", "healthy")] {
        lab.wait_until(&format!("{name} {want}"), Duration::from_secs(30), || {
            let h = health(name)?;
            Ok(((h == [want]).then_some(()), format!("{h:?}")))
        })?;
    }
    // Still so a few probes later (the healthy ones never flip).
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(health("fine")?, ["healthy"]);
    assert_eq!(health("spec")?, ["healthy"]);
    assert_eq!(health("plain")?, ["none"]);
    Ok(())
}
