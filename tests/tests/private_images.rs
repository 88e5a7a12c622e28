//! Private images and pinned digests (issue 17), on the cluster lab: a password-protected
//! registry (Debian's `docker-registry` with htpasswd) on its own lab host, one controller and two
//! agents that reach it over the lab bridge (`--insecure-registry`), and the operator's `hoist`
//! with its own credentials file. The image is the probe image, pushed with `hoist image push`
//! after `hoist login`.
//!
//! - without `--with-registry-auth` the replicas fail to pull, and `hoist service ps -o json` says
//!   why (authentication);
//! - with it, a replica runs on every node, from `NAME:TAG@sha256:...` (the digest resolved at
//!   apply), and neither `inspect`, `history` nor `ls` shows the password;
//! - a different image pushed to the same tag changes nothing (same version, same digest, a
//!   replica recreated on a node whose local tag moved still runs the first bits) until the next
//!   apply, which resolves the tag again and rolls the service to the new bits (with the
//!   credentials the controller kept from the first apply);
//! - an image the registry does not have fails the apply before anything changes.

use anyhow::{bail, ensure, Context, Result};
use hoist_tests::cluster_lab::ClusterLab;
use hoist_tests::controller_lab::serial;
use hoist_tests::probe_image_tar;
use hoist_tests::registry_lab::{Registry, RegistryAuthMode};
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const MEMBER_FLAGS: &[&str] = &["--node-grace", "3s", "--heartbeat-interval", "500ms"];
const USER: &str = "alice";
const PASSWORD: &str = "pr1vate-s3cret";

