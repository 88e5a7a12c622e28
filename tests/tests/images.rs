//! Images against real peers: Debian's `docker-registry` (anonymous, Basic auth, and behind a
//! bearer-token server), images built by `umoci` and copied by `skopeo`; Hoist pulls, runs,
//! pushes, saves and loads them, and skopeo checks what Hoist wrote. Also: a tampered blob is
//! rejected and a failed pull leaves nothing behind.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use anyhow::{bail, Result};
use hoist_tests::registry_lab::{OciLayout, Registry, RegistryAuthMode};
use hoist_tests::{bin, Host};
use serde_json::Value;

fn text(out: &Output) -> String {
    format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `hoist ARGS` with a private credentials dir and optional stdin.
fn hoist_with(h: &Host, config: &Path, args: &[&str], stdin: Option<&str>) -> Result<Output> {
    let mut child = Command::new(bin("hoist"))
        .args(args)
        .env("HOIST_AGENT", h.socket())
        .env("HOIST_CONFIG_DIR", config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes())?;
    }
    drop(child.stdin.take());
    Ok(child.wait_with_output()?)
}

fn hoist_with_ok(h: &Host, config: &Path, args: &[&str], stdin: Option<&str>) -> Result<String> {
    let out = hoist_with(h, config, args, stdin)?;
    if !out.status.success() {
        bail!(
            "hoist {} failed\n{}\nagent:\n{}",
            args.join(" "),
            text(&out),
            hoist_tests::tail(&h.agent_log(), 20)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn inspect(h: &Host, image: &str) -> Result<Value> {
    let v: Value = serde_json::from_str(&h.hoist_ok(&["image", "inspect", image])?)?;
    Ok(v[0].clone())
}

fn run_cat_hello(h: &Host, image: &str) -> Result<String> {
    h.hoist_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        image,
        "cat",
        "/hello.txt",
    ])
}

/// Pushes the umoci-built image to `repo:tag` with skopeo (gzip, or recompressed with zstd into a
/// second local layout first, so skopeo cannot reuse the gzip blobs the registry has).
fn skopeo_push(
    reg: &Registry,
    layout: &OciLayout,
    repo_tag: &str,
    zstd: bool,
    creds: Option<&str>,
) -> Result<()> {
    let dest = format!("docker://{}/{repo_tag}", reg.addr);
    let mut src = layout.source();
    if zstd {
        let z = format!("oci:{}:z", layout.path().join("zstd-layout").display());
        reg.skopeo(&[
            "copy",
            "--dest-compress-format",
            "zstd",
            "--dest-compress",
            &src,
            &z,
        ])?;
        src = z;
    }
    let mut args = vec!["copy", "--dest-tls-verify=false"];
    if let Some(c) = creds {
        args.extend(["--dest-creds", c]);
    }
    args.extend([src.as_str(), dest.as_str()]);
    reg.skopeo(&args).map(drop)
}

fn tmp_entries(h: &Host) -> Vec<String> {
    std::fs::read_dir(h.data_dir().join("images/tmp"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn pull_run_push_save_load_prune_with_an_anonymous_registry() -> Result<()> {
    let h = Host::start("img1")?;
    let reg = Registry::start(&h, 5000, RegistryAuthMode::Anonymous)?;
    let layout = OciLayout::build()?;
    skopeo_push(&reg, &layout, "test/busybox:v1", false, None)?;
    skopeo_push(&reg, &layout, "test/busybox:zstd", true, None)?;

    // Pull (gzip) and run.
    let src = format!("{}/test/busybox:v1", reg.addr);
    let out = h.hoist_ok(&["image", "pull", &src])?;
    assert!(out.contains("Digest: sha256:"), "{out}");
    assert_eq!(run_cat_hello(&h, &src)?, "hello-from-umoci\n");
    let ours = inspect(&h, &src)?;
    let theirs = reg.inspect("test/busybox:v1", None)?;
    assert_eq!(
        ours["manifest_digest"], theirs["Digest"],
        "same manifest digest as skopeo sees"
    );
    let layers: Vec<&str> = ours["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    let their_layers: Vec<&str> = theirs["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(layers, their_layers);
    assert_eq!(layers.len(), 2);

    // Pulling again downloads nothing.
    let again = h.hoist_ok(&["-o", "json", "image", "pull", &src])?;
    assert_eq!(again.matches("\"exists\"").count(), 2, "{again}");
    assert!(!again.contains("\"downloading\""), "{again}");

    // zstd layers (same content, different blobs): the snapshots are shared, the blobs fetched.
    let zsrc = format!("{}/test/busybox:zstd", reg.addr);
    h.hoist_ok(&["image", "pull", &zsrc])?;
    let z = inspect(&h, &zsrc)?;
    assert!(
        z["layers"][0]["media_type"]
            .as_str()
            .unwrap()
            .contains("zstd"),
        "{z}"
    );
    assert_eq!(z["diff_ids"], ours["diff_ids"]);
    assert_eq!(run_cat_hello(&h, &zsrc)?, "hello-from-umoci\n");

    // A Dockerfile may pin its base by digest (`FROM name@sha256:...`): pulled by digest, built on.
    let digest = ours["manifest_digest"].as_str().unwrap();
    let ctx = tempfile::tempdir()?;
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "FROM {}/test/busybox@{digest}\nRUN cp /hello.txt /pinned.txt\nCMD [\"cat\", \"/pinned.txt\"]\n",
            reg.addr
        ),
    )?;
    let built = h.hoist_ok(&["build", "-t", "pinned:1", ctx.path().to_str().unwrap()])?;
    assert!(built.contains("Successfully tagged pinned:1"), "{built}");
    assert_eq!(
        h.hoist_ok(&["run", "--rm", "--network", "none", "pinned:1"])?,
        "hello-from-umoci\n"
    );
    h.hoist_ok(&["image", "rm", "pinned:1"])?;
    let pinned = format!("{}/test/busybox@{digest}", reg.addr);

    // Push under another name: the layers are mounted from test/busybox, digests preserved.
    let dst = format!("{}/other/copy:v2", reg.addr);
    h.hoist_ok(&["image", "tag", &src, &dst])?;
    let pushed = h.hoist_ok(&["-o", "json", "image", "push", &dst])?;
    assert!(
        pushed.contains("\"mounted\""),
        "cross-repository mount used: {pushed}"
    );
    let copy = reg.inspect("other/copy:v2", None)?;
    assert_eq!(copy["Digest"], ours["manifest_digest"]);
    assert_eq!(copy["Layers"], theirs["Layers"]);
    // A pushed image pulls back as the same image.
    let back = format!("{}/other/copy:v2", reg.addr);
    h.hoist_ok(&["image", "rm", &back])?;
    h.hoist_ok(&["image", "pull", &back])?;
    assert_eq!(inspect(&h, &back)?["id"], ours["id"]);
    // Pushing again finds every blob there already.
    let again = h.hoist_ok(&["-o", "json", "image", "push", &dst])?;
    assert_eq!(again.matches("\"exists\"").count(), 3, "{again}");

    // history: umoci's two layers.
    let hist: Value =
        serde_json::from_str(&h.hoist_ok(&["-o", "json", "image", "history", &src])?)?;
    assert!(hist.as_array().unwrap().len() >= 2, "{hist}");

    // save in both formats; skopeo reads them; load them back and run.
    let dir = tempfile::tempdir()?;
    for fmt in ["docker", "oci"] {
        let file = dir.path().join(format!("{fmt}.tar"));
        h.hoist_ok(&[
            "image",
            "save",
            "--format",
            fmt,
            "-f",
            file.to_str().unwrap(),
            &src,
        ])?;
        let transport = if fmt == "docker" {
            "docker-archive"
        } else {
            "oci-archive"
        };
        let seen: Value = serde_json::from_str(&reg.skopeo(&[
            "inspect",
            "--raw",
            &format!("{transport}:{}", file.display()),
        ])?)?;
        let config = reg.skopeo(&[
            "inspect",
            "--config",
            &format!("{transport}:{}", file.display()),
        ])?;
        assert!(config.contains("\"diff_ids\""), "{config}");
        assert!(
            seen["layers"].as_array().is_some_and(|l| l.len() == 2),
            "{fmt}: {seen}"
        );
        let name = format!("loaded-{fmt}:v1");
        h.hoist_ok(&["image", "tag", &src, &name])?;
        h.hoist_ok(&["image", "rm", &name])?;
    }
    let docker_tar = dir.path().join("docker.tar");
    h.hoist_ok(&["image", "rm", &src])?;
    let loaded = h.hoist_ok(&["image", "load", "-i", docker_tar.to_str().unwrap()])?;
    assert!(loaded.contains(&src), "{loaded}");
    assert_eq!(
        inspect(&h, &src)?["id"],
        ours["id"],
        "docker-archive keeps the config, so the id"
    );
    assert_eq!(run_cat_hello(&h, &src)?, "hello-from-umoci\n");

    // prune: nothing referenced goes; after removing the images, their blobs and snapshots go.
    let before: Value = serde_json::from_str(&h.hoist_ok(&["-o", "json", "image", "prune"])?)?;
    assert_eq!(before["snapshots"], 0, "{before}");
    assert_eq!(run_cat_hello(&h, &src)?, "hello-from-umoci\n");
    for image in [&src, &zsrc, &dst, &back, &pinned] {
        let _ = h.hoist(&["image", "rm", image]);
    }
    let pruned: Value = serde_json::from_str(&h.hoist_ok(&["-o", "json", "image", "prune"])?)?;
    let probe = h.hoist_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "echo",
        "still",
    ])?;
    assert_eq!(probe, "still\n", "prune kept the images still named");
    let snaps = std::fs::read_dir(h.data_dir().join("images/snapshots"))?.count();
    assert_eq!(
        snaps, 1,
        "only the busybox/probe snapshot is left: {pruned}"
    );
    assert!(tmp_entries(&h).is_empty(), "{:?}", tmp_entries(&h));
    Ok(())
}

#[test]
fn basic_auth_login_pull_push_logout() -> Result<()> {
    let h = Host::start("img2")?;
    let reg = Registry::start(
        &h,
        5000,
        RegistryAuthMode::Basic {
            user: "alice".into(),
            password: "s3cret".into(),
        },
    )?;
    let layout = OciLayout::build()?;
    skopeo_push(&reg, &layout, "team/app:1", false, Some("alice:s3cret"))?;
    let config = tempfile::tempdir()?;
    let c = config.path();
    let src = format!("{}/team/app:1", reg.addr);

    let out = hoist_with(&h, c, &["image", "pull", &src], None)?;
    assert!(!out.status.success());
    assert!(
        text(&out).contains("authentication required"),
        "{}",
        text(&out)
    );

    let out = hoist_with(
        &h,
        c,
        &["login", "-u", "alice", "--password-stdin", &reg.addr],
        Some("wrong\n"),
    )?;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(!c.join("auth.json").exists());

    hoist_with_ok(
        &h,
        c,
        &["login", "-u", "alice", "--password-stdin", &reg.addr],
        Some("s3cret\n"),
    )?;
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(c.join("auth.json"))?.permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    hoist_with_ok(&h, c, &["image", "pull", &src], None)?;
    assert_eq!(run_cat_hello(&h, &src)?, "hello-from-umoci\n");
    let dst = format!("{}/team/copy:2", reg.addr);
    h.hoist_ok(&["image", "tag", &src, &dst])?;
    hoist_with_ok(&h, c, &["image", "push", &dst], None)?;
    let copy = reg.inspect("team/copy:2", Some("alice:s3cret"))?;
    assert_eq!(copy["Digest"], inspect(&h, &src)?["manifest_digest"]);

    hoist_with_ok(&h, c, &["logout", &reg.addr], None)?;
    let out = hoist_with(&h, c, &["image", "push", &dst], None)?;
    assert!(
        !out.status.success(),
        "push without credentials fails: {}",
        text(&out)
    );
    Ok(())
}

#[test]
fn bearer_token_registry() -> Result<()> {
    let h = Host::start("img3")?;
    let reg = Registry::start(
        &h,
        5000,
        RegistryAuthMode::Token {
            user: "bob".into(),
            password: "tok-pw".into(),
        },
    )?;
    let layout = OciLayout::build()?;
    skopeo_push(&reg, &layout, "lib/app:1", false, Some("bob:tok-pw")).map_err(|e| {
        anyhow::anyhow!("{e}\nregistry log:\n{}", hoist_tests::tail(&reg.log(), 20))
    })?;
    let config = tempfile::tempdir()?;
    let c = config.path();
    let src = format!("{}/lib/app:1", reg.addr);
    let out = hoist_with(&h, c, &["image", "pull", &src], None)?;
    assert!(
        !out.status.success(),
        "anonymous pull is refused: {}",
        text(&out)
    );

    hoist_with_ok(
        &h,
        c,
        &["login", "-u", "bob", "--password-stdin", &reg.addr],
        Some("tok-pw"),
    )?;
    hoist_with_ok(&h, c, &["image", "pull", &src], None)?;
    assert_eq!(run_cat_hello(&h, &src)?, "hello-from-umoci\n");
    let dst = format!("{}/lib/other:2", reg.addr);
    h.hoist_ok(&["image", "tag", &src, &dst])?;
    let pushed = hoist_with_ok(&h, c, &["-o", "json", "image", "push", &dst], None)?;
    assert!(pushed.contains("\"mounted\""), "{pushed}");
    let copy = reg.inspect("lib/other:2", Some("bob:tok-pw"))?;
    assert_eq!(copy["Digest"], inspect(&h, &src)?["manifest_digest"]);
    Ok(())
}

#[test]
fn oci_archive_from_skopeo_loads_and_runs() -> Result<()> {
    let h = Host::start("img4")?;
    let layout = OciLayout::build()?;
    let archive = layout.path().join("img.tar");
    let out = hoist_tests::sh(&format!(
        "skopeo copy {} oci-archive:{}:example.com/skopeo/made:v1",
        layout.source(),
        archive.display()
    ))?;
    assert!(out.status.success(), "{}", text(&out));
    let loaded = h.hoist_ok(&["image", "load", "-i", archive.to_str().unwrap()])?;
    assert!(loaded.contains("example.com/skopeo/made:v1"), "{loaded}");
    assert_eq!(
        run_cat_hello(&h, "example.com/skopeo/made:v1")?,
        "hello-from-umoci\n"
    );
    Ok(())
}

#[test]
fn tampered_blob_is_rejected_and_a_failed_pull_leaves_nothing() -> Result<()> {
    let h = Host::start("img5")?;
    let reg = Registry::start(&h, 5000, RegistryAuthMode::Anonymous)?;
    let layout = OciLayout::build()?;
    skopeo_push(&reg, &layout, "bad/image:1", false, None)?;
    let theirs = reg.inspect("bad/image:1", None)?;
    // Flip one byte in the top layer's blob in the registry's storage (same size).
    let top = theirs["Layers"][1].as_str().unwrap().to_owned();
    let file = reg.blob_file(&top);
    let mut bytes = std::fs::read(&file)?;
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&file, &bytes)?;

    let snaps_before = std::fs::read_dir(h.data_dir().join("images/snapshots"))?.count();
    let blobs_before = std::fs::read_dir(h.data_dir().join("images/blobs/sha256"))?.count();
    let src = format!("{}/bad/image:1", reg.addr);
    let out = h.hoist(&["image", "pull", &src])?;
    assert!(!out.status.success(), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("digest mismatch") || t.contains("invalid layer"),
        "{t}"
    );
    let ls = h.hoist_ok(&["image", "ls"])?;
    assert!(!ls.contains("bad/image"), "{ls}");
    assert!(tmp_entries(&h).is_empty(), "{:?}", tmp_entries(&h));
    // The intact base layer may have been fetched, but nothing names it, and the bad one is absent.
    assert!(!h
        .data_dir()
        .join("images/blobs/sha256")
        .join(top.trim_start_matches("sha256:"))
        .exists());
    assert_eq!(
        std::fs::read_dir(h.data_dir().join("images/snapshots"))?.count(),
        snaps_before
    );
    assert_eq!(
        std::fs::read_dir(h.data_dir().join("images/blobs/sha256"))?.count(),
        blobs_before
    );
    Ok(())
}

