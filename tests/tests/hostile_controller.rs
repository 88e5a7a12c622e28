//! The controller's operator API against hostile clients, on a real one-member cluster with
//! hand-written HTTP: no or a foreign content type (415), a key given twice in any JSON object
//! (400), image references no agent could read and specs beyond what agents take (422 naming the
//! field). Nothing refused is stored.

use anyhow::{ensure, Context, Result};
use hoist_tests::controller_lab::Lab;
use hoist_tests::raw_http::{self, Answer};
use serde_json::{json, Value};
use std::time::Duration;

struct Api {
    addr: String,
    auth: String,
}

impl Api {
    fn start(lab: &mut Lab) -> Result<Api> {
        lab.start_cluster(1)?;
        let token = lab.wait_token(Duration::from_secs(15))?;
        Ok(Api {
            addr: lab.addr(0),
            auth: format!("Bearer {token}"),
        })
    }

    fn send(&self, method: &str, path: &str, ct: Option<&str>, body: &[u8]) -> Result<Answer> {
        raw_http::tcp(
            &self.addr,
            method,
            path,
            ct,
            body,
            &[("Authorization", &self.auth)],
        )
    }

    fn post(&self, path: &str, ct: Option<&str>, body: &[u8]) -> Result<Answer> {
        self.send("POST", path, ct, body)
    }

    fn post_json(&self, path: &str, body: &Value) -> Result<Answer> {
        self.post(path, JSON, &serde_json::to_vec(body)?)
    }
}

const JSON: Option<&str> = Some("application/json");

/// `a` has `status` and a JSON error whose message contains `needle` (and names `field`).
fn refused(a: &Answer, status: u16, field: Option<&str>, needle: &str) -> Result<()> {
    let v = a.json();
    ensure!(
        a.status == status
            && v["message"].as_str().unwrap_or("").contains(needle)
            && (field.is_none() || v["field"].as_str() == field),
        "expected {status} ({field:?}) with {needle:?}, got {} {}",
        a.status,
        a.body
    );
    Ok(())
}

fn service_names(api: &Api) -> Result<Vec<String>> {
    let a = api.send("GET", "/v1/services", None, b"")?;
    ensure!(a.status == 200, "list: {} {}", a.status, a.body);
    Ok(a.json()
        .as_array()
        .context("a list")?
        .iter()
        .map(|s| s["name"].as_str().unwrap_or_default().to_string())
        .collect())
}