/// `hoist ARGS` as the operator: the lab's controllers, agent `agent`'s socket (for image
/// commands), the operator's credentials dir, optional stdin. Answers (code, stdout, stderr).
fn operator(
    lab: &ClusterLab,
    agent: usize,
    config: &Path,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<(i32, String, String)> {
    let mut child = lab
        .hoist_command()
        .args(args)
        .env("HOIST_AGENT", lab.agents[agent].host.socket())
        .env("HOIST_CONFIG_DIR", config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("run hoist")?;
    if let Some(s) = stdin {
        child
            .stdin
            .take()
            .context("stdin")?
            .write_all(s.as_bytes())?;
    }
    drop(child.stdin.take());
    let out = child.wait_with_output()?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

fn operator_ok(lab: &ClusterLab, agent: usize, config: &Path, args: &[&str]) -> Result<String> {
    let (code, out, err) = operator(lab, agent, config, args, None)?;
    if code != 0 {
        bail!(
            "hoist {} exited {code}\nstdout: {out}\nstderr: {err}",
            args.join(" ")
        );
    }
    Ok(out)
}

/// `hoist service apply -f SPEC ARGS...` as the operator.
fn apply(
    lab: &ClusterLab,
    config: &Path,
    spec: &Value,
    args: &[&str],
) -> Result<(i32, String, String)> {
    let file = tempfile::Builder::new().suffix(".json").tempfile()?;
    std::fs::write(file.path(), serde_json::to_vec_pretty(spec)?)?;
    let path = file.path().to_str().unwrap_or_default().to_string();
    let mut all = vec!["service", "apply", "-f", &path];
    all.extend_from_slice(args);
    operator(lab, 0, config, &all, None)
}

/// One replica per node, sleeping.
fn service(name: &str, image: &str) -> Value {
    json!({
        "name": name,
        "image": image,
        "command": ["sleep", "100000"],
        "replicas": 2,
        "placement": {"max_per_node": 1},
        "update": {"parallelism": 2, "monitor": "1s"},
    })
}

/// `hoist image inspect` on agent `i`: the image id.
fn image_id(lab: &ClusterLab, i: usize, image: &str) -> Result<String> {
    let out = lab.agents[i]
        .host
        .hoist_ok(&["-o", "json", "image", "inspect", image])?;
    let v: Value = serde_json::from_str(&out)?;
    let v = if v.is_array() { v[0].clone() } else { v };
    v["id"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no id in {v}"))
}

/// The (image as created, image id) of the running containers of `svc` on every agent, once
/// every agent runs exactly one, created from `image`.
fn wait_one_per_node(lab: &ClusterLab, svc: &str, image: &str) -> Result<Vec<(String, String)>> {
    lab.wait_until(
        &format!("one replica of {svc} from {image} on each agent"),
        Duration::from_secs(90),
        || {
            let mut seen = Vec::new();
            let mut all = true;
            for i in 0..lab.agents.len() {
                let running = lab.running_on(i, svc)?;
                all &= running.len() == 1 && running[0]["spec"]["image"] == image;
                seen.push(
                    running
                        .iter()
                        .map(|c| {
                            (
                                c["spec"]["image"].as_str().unwrap_or("").to_owned(),
                                c["image_id"].as_str().unwrap_or("").to_owned(),
                            )
                        })
                        .collect::<Vec<_>>(),
                );
            }
            let flat: Vec<(String, String)> = seen.iter().flatten().cloned().collect();
            Ok((all.then_some(flat), format!("{seen:?}")))
        },
    )
}

/// The service as `hoist service inspect -o json` shows it, with its raw text.
fn inspect(lab: &ClusterLab, config: &Path, name: &str) -> Result<(Value, String)> {
    let out = operator_ok(lab, 0, config, &["-o", "json", "service", "inspect", name])?;
    Ok((serde_json::from_str(&out)?, out))
}

#[test]
fn private_images_pull_with_registry_auth_and_run_the_pinned_digest() -> Result<()> {
    let _g = serial();
    let mut lab = ClusterLab::start(1, MEMBER_FLAGS)?;
    // The registry on a lab host of its own, reached by agents and operator over the lab bridge.
    let reg_host = lab.lab.add_host()?;
    let reg = Registry::start_in(
        lab.lab.netns(reg_host),
        lab.lab.ip(reg_host),
        5000,
        RegistryAuthMode::Basic {
            user: USER.into(),
            password: PASSWORD.into(),
        },
    )?;
    let addr = reg.addr.clone();
    lab.agent_flags = vec!["--insecure-registry".into(), addr.clone()];
    lab.add_agent("a1", &[])?;
    lab.add_agent("a2", &[])?;
    let config = tempfile::tempdir()?;
    let c = config.path();
    let insecure = ["--insecure-registry", addr.as_str()];

    // Log in and push the probe image from a1, then drop it there: every node must pull.
    let (code, out, err) = operator(
        &lab,
        0,
        c,
        &["login", "-u", USER, "--password-stdin", &addr],
        Some(PASSWORD),
    )?;
    ensure!(code == 0, "login: {out} {err}");
    let image = format!("{addr}/team/app:v1");
    let v1_id = image_id(&lab, 0, "probe")?;
    operator_ok(&lab, 0, c, &["image", "tag", "probe", &image])?;
    operator_ok(&lab, 0, c, &["image", "push", &image])?;
    operator_ok(&lab, 0, c, &["image", "rm", &image])?;
    let v1_digest = reg.inspect("team/app:v1", Some(&format!("{USER}:{PASSWORD}")))?["Digest"]
        .as_str()
        .context("skopeo inspect: no Digest")?
        .to_owned();
    let pinned_v1 = format!("{image}@{v1_digest}");

    // An image the registry lacks fails the apply, naming the service, the image and why.
    let missing = format!("{addr}/team/nope:v1");
    let (code, out, err) = apply(&lab, c, &service("ghost", &missing), &insecure)?;
    ensure!(code != 0, "apply of a missing image succeeded: {out}");
    ensure!(
        err.contains("service ghost") && err.contains(&missing) && err.contains("not found"),
        "{err}"
    );
    let list = operator_ok(&lab, 0, c, &["-o", "json", "service", "ls"])?;
    ensure!(!list.contains("ghost"), "nothing applied: {list}");

    // (b) Without --with-registry-auth: resolved (the operator is logged in), but the nodes may
    // not pull; the task's message says why.
    let (code, out, err) = apply(
        &lab,
        c,
        &service("anon", &image),
        &[&insecure[..], &["-d"]].concat(),
    )?;
    ensure!(code == 0, "apply anon: {out} {err}");
    let message = lab.wait_until(
        "an authentication failure in `service ps -o json`",
        Duration::from_secs(60),
        || {
            let out = operator_ok(&lab, 0, c, &["-o", "json", "service", "ps", "anon"])?;
            let v: Value = serde_json::from_str(&out)?;
            let found = v["replicas"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|r| {
                    r["task"]
                        .as_object()
                        .map(|t| Value::Object(t.clone()))
                        .into_iter()
                        .chain(r["history"].as_array().cloned().into_iter().flatten())
                })
                .filter_map(|t| t["message"].as_str().map(str::to_owned))
                .find(|m| m.contains("authentication required") || m.contains("unauthorized"));
            Ok((found, out))
        },
    )?;
    eprintln!("without credentials: {message}");
    ensure!(message.contains(&addr), "names the registry: {message}");
    for i in 0..2 {
        ensure!(
            lab.running_on(i, "anon")?.is_empty(),
            "nothing runs on a{}",
            i + 1
        );
    }
    operator_ok(&lab, 0, c, &["service", "rm", "anon"])?;

    // (a) With --with-registry-auth: one replica per node, from the pinned reference.
    let spec = service("private", &image);
    let auth_args = [&insecure[..], &["--with-registry-auth"]].concat();
    let (code, out, err) = apply(&lab, c, &spec, &auth_args)?;
    ensure!(code == 0, "apply private: {out} {err}");
    let running = wait_one_per_node(&lab, "private", &pinned_v1)?;
    ensure!(
        running.iter().all(|(_, id)| *id == v1_id),
        "every replica runs the pushed bits ({v1_id}): {running:?}"
    );
    let (svc, text) = inspect(&lab, c, "private")?;
    ensure!(svc["spec"]["image"] == image.as_str(), "{text}");
    ensure!(svc["spec"]["image_digest"] == v1_digest.as_str(), "{text}");
    let version = svc["version"].as_u64().context("version")?;
    for args in [
        &["-o", "json", "service", "inspect", "private"][..],
        &["service", "inspect", "private"],
        &["-o", "json", "service", "history", "private"],
        &["service", "history", "private"],
        &["-o", "json", "service", "ls"],
        &["service", "ls"],
        &["-o", "json", "service", "ps", "private"],
    ] {
        let out = operator_ok(&lab, 0, c, args)?;
        ensure!(
            !out.contains(PASSWORD) && !out.contains("registry_auth"),
            "hoist {} shows the credentials: {out}",
            args.join(" ")
        );
    }
    let ls = operator_ok(&lab, 0, c, &["service", "ls"])?;
    ensure!(
        ls.contains(&format!("{image}@sha256:{}", &v1_digest[7..19])),
        "ls shows the pinned digest: {ls}"
    );
    // No log line carries the password either.
    let mut logs = lab.logs_tail();
    for a in &lab.agents {
        logs.push_str(&a.host.agent_log());
    }
    ensure!(!logs.contains(PASSWORD), "a log shows the password");

    // (c) Another image pushed to the same tag (from a1, whose local tag now moves to it).
    let v2_tar = tempfile::Builder::new().suffix(".tar").tempfile()?;
    let v2_dir = tempfile::tempdir()?;
    std::fs::copy(probe_image_tar(), v2_tar.path())?;
    std::fs::write(v2_dir.path().join("v2.txt"), "second image\n")?;
    let status = Command::new("tar")
        .arg("-rf")
        .arg(v2_tar.path())
        .arg("-C")
        .arg(v2_dir.path())
        .arg("v2.txt")
        .status()?;
    ensure!(status.success(), "tar -r");
    operator_ok(
        &lab,
        0,
        c,
        &[
            "image",
            "import",
            v2_tar.path().to_str().unwrap_or_default(),
            &image,
        ],
    )?;
    let v2_id = image_id(&lab, 0, &image)?;
    ensure!(v2_id != v1_id, "the second image differs");
    operator_ok(&lab, 0, c, &["image", "push", &image])?;
    let v2_digest = reg.inspect("team/app:v1", Some(&format!("{USER}:{PASSWORD}")))?["Digest"]
        .as_str()
        .context("skopeo inspect: no Digest")?
        .to_owned();
    ensure!(v2_digest != v1_digest, "the tag moved in the registry");

    // A replica recreated on a1 (its container removed) still runs the first image's bits, and
    // the service is unchanged.
    let on_a1 = lab.running_on(0, "private")?;
    let old = on_a1[0]["id"].as_str().context("container id")?.to_owned();
    lab.agents[0].host.hoist_ok(&["rm", "-f", &old])?;
    lab.wait_until("a new replica on a1", Duration::from_secs(60), || {
        let r = lab.running_on(0, "private")?;
        let fresh: Vec<(String, String)> = r
            .iter()
            .filter(|c| c["id"] != old.as_str())
            .map(|c| {
                (
                    c["spec"]["image"].as_str().unwrap_or("").to_owned(),
                    c["image_id"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        Ok((
            (fresh.len() == 1).then(|| fresh[0].clone()),
            format!("{r:?}"),
        ))
    })
    .and_then(|(img, id)| {
        ensure!(
            img == pinned_v1 && id == v1_id,
            "recreated from {img} ({id}), not v1"
        );
        Ok(())
    })?;
    let running = wait_one_per_node(&lab, "private", &pinned_v1)?;
    ensure!(running.iter().all(|(_, id)| *id == v1_id), "{running:?}");
    let (svc, text) = inspect(&lab, c, "private")?;
    ensure!(
        svc["version"].as_u64() == Some(version)
            && svc["spec"]["image_digest"] == v1_digest.as_str(),
        "the push changed the service: {text}"
    );

    // A second apply of the same file resolves the tag again: a new version on the new bits.
    // It carries no credentials: the controller keeps the service's earlier ones, and the nodes
    // pull the new digest with them.
    let (code, out, err) = apply(&lab, c, &spec, &insecure)?;
    ensure!(code == 0, "second apply: {out} {err}");
    let (svc, text) = inspect(&lab, c, "private")?;
    ensure!(
        svc["version"].as_u64() > Some(version)
            && svc["spec"]["image_digest"] == v2_digest.as_str(),
        "{text}"
    );
    let running = wait_one_per_node(&lab, "private", &format!("{image}@{v2_digest}"))?;
    ensure!(running.iter().all(|(_, id)| *id == v2_id), "{running:?}");
    drop(reg);
    Ok(())
}
