//! Every route of the controller, enumerated from the table its router is made from (not a hand
//! list), called without credentials, with each role's token, with a join token and with a
//! forged one: 401 where credentials are missing or wrong, 403 where the role is too low, and
//! past authorization otherwise. All errors are JSON.

use anyhow::{ensure, Context, Result};
use hoist_controller::api::auth::Access;
use hoist_controller::api::routes;
use hoist_proto::cluster::Role;
use hoist_tests::controller_lab::{serial, Lab};
use serde_json::{json, Value};
use std::time::Duration;

/// A concrete path for a route's pattern.
fn concrete(pattern: &str) -> String {
    hoist_tests::concrete_path(pattern, "stall")
}

/// Status and JSON body of `method path` on member 0 with `token` as the bearer.
fn call(lab: &Lab, method: &str, path: &str, token: Option<&str>) -> Result<(u16, Value)> {
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()?;
    let m = reqwest::Method::from_bytes(method.as_bytes())?;
    let mut req = http
        .request(m, format!("http://{}{path}", lab.addr(0)))
        .header("content-type", "application/json")
        .body("{}");
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    hoist_tests::route_answer(req.send())
}

#[test]
fn every_route_needs_the_right_credentials() -> Result<()> {
    let _g = serial();
    let mut lab = Lab::new(1)?;
    lab.start_cluster(1)?;
    lab.wait_leader(Duration::from_secs(10))?;
    let admin = lab.token().context("the first admin token")?;
    let make = |name: &str, role: &str| -> Result<String> {
        let (code, v) = lab.post(0, "/v1/tokens", &json!({"name": name, "role": role}))?;
        ensure!(code == 201, "create {name}: {code} {v}");
        Ok(v["token"].as_str().context("token")?.to_string())
    };
    let viewer = make("matrix-viewer", "viewer")?;
    let deployer = make("matrix-deployer", "deployer")?;
    lab.wait_tls(0, Duration::from_secs(10))?;
    let join_token = || -> Result<String> {
        let (code, join) = lab.get(0, "/v1/cluster/token")?;
        ensure!(code == 200, "join token: {code}");
        Ok(join["token"].as_str().context("join token")?.to_string())
    };
    // The right shape, a secret nobody has.
    let forged = {
        let mut parts: Vec<&str> = admin.rsplitn(2, '-').collect();
        parts[0] = "00000000000000000000000000000000";
        format!("{}-{}", parts[1], parts[0])
    };

    let by_role = [
        (Role::Viewer, viewer.as_str()),
        (Role::Deployer, deployer.as_str()),
        (Role::Admin, admin.as_str()),
    ];
    let mut checked = 0;
    let mut problems = Vec::new();
    for route in routes() {
        // Asked again for every route: `POST /v1/cluster/token/rotate` replaces it.
        let join = join_token()?;
        let path = concrete(route.path);
        let m = route.method;
        let mut expect =
            |who: &str, token: Option<&str>, want: &dyn Fn(u16) -> bool| -> Result<()> {
                let (code, body) = call(&lab, m, &path, token)?;
                checked += 1;
                if !want(code) {
                    problems.push(format!("{m} {path} as {who}: {code} {body}"));
                } else if matches!(code, 401 | 403) && !body["code"].is_string() {
                    problems.push(format!(
                        "{m} {path} as {who}: {code} is not a JSON error: {body}"
                    ));
                }
                Ok(())
            };
        let refused = |c: u16| c == 401;
        let past = |c: u16| !matches!(c, 401 | 403);
        match route.access {
            Access::Open => {
                expect("nobody", None, &past)?;
            }
            Access::Role(need) => {
                expect("nobody", None, &refused)?;
                expect("a forged token", Some(&forged), &refused)?;
                expect("the join token", Some(&join), &refused)?;
                for (role, token) in &by_role {
                    if *role >= need {
                        expect(role.as_str(), Some(token), &past)?;
                    } else {
                        expect(role.as_str(), Some(token), &|c| c == 403)?;
                    }
                }
            }
            Access::Agent => {
                expect("nobody", None, &refused)?;
                expect("an admin token", Some(&admin), &refused)?;
                expect("the join token", Some(&join), &past)?;
            }
            Access::Hook => {
                // Hook routes take hook tokens only (tests/tests/autoscale.rs checks those).
                expect("nobody", None, &refused)?;
                expect("an admin token", Some(&admin), &refused)?;
            }
            // Raft RPCs need a member's certificate (mutual TLS) once the member has one: no
            // token of any kind passes over plain HTTP.
            Access::Peer => {
                expect("nobody", None, &refused)?;
                expect("an admin token", Some(&admin), &refused)?;
                expect("the join token", Some(&join), &refused)?;
            }
        }
    }
    // A path no route names: a token first, then 404.
    let (code, _) = call(&lab, "GET", "/v1/nothing/here", None)?;
    ensure!(code == 401, "an unknown path without a token: {code}");
    let (code, _) = call(&lab, "GET", "/v1/nothing/here", Some(&viewer))?;
    ensure!(code == 404, "an unknown path with a token: {code}");
    eprintln!("{} routes, {checked} calls checked", routes().len());
    ensure!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

/// An agent request in the protocol's own encoding (format 2), as the agent sends it.
fn agent_call<T: hoist_proto::format::Codec>(
    lab: &Lab,
    path: &str,
    bearer: &str,
    body: &T,
) -> Result<(u16, Vec<u8>)> {
    use hoist_proto::format::{
        FORMAT_HEADER, OLDEST_FORMAT_HEADER, PROTOBUF_MEDIA_TYPE, VERSION, VERSION_HEADER,
    };
    let r = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()?
        .post(format!("http://{}{path}", lab.addr(0)))
        .bearer_auth(bearer)
        .header("content-type", PROTOBUF_MEDIA_TYPE)
        .header(VERSION_HEADER, VERSION)
        .header(FORMAT_HEADER, hoist_proto::format::CURRENT)
        .header(OLDEST_FORMAT_HEADER, hoist_proto::format::OLDEST)
        .body(body.encode(hoist_proto::format::CURRENT)?)
        .send()?;
    Ok((r.status().as_u16(), r.bytes()?.to_vec()))
}

/// Each node gets a credential of its own when it registers: it acts for that node only, and
/// once a node has one, the join token no longer acts for it (it still registers nodes).
#[test]
fn a_node_credential_acts_for_its_own_node_only() -> Result<()> {
    use hoist_proto::format::Codec;
    use hoist_proto::node::{Heartbeat, RegisterRequest, RegisterResponse, StatusReport};
    let _g = serial();
    let mut lab = Lab::new(1)?;
    lab.start_cluster(1)?;
    let join = lab.get(0, "/v1/cluster/token")?.1["token"]
        .as_str()
        .context("join token")?
        .to_string();
    let register = |id: &str| -> Result<String> {
        let req = RegisterRequest {
            token: join.clone(),
            node_id: Some(id.into()),
            hostname: id.into(),
            address: "192.0.2.7".into(),
            labels: Default::default(),
            capacity: Default::default(),
            agent_version: "test".into(),
            wg_public_key: None,
            wg_endpoint: None,
            csr: None,
        };
        let (code, bytes) = agent_call(&lab, "/v1/agent/register", &join, &req)?;
        ensure!(
            code == 200,
            "register {id}: {code} {}",
            String::from_utf8_lossy(&bytes)
        );
        let resp = RegisterResponse::decode(&bytes, hoist_proto::format::CURRENT)?;
        resp.node_credential.context("no node credential")
    };
    let x = register("x1")?;
    let y = register("y1")?;
    ensure!(x.starts_with("HOISTNODE1-x1-") && x != y);
    let beat = |node: &str| Heartbeat {
        node_id: node.into(),
        term_seen: 0,
        endpoints_applied: 0,
    };
    let report = |node: &str| StatusReport {
        node_id: node.into(),
        term_seen: 0,
        tasks: vec![],
    };
    let (code, _) = agent_call(&lab, "/v1/agent/heartbeat", &x, &beat("x1"))?;
    ensure!(code == 200, "x1 for itself: {code}");
    let (code, body) = agent_call(&lab, "/v1/agent/status", &x, &report("y1"))?;
    ensure!(
        code == 403,
        "x1 reported for y1: {code} {}",
        String::from_utf8_lossy(&body)
    );
    let (code, _) = agent_call(&lab, "/v1/agent/heartbeat", &x, &beat("y1"))?;
    ensure!(code == 403, "x1 beat for y1: {code}");
    let (code, _) = agent_call(&lab, "/v1/agent/status", &join, &report("y1"))?;
    ensure!(
        code == 403,
        "the join token reported for a node with a credential: {code}"
    );
    let (code, _) = agent_call(&lab, "/v1/agent/status", &y, &report("y1"))?;
    ensure!(code == 200, "y1 for itself: {code}");
    let forged = format!("HOISTNODE1-y1-{}", "0".repeat(64));
    let (code, _) = agent_call(&lab, "/v1/agent/status", &forged, &report("y1"))?;
    ensure!(code == 401, "a forged credential: {code}");
    // A new registration replaces the credential: the old one stops acting at once.
    let y2 = register("y1")?;
    let (code, _) = agent_call(&lab, "/v1/agent/status", &y, &report("y1"))?;
    ensure!(code == 401, "a replaced credential: {code}");
    let (code, _) = agent_call(&lab, "/v1/agent/status", &y2, &report("y1"))?;
    ensure!(code == 200, "the new one: {code}");
    Ok(())
}
