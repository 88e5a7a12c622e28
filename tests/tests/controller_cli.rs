//! The `hoist` CLI against a 3-member controller cluster in the lab: spec files in TOML and YAML,
//! service and cluster commands, `--output json`, and fail-over to the next `--controller` address.

use anyhow::{ensure, Result};
use hoist_tests::controller_lab::{serial, Lab};
use hoist_tests::hoist_cli as hoist;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/examples")
        .join(name)
}

#[test]
fn the_cli_manages_services_and_the_cluster() -> Result<()> {
    let _g = serial();
    let mut lab = Lab::new(3)?;
    lab.start_cluster(3)?;
    lab.wait_leader(Duration::from_secs(10))?;
    // The first address (a lab host, a port nobody listens on) refuses: the CLI must move on.
    let dead = lab.addr(0).replace(":7070", ":1");
    let ctl = format!("{dead},{},{}", lab.addr(1), lab.addr(2));
    let web_toml = example("web.toml");
    let web_yaml = example("web.yaml");

    let (code, out, err) = hoist(
        &ctl,
        &[
            "service",
            "apply",
            "--no-resolve-image",
            "-d",
            "-f",
            web_toml.to_str().unwrap(),
        ],
    )?;
    ensure!(
        code == 0 && out.contains("web: created (version 1)"),
        "{code} {out} {err}"
    );
    let (code, out, _) = hoist(
        &ctl,
        &[
            "service",
            "apply",
            "--no-resolve-image",
            "-d",
            "-f",
            web_yaml.to_str().unwrap(),
        ],
    )?;
    ensure!(
        code == 0 && out.contains("web: unchanged (version 1)"),
        "the YAML twin must be the same spec: {out}"
    );
    let (code, out, _) = hoist(&ctl, &["service", "scale", "web", "5"])?;
    ensure!(code == 0 && out.contains("version 2"), "{out}");
    let (code, _, err) = hoist(&ctl, &["service", "scale", "web", "50"])?;
    ensure!(
        code != 0 && err.contains("replicas: 50 is outside autoscale bounds 2..=10"),
        "{err}"
    );
    let (code, out, _) = hoist(&ctl, &["service", "rollback", "web"])?;
    ensure!(code == 0 && out.contains("version 3"), "{out}");
    let (code, out, _) = hoist(&ctl, &["--output", "json", "service", "history", "web"])?;
    let h: serde_json::Value = serde_json::from_str(&out)?;
    ensure!(code == 0 && h.as_array().map(Vec::len) == Some(3), "{out}");
    ensure!(
        h[2]["origin"] == serde_json::json!({"rollback": {"from": 1}}),
        "{out}"
    );
    let (code, out, _) = hoist(&ctl, &["service", "ls"])?;
    ensure!(
        code == 0 && out.contains("web") && out.contains("busybox:latest"),
        "{out}"
    );

    let bad = lab.data_dir(0).with_file_name("bad.toml");
    std::fs::write(
        &bad,
        "name = \"x\"\nimage = \"y\"\nreplicas = -1\n[resources]\nmemory = \"12x\"\n",
    )?;
    let (code, _, err) = hoist(
        &ctl,
        &[
            "service",
            "apply",
            "--no-resolve-image",
            "-d",
            "-f",
            bad.to_str().unwrap(),
        ],
    )?;
    ensure!(code == 2, "an invalid file exits 2, got {code}");
    ensure!(
        err.contains("replicas: must be ≥ 0")
            && err.contains("resources.memory: \"12x\" is not a size"),
        "{err}"
    );

    let (code, out, _) = hoist(&ctl, &["cluster", "status"])?;
    ensure!(
        code == 0 && out.contains("leader") && out.matches("follower").count() == 2,
        "{out}"
    );
    let snap = lab.data_dir(0).with_file_name("state.snap");
    let (code, out, _) = hoist(
        &ctl,
        &["cluster", "snapshot", "save", snap.to_str().unwrap()],
    )?;
    ensure!(code == 0 && out.contains("saved"), "{out}");
    let (code, out, err) = hoist(&ctl, &["service", "rm", "web"])?;
    ensure!(code == 0, "service rm: {code} {out} {err}");
    let (code, _, err) = hoist(&ctl, &["service", "inspect", "web"])?;
    ensure!(
        code == 1 && err.contains("service \"web\" not found"),
        "{err}"
    );
    let (code, out, err) = hoist(
        &ctl,
        &["cluster", "snapshot", "restore", snap.to_str().unwrap()],
    )?;
    ensure!(code == 0, "snapshot restore: {code} {out} {err}");
    let (code, out, _) = hoist(&ctl, &["--output", "json", "service", "inspect", "web"])?;
    let svc: serde_json::Value = serde_json::from_str(&out)?;
    ensure!(code == 0 && svc["version"] == 3, "{out}");
    let (code, _, err) = hoist(&dead, &["service", "ls"])?;
    ensure!(
        code == 3 && err.contains("no controller answered"),
        "{code} {err}"
    );
    Ok(())
}