#[test]
fn an_interrupted_download_resumes_with_a_range_request() -> Result<()> {
    use hoist_tests::registry_lab::{Fault, FlakyProxy};
    let h = Host::start("img6")?;
    let reg = Registry::start(&h, 5000, RegistryAuthMode::Anonymous)?;
    let layout = OciLayout::build()?;
    skopeo_push(&reg, &layout, "flaky/app:1", false, None)?;
    // The busybox layer is ~3 MB: the cut lands inside it.
    let proxy = FlakyProxy::start(&h, 5002, &reg.addr, Fault::Cut, 1 << 20)?;
    let src = format!("{}/flaky/app:1", proxy.addr);
    let out = h.hoist_ok(&["-o", "json", "image", "pull", &src])?;
    assert!(out.contains("\"resuming\""), "{out}");
    let ranged: Vec<String> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.to_lowercase().contains("range: bytes="))
        .collect();
    assert_eq!(ranged.len(), 1, "{:#?}", proxy.requests());
    assert_eq!(run_cat_hello(&h, &src)?, "hello-from-umoci\n");
    assert_eq!(
        inspect(&h, &src)?["manifest_digest"],
        reg.inspect("flaky/app:1", None)?["Digest"]
    );
    Ok(())
}

#[test]
fn a_pull_killed_midway_leaves_no_image_and_no_staging() -> Result<()> {
    use hoist_tests::registry_lab::{Fault, FlakyProxy};
    let mut h = Host::start("img7")?;
    let reg = Registry::start(&h, 5000, RegistryAuthMode::Anonymous)?;
    let layout = OciLayout::build()?;
    skopeo_push(&reg, &layout, "stall/app:1", false, None)?;
    let proxy = FlakyProxy::start(&h, 5002, &reg.addr, Fault::Stall, 1 << 20)?;
    let src = format!("{}/stall/app:1", proxy.addr);
    let mut pull = Command::new(bin("hoist"))
        .args(["image", "pull", &src])
        .env("HOIST_AGENT", h.socket())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    hoist_tests::wait_for(
        "the pull to stage a layer",
        std::time::Duration::from_secs(20),
        || Ok((!tmp_entries(&h).is_empty()).then_some(())),
    )?;
    h.kill_agent()?;
    let _ = pull.kill();
    let _ = pull.wait();
    h.start_agent()?;
    assert!(
        tmp_entries(&h).is_empty(),
        "staging cleaned at start: {:?}",
        tmp_entries(&h)
    );
    let ls = h.hoist_ok(&["image", "ls"])?;
    assert!(!ls.contains("stall/app"), "{ls}");
    drop(proxy);
    // Straight from the registry it pulls fine afterwards.
    let direct = format!("{}/stall/app:1", reg.addr);
    h.hoist_ok(&["image", "pull", &direct])?;
    assert_eq!(run_cat_hello(&h, &direct)?, "hello-from-umoci\n");
    Ok(())
}
