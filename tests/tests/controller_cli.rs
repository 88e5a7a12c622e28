//! The `hoist` CLI against a 3-member controller cluster in the lab: spec files in TOML and YAML,
//! service and cluster commands, `--output json`, and fail-over to the next `--controller` address.

use anyhow::{ensure, Context, Result};
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

    // Without credentials: refused, and the error says what to do.
    let (code, _, err) = hoist(&ctl, &["service", "ls"])?;
    ensure!(
        code != 0 && err.contains("credentials required") && err.contains("hoist cluster login"),
        "{code} {err}"
    );
    // Log in once with the first admin token; later commands use the kept credentials.
    let admin = lab.token().context("the first admin token")?;
    let (code, out, err) = hoist(&ctl, &["cluster", "login", "--token", &admin])?;
    ensure!(
        code == 0 && out.contains("as admin (admin)"),
        "login: {code} {out} {err}"
    );

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
    // A scale is no version (cluster format 2): history keeps deploys.
    let (code, out, _) = hoist(&ctl, &["service", "scale", "web", "5"])?;
    ensure!(
        code == 0 && out.contains("scaled to 5 (version 1)"),
        "{out}"
    );
    let (code, _, err) = hoist(&ctl, &["service", "scale", "web", "50"])?;
    ensure!(
        code != 0 && err.contains("replicas: 50 is outside autoscale bounds 2..=10"),
        "{err}"
    );
    let (code, _, err) = hoist(&ctl, &["service", "rollback", "web"])?;
    ensure!(
        code != 0 && err.contains("no version before 1"),
        "a scale is nothing to roll back: {err}"
    );
    // A real change, then back: the rollback keeps the autoscaled count.
    let changed = lab.data_dir(0).with_file_name("web2.toml");
    std::fs::write(
        &changed,
        std::fs::read_to_string(&web_toml)?.replace("GREETING = \"hello\"", "GREETING = \"hi\""),
    )?;
    let (code, out, err) = hoist(
        &ctl,
        &[
            "service",
            "apply",
            "--no-resolve-image",
            "-d",
            "-f",
            changed.to_str().unwrap(),
        ],
    )?;
    ensure!(code == 0 && out.contains("version 2"), "{out}{err}");
    let (code, out, _) = hoist(&ctl, &["service", "rollback", "web"])?;
    ensure!(code == 0 && out.contains("version 3"), "{out}");
    let (code, out, _) = hoist(&ctl, &["--output", "json", "service", "history", "web"])?;
    let h: serde_json::Value = serde_json::from_str(&out)?;
    ensure!(code == 0 && h.as_array().map(Vec::len) == Some(3), "{out}");
    ensure!(
        h[2]["origin"] == serde_json::json!({"rollback": {"from": 1}}),
        "{out}"
    );
    ensure!(
        h[2]["spec"]["replicas"] == 5,
        "the autoscaled count stays: {out}"
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
    roles_and_tokens(&ctl)
}

/// Tokens with roles, made and revoked with the CLI: what each may do, and the audit log.
fn roles_and_tokens(ctl: &str) -> Result<()> {
    let create = |name: &str, role: &str| -> Result<String> {
        let (code, out, err) = hoist(ctl, &["token", "create", name, "--role", role])?;
        ensure!(
            code == 0 && out.trim().starts_with("HOISTOP2-"),
            "{out}{err}"
        );
        Ok(out.trim().to_string())
    };
    let viewer = create("ci-viewer", "viewer")?;
    let deployer = create("ci-deployer", "deployer")?;
    let as_ = |token: &str, args: &[&str]| {
        let mut all = vec!["--token", token];
        all.extend_from_slice(args);
        hoist(ctl, &all)
    };
    let (code, out, _) = as_(&viewer, &["service", "ls"])?;
    ensure!(
        code == 0 && out.contains("web"),
        "a viewer lists services: {out}"
    );
    let (code, _, err) = as_(&viewer, &["service", "scale", "web", "3"])?;
    ensure!(
        code != 0 && err.contains("has the viewer role") && err.contains("needs the deployer role"),
        "a viewer cannot scale: {err}"
    );
    let (code, out, err) = as_(&deployer, &["service", "scale", "web", "3"])?;
    ensure!(code == 0, "a deployer scales: {out}{err}");
    let (code, _, err) = as_(&deployer, &["token", "ls"])?;
    ensure!(
        code != 0 && err.contains("needs the admin role"),
        "a deployer cannot list tokens: {err}"
    );
    // The audit log names who did what, refused attempts too.
    let (code, out, err) = hoist(ctl, &["-o", "json", "cluster", "audit", "--limit", "5"])?;
    let log: Vec<serde_json::Value> = serde_json::from_str(&out).with_context(|| err.clone())?;
    ensure!(
        code == 0
            && log.iter().any(|e| e["actor"] == "ci-deployer"
                && e["action"] == "scale service web to 3"
                && e["error"].is_null()),
        "audit: {out}"
    );
    // A secret is never listed; a revoked token is refused at once.
    let (code, out, _) = hoist(ctl, &["token", "ls"])?;
    ensure!(
        code == 0 && out.contains("ci-viewer") && !out.contains(&viewer[30..]),
        "{out}"
    );
    let (code, _, err) = hoist(ctl, &["token", "rm", "ci-viewer"])?;
    ensure!(code == 0, "{err}");
    let (code, _, err) = as_(&viewer, &["service", "ls"])?;
    ensure!(
        code != 0 && err.contains("unknown or was revoked"),
        "a revoked token: {err}"
    );
    let (code, _, err) = hoist(ctl, &["token", "rm", "admin"])?;
    ensure!(
        code != 0 && err.contains("last admin token"),
        "the last admin stays: {err}"
    );
    Ok(())
}

/// `hoist cluster member-add` adds a member that already runs: the leader asks it its version
/// (the CLI cannot say it), so an up-to-date member is added at any cluster format.
#[test]
fn cluster_member_add_adds_a_running_member() -> Result<()> {
    let _g = serial();
    let mut lab = Lab::new(2)?;
    lab.start_cluster(1)?;
    // A member that runs with an empty data dir, in no cluster yet.
    lab.start(1, &[])?;
    let id = lab.id(1).to_string();
    let addr = lab.addr(1);
    let (code, out, err) = hoist_tests::hoist_cli_as(
        &lab.addr(0),
        lab.token().as_deref(),
        &["cluster", "member-add", &id, &addr],
    )?;
    ensure!(code == 0, "member-add: {code}\n{out}\n{err}");
    lab.wait_voters(2, Duration::from_secs(30))
        .context("the added member votes")?;
    Ok(())
}

/// Adding a member at an address a member already has (the leader's own, say) is refused: the
/// cluster would replicate to itself.
#[test]
fn cluster_member_add_refuses_another_members_address() -> Result<()> {
    let _g = serial();
    let mut lab = Lab::new(1)?;
    lab.start_cluster(1)?;
    let (code, out, err) = hoist_tests::hoist_cli_as(
        &lab.addr(0),
        lab.token().as_deref(),
        &["cluster", "member-add", "634849", &lab.addr(0)],
    )?;
    ensure!(
        code != 0 && err.contains("is the address of member"),
        "{code}\n{out}\n{err}"
    );
    // The member still serves writes.
    let (code, v) = lab.get(0, "/v1/cluster/status")?;
    ensure!(code == 200 && v["leader"].is_u64(), "{code} {v}");
    Ok(())
}
