//! What the build tests (`tests/build.rs`, `tests/build_go.rs`) share: writing a context,
//! building through the CLI, reading a built image's config blob, and checking that a build left
//! nothing behind.

use crate::Host;
use anyhow::{Context, Result};
use serde_json::Value;
use std::path::Path;

/// Lossy UTF-8 of a command's output.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Writes `content` to `dir/rel`, creating parent directories.
pub fn write(dir: &Path, rel: &str, content: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

/// `hoist build -t TAG [EXTRA] CTX`, required to succeed: its stdout.
pub fn build_tag(h: &Host, ctx: &Path, tag: &str, extra: &[&str]) -> Result<String> {
    let mut args = vec!["build", "-t", tag];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().context("context path is not UTF-8")?);
    let out = h.hoist(&args)?;
    anyhow::ensure!(
        out.status.success(),
        "build of {tag} failed: {}\n{}\nagent log:\n{}",
        text(&out.stdout),
        text(&out.stderr),
        crate::tail(&h.agent_log(), 30)
    );
    Ok(text(&out.stdout))
}

/// The image's `image ls` entry and its config blob as stored (Docker's field names).
pub fn image_config(h: &Host, reference: &str) -> Result<(Value, Value)> {
    let images: Value = serde_json::from_str(&h.hoist_ok(&["image", "ls", "-o", "json"])?)?;
    let img = images
        .as_array()
        .context("image ls is not a list")?
        .iter()
        .find(|i| {
            i["references"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r == reference))
        })
        .cloned()
        .with_context(|| format!("{reference} not listed: {images}"))?;
    let hex = img["id"]
        .as_str()
        .context("no id")?
        .trim_start_matches("sha256:");
    let path = h.data_dir().join("images/blobs/sha256").join(hex);
    let config: Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    Ok((img, config))
}

/// No mount of a build (overlays, tmpfs, secrets), no scratch directory and no build container
/// survive it.
pub fn assert_no_build_leftovers(h: &Host) {
    let build = h.data_dir().join("build");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let leaked: Vec<&str> = mounts
        .lines()
        .filter(|l| l.contains(build.to_str().unwrap()))
        .collect();
    assert!(leaked.is_empty(), "build mounts left: {leaked:?}");
    let tmp: Vec<_> = std::fs::read_dir(build.join("tmp"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(tmp.is_empty(), "build scratch left: {tmp:?}");
    let ps = h.hoist_ok(&["ps", "-a", "-q"]).unwrap_or_default();
    assert!(ps.trim().is_empty(), "containers left: {ps}");
}
