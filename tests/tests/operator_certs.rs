//! Operator client certificates as an operator and an attacker see them, on a 3-member cluster:
//! `hoist token cert` with a deployer's token writes a key (0600), the certificate and the root;
//! with the certificate alone (no token anywhere) the CLI and curl work through every member,
//! followers forwarding to the leader, with the token's role and name (in the audit log) and no
//! more; the certificate gets nothing on the agents' routes nor on `/raft`; it renews itself;
//! removing the token refuses it at once, and a new token of the same name does not revive it.

use anyhow::{ensure, Context, Result};
use base64::Engine;
use hoist_controller::api::auth::Access;
use hoist_controller::api::routes;
use hoist_proto::cluster::Role;
use hoist_tests::controller_lab::{serial, Lab};
use hoist_transport::tls::{self, CertRole, Identity, Trust};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

/// Runs `hoist` against `controllers` with the config dir `config`, no credentials from the
/// environment but `token` (as HOIST_TOKEN); answers exit code, stdout and stderr.
fn hoist(
    controllers: &str,
    config: &Path,
    token: Option<&str>,
    args: &[&str],
) -> Result<(i32, String, String)> {
    let mut cmd = hoist_tests::hoist_command(controllers, token);
    cmd.env("HOIST_CONFIG_DIR", config)
        .env_remove("HOIST_CERT")
        .env_remove("HOIST_KEY");
    hoist_tests::run_hoist(cmd, args)
}

/// A client presenting the certificate in `dir` (as `hoist token cert` wrote it), trusting the
/// root beside it: what curl with `--cacert --cert --key` does.
fn cert_client(dir: &Path) -> Result<reqwest::blocking::Client> {
    hoist_common::init_tls();
    let chain = std::fs::read_to_string(dir.join("operator.crt"))?;
    let key = std::fs::read_to_string(dir.join("operator.key"))?;
    let root = tls::certs_from_pem(&std::fs::read_to_string(dir.join("ca.crt"))?)
        .map_err(anyhow::Error::msg)?;
    let identity = Identity::from_pem(&chain, &key).map_err(anyhow::Error::msg)?;
    let config =
        tls::client_config(Trust::Roots(root), Some(identity)).map_err(anyhow::Error::msg)?;
    Ok(reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .tls_backend_preconfigured(config)
        .build()?)
}

/// Status and JSON body (`Null` when none) of `method url` with `client`, with an optional
/// bearer token and JSON body. A long poll that waits past the timeout answers 0.
fn call(
    client: &reqwest::blocking::Client,
    method: &str,
    url: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
) -> Result<(u16, Value)> {
    let mut req = client.request(reqwest::Method::from_bytes(method.as_bytes())?, url);
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    req = match body {
        Some(b) => req.json(b),
        None => req.header("content-type", "application/json").body("{}"),
    };
    hoist_tests::route_answer(req.send())
}

/// Who the certificate in `dir` names.
fn named(dir: &Path) -> Result<tls::CertIdentity> {
    let chain = std::fs::read_to_string(dir.join("operator.crt"))?;
    let der = tls::certs_from_pem(&chain).map_err(anyhow::Error::msg)?;
    ensure!(
        der.len() == 2,
        "the certificate, then the root: {} certificates",
        der.len()
    );
    tls::identity_of(&der[0]).context("the certificate names its holder")
}

/// A concrete path for a route's pattern (as the authorization matrix makes them).
fn concrete(pattern: &str) -> String {
    hoist_tests::concrete_path(pattern, "append")
}

/// A signing request whose self-signature does not verify: one made for `key`, with the last
/// byte of its signature changed.
fn forged_csr(key: &str) -> Result<String> {
    let csr =
        hoist_transport::pki::request(key, CertRole::Operator, "x").map_err(anyhow::Error::msg)?;
    let b64: String = csr.lines().filter(|l| !l.starts_with("-----")).collect();
    let engine = base64::engine::general_purpose::STANDARD;
    let mut der = engine.decode(b64)?;
    let last = der.len() - 1;
    der[last] ^= 0x5a;
    Ok(format!(
        "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
        engine.encode(der)
    ))
}