#[test]
fn operator_api_refuses_hostile_bodies() -> Result<()> {
    let mut lab = Lab::new(1)?;
    let api = Api::start(&mut lab)?;
    let web = br#"{"name":"web","image":"busybox:latest","replicas":0}"#;

    // Content types: only application/json, with at most charset=utf-8.
    for ct in [
        None,
        Some("application/x-www-form-urlencoded"),
        Some("application/json; charset=utf-16"),
        Some("text/plain"),
        Some("application/vnd.api+json"),
    ] {
        refused(
            &api.post("/v1/services", ct, web)?,
            415,
            None,
            "content-type must be application/json",
        )?;
    }
    ensure!(service_names(&api)?.is_empty(), "a 415 applied a spec");
    let a = api.post("/v1/services", Some("application/json; charset=utf-8"), web)?;
    ensure!(a.status == 200, "apply: {} {}", a.status, a.body);

    // Duplicate keys: a field and a map key alike, at any depth, on every JSON route.
    refused(
        &api.post(
            "/v1/services",
            JSON,
            br#"{"name":"web2","image":"busybox","name":"web3"}"#,
        )?,
        400,
        None,
        "duplicate key \"name\"",
    )?;
    refused(
        &api.post(
            "/v1/services",
            JSON,
            br#"{"name":"web2","image":"busybox","env":{"A":"1","A":"2"}}"#,
        )?,
        400,
        Some("env"),
        "env: duplicate key \"A\"",
    )?;
    refused(
        &api.post(
            "/v1/services/web/scale",
            JSON,
            br#"{"replicas":1,"replicas":0}"#,
        )?,
        400,
        None,
        "duplicate key \"replicas\"",
    )?;
    refused(
        &api.post("/v1/services/web/scale", None, br#"{"replicas":1}"#)?,
        415,
        None,
        "content-type",
    )?;
    refused(
        &api.post(
            "/v1/stacks",
            JSON,
            br#"{"name":"st","services":[{"name":"st_a","image":"busybox","labels":{"x":"1","x":"2"}}]}"#,
        )?,
        400,
        Some("services[0].labels"),
        "duplicate key \"x\"",
    )?;
    ensure!(
        service_names(&api)? == ["web"],
        "a refused body changed the services: {:?}",
        service_names(&api)?
    );

    // Image references the agents could not read: refused at apply, naming the field.
    for image in ["a\u{0}b", "../../../../etc/shadow", "Upper/Case"] {
        refused(
            &api.post_json("/v1/services", &json!({"name": "bad", "image": image}))?,
            422,
            Some("image"),
            "is not an image reference",
        )?;
        refused(
            &api.post_json(
                "/v1/stacks",
                &json!({"name": "st", "services": [
                    {"name": "st_ok", "image": "busybox"},
                    {"name": "st_bad", "image": image},
                ]}),
            )?,
            422,
            Some("services[1].image"),
            "is not an image reference",
        )?;
    }

    // Sizes every agent would refuse: refused here, before any replica is placed.
    let labels: serde_json::Map<String, Value> =
        (0..1_000).map(|i| (format!("l{i}"), json!(""))).collect();
    refused(
        &api.post_json(
            "/v1/services",
            &json!({"name": "big", "image": "busybox", "labels": labels}),
        )?,
        422,
        Some("labels"),
        "1000 labels, at most 984",
    )?;
    refused(
        &api.post_json(
            "/v1/services",
            &json!({"name": "big", "image": "busybox", "args": ["x".repeat(132_000)]}),
        )?,
        422,
        Some("args[0]"),
        "above the kernel's limit",
    )?;
    let mounts: Vec<Value> = (0..1_001)
        .map(|i| json!({"type": "tmpfs", "target": format!("/t{i}")}))
        .collect();
    refused(
        &api.post_json(
            "/v1/services",
            &json!({"name": "big", "image": "busybox", "mounts": mounts}),
        )?,
        422,
        Some("mounts"),
        "1001 mounts, at most 1000",
    )?;
    ensure!(
        service_names(&api)? == ["web"],
        "a refused spec was stored: {:?}",
        service_names(&api)?
    );
    let stacks = api.send("GET", "/v1/stacks", None, b"")?;
    ensure!(
        stacks.json() == json!([]),
        "a refused stack was stored: {}",
        stacks.body
    );
    Ok(())
}

/// Reads until the server closes the connection; answers how long that took and what came.
fn until_closed(s: &mut std::net::TcpStream, within: Duration) -> Result<(Duration, Vec<u8>)> {
    use std::io::Read;
    s.set_read_timeout(Some(within))?;
    let start = std::time::Instant::now();
    let mut got = Vec::new();
    s.read_to_end(&mut got)
        .with_context(|| format!("still open after {within:?}"))?;
    Ok((start.elapsed(), got))
}

/// Slow and idle clients cannot hold the listener: a half-sent request and an idle connection
/// are closed at `--header-read-timeout`, and past `--max-connections` a new client waits (in the
/// kernel's queue) until one closes, then is served.
#[test]
fn half_sent_and_idle_connections_are_closed_and_the_connection_limit_holds() -> Result<()> {
    use std::io::Write;
    use std::net::TcpStream;
    let mut lab = Lab::new(1)?;
    lab.flags.0 = ["--header-read-timeout", "1s", "--max-connections", "32"]
        .map(String::from)
        .to_vec();
    let api = Api::start(&mut lab)?;

    let mut half = TcpStream::connect(&api.addr)?;
    half.write_all(b"GET /v1/health HTTP/1.1\r\nHost: hoist\r\nX-Slow:")?;
    let (took, _) = until_closed(&mut half, Duration::from_secs(10))?;
    ensure!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(5),
        "a half-sent request was closed after {took:?}"
    );

    // 32 connections that say nothing hold every slot; the 33rd is served once they time out.
    let idle: Vec<TcpStream> = (0..32)
        .map(|_| TcpStream::connect(&api.addr))
        .collect::<std::io::Result<_>>()?;
    let mut late = TcpStream::connect(&api.addr)?;
    late.write_all(&raw_http::request_bytes(
        "GET",
        "/v1/health",
        None,
        b"",
        &[],
    ))?;
    let (took, answer) = until_closed(&mut late, Duration::from_secs(10))?;
    let answer = String::from_utf8_lossy(&answer);
    ensure!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    ensure!(
        took >= Duration::from_millis(500),
        "served past the limit at once ({took:?})"
    );
    for mut s in idle {
        let (took, _) = until_closed(&mut s, Duration::from_secs(5))?;
        ensure!(took < Duration::from_secs(5));
    }
    // And the listener serves as before.
    let a = api.send("GET", "/v1/services", None, b"")?;
    ensure!(a.status == 200, "{} {}", a.status, a.body);
    Ok(())
}