#[test]
fn an_operator_certificate_acts_as_its_token_until_the_token_is_removed() -> Result<()> {
    let _g = serial();
    let mut lab = Lab::new(3)?;
    lab.start_cluster(3)?;
    let digest = lab.wait_tls(0, Duration::from_secs(10))?;
    for i in 1..3 {
        ensure!(
            lab.wait_tls(i, Duration::from_secs(20))? == digest,
            "member {i}'s root"
        );
    }
    let leader = lab.wait_leader(Duration::from_secs(10))?;
    let follower = (0..3).find(|&i| i != leader).context("a follower")?;
    let all = (0..3).map(|i| lab.addr(i)).collect::<Vec<_>>().join(",");
    let admin = lab.token().context("the first admin token")?;
    let name = format!("opc-{}", lab.run_id);
    let make_token = || -> Result<(String, String)> {
        let (code, v) = lab.post(
            leader,
            "/v1/tokens",
            &json!({"name": name, "role": "deployer"}),
        )?;
        ensure!(code == 201, "token create: {code} {v}");
        let token = v["token"].as_str().context("token")?.to_string();
        let (_, list) = lab.get(leader, "/v1/tokens")?;
        let id = list
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["name"] == name.as_str())
            .and_then(|t| t["id"].as_str())
            .context("the token's id")?
            .to_string();
        Ok((token, id))
    };
    let (deployer, token_id) = make_token()?;
    let work = tempfile::tempdir()?;
    // The CLI's config dir: the certificate is written there, and no login is kept in it.
    let config = work.path().join("config");

    // `hoist token cert` with the token: a key made here, the certificate, the root.
    let (code, out, err) = hoist(
        &all,
        &config,
        Some(&deployer),
        &["-o", "json", "token", "cert"],
    )?;
    ensure!(code == 0, "token cert: {code}\n{out}\n{err}");
    let answer: Value = serde_json::from_str(&out)?;
    ensure!(
        answer["name"] == name.as_str() && answer["role"] == "deployer",
        "{answer}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(config.join("operator.key"))?
        .permissions()
        .mode();
    ensure!(mode & 0o077 == 0, "the key is private: {mode:o}");
    let who = named(&config)?;
    ensure!(
        who.role == CertRole::Operator && who.id == token_id,
        "the certificate names the token's id, not its name: {who:?}"
    );
    let life = who.not_after - who.not_before;
    ensure!(
        (24 * 3600..=24 * 3600 + 300).contains(&life),
        "24 h by default: {life} s"
    );
    ensure!(
        answer["not_after_ms"].as_i64() == Some(who.not_after * 1000),
        "{answer}"
    );
    let root = tls::certs_from_pem(&std::fs::read_to_string(config.join("ca.crt"))?)
        .map_err(anyhow::Error::msg)?;
    ensure!(
        tls::ca_digest(&root[0]) == digest,
        "ca.crt is the cluster's root"
    );
    ensure!(
        !config.join("credentials.json").exists(),
        "no token was kept: only the certificate acts below"
    );

    // The CLI with the certificate alone (no HOIST_TOKEN, no kept login): through every member.
    for i in 0..3 {
        let (code, out, err) = hoist(&lab.addr(i), &config, None, &["service", "ls"])?;
        ensure!(
            code == 0,
            "service ls through member {i}: {code}\n{out}\n{err}"
        );
    }
    // A deployer's, no more.
    let (code, out, err) = hoist(&all, &config, None, &["token", "ls"])?;
    ensure!(code != 0, "a deployer's certificate listed tokens: {out}");
    ensure!(
        err.contains("has the deployer role"),
        "the CLI says why: {err}"
    );
    // The same with --cert/--key from elsewhere, and curl.
    let elsewhere = work.path().join("elsewhere");
    let (code, out, err) = hoist(
        &all,
        &elsewhere,
        None,
        &[
            "--cert",
            &config.join("operator.crt").display().to_string(),
            "--key",
            &config.join("operator.key").display().to_string(),
            "service",
            "ls",
        ],
    )?;
    ensure!(
        code == 0,
        "service ls with --cert/--key: {code}\n{out}\n{err}"
    );
    let curl = std::process::Command::new("curl")
        .args(["-sS", "--fail-with-body", "--cacert"])
        .arg(config.join("ca.crt"))
        .arg("--cert")
        .arg(config.join("operator.crt"))
        .arg("--key")
        .arg(config.join("operator.key"))
        .arg(format!("https://{}/v1/whoami", lab.addr(follower)))
        .output()
        .context("run curl")?;
    let said = String::from_utf8_lossy(&curl.stdout);
    ensure!(
        curl.status.success(),
        "curl with the certificate: {said} {}",
        String::from_utf8_lossy(&curl.stderr)
    );
    let whoami: Value = serde_json::from_str(&said)?;
    ensure!(
        whoami["name"] == name.as_str() && whoami["role"] == "deployer",
        "{whoami}"
    );

    // A write through a follower is audited under the token's name.
    let client = cert_client(&config)?;
    let url = |i: usize, p: &str| format!("https://{}{p}", lab.addr(i));
    let service = json!({"name": format!("{name}-web"), "image": "busybox", "replicas": 0});
    let (code, v) = call(
        &client,
        "POST",
        &url(follower, "/v1/services"),
        None,
        Some(&service),
    )?;
    ensure!(
        (200..300).contains(&code),
        "apply with the certificate: {code} {v}"
    );
    let (code, audit) = lab.get(leader, "/v1/cluster/audit?limit=5")?;
    ensure!(code == 200, "audit: {code}");
    ensure!(
        audit
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["actor"] == name.as_str() && e["error"].is_null()),
        "the write is the token's in the audit log: {audit}"
    );
    // A bearer token sent as well wins (the admin's lists tokens).
    let (code, _) = call(
        &client,
        "GET",
        &url(follower, "/v1/tokens"),
        Some(&admin),
        None,
    )?;
    ensure!(
        code == 200,
        "the admin token beside the certificate: {code}"
    );

    // Every route, through a follower: what the token's role allows, 403 above it, and 401 on
    // the agents' routes and the members' Raft RPCs.
    let mut problems = Vec::new();
    for route in routes() {
        let path = concrete(route.path);
        let (code, body) = call(&client, route.method, &url(follower, &path), None, None)?;
        let ok = match route.access {
            Access::Open => !matches!(code, 401 | 403),
            Access::Role(need) if need <= Role::Deployer => !matches!(code, 401 | 403),
            Access::Role(_) => code == 403,
            Access::Agent | Access::Peer => code == 401,
            Access::Hook => matches!(code, 401 | 403),
        };
        if !ok {
            problems.push(format!("{} {path}: {code} {body}", route.method));
        }
    }
    ensure!(
        problems.is_empty(),
        "with a deployer's certificate:\n{}",
        problems.join("\n")
    );
    for i in 0..3 {
        let (code, body) = call(&client, "POST", &url(i, "/raft/append"), None, None)?;
        ensure!(code == 401, "/raft/append on member {i}: {code} {body}");
    }

    // Renewal with the certificate itself, for a lifetime asked; more than 90 days is refused.
    let renewed = work.path().join("renewed");
    let out_dir = renewed.display().to_string();
    let (code, out, err) = hoist(
        &all,
        &config,
        None,
        &["token", "cert", "--out", &out_dir, "--lifetime", "2h"],
    )?;
    ensure!(
        code == 0,
        "renewal with the certificate: {code}\n{out}\n{err}"
    );
    eprintln!("{out}");
    ensure!(
        out.contains(&name) && out.contains(&out_dir) && out.contains("--cert"),
        "says whose, where, and how to use it: {out}"
    );
    let again = named(&renewed)?;
    ensure!(
        again.id == token_id && again.key_sha256 != who.key_sha256,
        "{again:?}"
    );
    let life = again.not_after - again.not_before;
    ensure!((7200..=7200 + 300).contains(&life), "2 h asked: {life} s");
    let (code, _, err) = hoist(
        &all,
        &config,
        None,
        &["token", "cert", "--out", &out_dir, "--lifetime", "91d"],
    )?;
    ensure!(
        code != 0 && err.contains("90 days"),
        "91 days: {code} {err}"
    );
    // A forged signing request is refused, naming the field.
    let key = hoist_transport::pki::new_key().map_err(anyhow::Error::msg)?;
    let (code, v) = call(
        &client,
        "POST",
        &url(leader, "/v1/tokens/certificate"),
        Some(&deployer),
        Some(&json!({"csr": forged_csr(&key)?})),
    )?;
    ensure!(
        code == 400 && v["field"] == "csr",
        "a forged request: {code} {v}"
    );

    // Removing the token refuses its certificates at once, on every member.
    let (code, v) = lab.send(
        leader,
        "DELETE",
        &format!("/v1/tokens/{name}"),
        Vec::new(),
        "application/json",
    )?;
    ensure!(code == 204, "token rm: {code} {v}");
    lab.wait_caught_up(Duration::from_secs(10))?;
    for i in 0..3 {
        let (code, v) = call(&client, "GET", &url(i, "/v1/services"), None, None)?;
        ensure!(
            code == 401
                && v["code"] == "unknown_credential"
                && v["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("was removed")),
            "the removed token's certificate on member {i}: {code} {v}"
        );
    }
    let (code, _, err) = hoist(&all, &config, None, &["service", "ls"])?;
    ensure!(
        code != 0 && err.contains("was removed"),
        "the CLI says why: {err}"
    );
    // A new token of the same name is another token: the old certificates stay refused.
    let (_, new_id) = make_token()?;
    ensure!(new_id != token_id, "a new id");
    lab.wait_caught_up(Duration::from_secs(10))?;
    for dir in [&config, &renewed] {
        let c = cert_client(dir)?;
        for i in 0..3 {
            let (code, v) = call(&c, "GET", &url(i, "/v1/services"), None, None)?;
            ensure!(
                code == 401,
                "an old certificate after re-creating {name}: {code} {v}"
            );
        }
    }
    let (code, v) = lab.send(
        leader,
        "DELETE",
        &format!("/v1/tokens/{name}"),
        Vec::new(),
        "application/json",
    )?;
    ensure!(code == 204, "clean up the token: {code} {v}");
    Ok(())
}
