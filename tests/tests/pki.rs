//! The cluster PKI as an agent and an attacker on the network see it: join tokens carry the
//! root's digest, members serve TLS under that root on their usual port, a node's certificate
//! (for a key that never left it) acts for that node only, renewals keep the key, and a removed
//! node's certificate stops working at once.

use anyhow::{ensure, Context, Result};
use hoist_proto::format::CURRENT;
use hoist_proto::format::{
    Codec, FORMAT_HEADER, OLDEST_FORMAT_HEADER, PROTOBUF_MEDIA_TYPE, VERSION, VERSION_HEADER,
};
use hoist_proto::node::{
    parse_join_token, CertificateRequest, CertificateResponse, Heartbeat, RegisterRequest,
    RegisterResponse, StatusReport,
};
use hoist_proto::peer_link::{self, Hello, Kind, Status};
use hoist_tests::controller_lab::{serial, Lab};
use hoist_transport::pki;
use hoist_transport::tls::{self, CertRole, Identity, Trust};
use std::time::Duration;

/// A client of the lab's member 0 over TLS with `trust`, presenting `identity`.
fn client(trust: Trust, identity: Option<Identity>) -> Result<reqwest::blocking::Client> {
    hoist_common::init_tls();
    let config = tls::client_config(trust, identity).map_err(anyhow::Error::msg)?;
    Ok(reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .tls_backend_preconfigured(config)
        .build()?)
}

/// POSTs an agent message; answers the status and body.
fn call<T: Codec>(
    http: &reqwest::blocking::Client,
    url: &str,
    bearer: Option<&str>,
    body: &T,
) -> Result<(u16, Vec<u8>)> {
    let mut r = http
        .post(url)
        .header("content-type", PROTOBUF_MEDIA_TYPE)
        .header(VERSION_HEADER, VERSION)
        .header(FORMAT_HEADER, hoist_proto::format::CURRENT)
        .header(OLDEST_FORMAT_HEADER, hoist_proto::format::OLDEST)
        .body(body.encode(hoist_proto::format::CURRENT)?);
    if let Some(b) = bearer {
        r = r.bearer_auth(b);
    }
    let r = r.send()?;
    Ok((r.status().as_u16(), r.bytes()?.to_vec()))
}

fn register_request(token: &str, id: &str, csr: Option<String>) -> RegisterRequest {
    RegisterRequest {
        token: token.into(),
        node_id: Some(id.into()),
        hostname: id.into(),
        address: "192.0.2.9".into(),
        labels: Default::default(),
        capacity: Default::default(),
        agent_version: "test".into(),
        wg_public_key: None,
        wg_endpoint: None,
        csr,
    }
}

fn beat(node: &str) -> Heartbeat {
    Heartbeat {
        node_id: node.into(),
        term_seen: 0,
        endpoints_applied: 0,
    }
}

fn report(node: &str) -> StatusReport {
    StatusReport {
        node_id: node.into(),
        term_seen: 0,
        tasks: vec![],
    }
}

#[test]
fn a_node_certificate_acts_for_its_own_node_only_and_stops_with_the_node() -> Result<()> {
    let _g = serial();
    let mut lab = Lab::new(1)?;
    lab.start_cluster(1)?;
    let token = lab.get(0, "/v1/cluster/token")?.1["token"]
        .as_str()
        .context("join token")?
        .to_string();
    let parts = parse_join_token(&token).map_err(anyhow::Error::msg)?;
    let digest = parts
        .ca_digest
        .clone()
        .context("a HOIST2 token with the CA digest")?;
    let (code, ca) = lab.get(0, "/v1/cluster/ca")?;
    ensure!(code == 200, "GET /v1/cluster/ca: {code} {ca}");
    ensure!(
        ca["digest"] == digest.as_str(),
        "the token's digest is the root's: {ca}"
    );
    let root_pem = ca["certificate"]
        .as_str()
        .context("certificate")?
        .to_string();
    let root = tls::certs_from_pem(&root_pem).map_err(anyhow::Error::msg)?;
    ensure!(tls::ca_digest(&root[0]) == digest);
    let base = format!("https://{}", lab.addr(0));
    // The member signs its own certificate once the CA exists: it serves TLS from then on.
    let pinned = client(Trust::Pinned(digest.clone()), None)?;
    hoist_tests::controller_lab::wait_for("member 0 serving TLS", Duration::from_secs(10), || {
        pinned
            .get(format!("{base}/v1/health"))
            .send()
            .ok()
            .filter(|r| r.status().is_success())
    })?;

    // First contact: only the digest. A wrong one refuses the member before anything is sent.
    let wrong = client(Trust::Pinned("0".repeat(64)), None)?;
    let e = call(
        &wrong,
        &format!("{base}/v1/agent/register"),
        Some(&token),
        &register_request(&token, "x1", None),
    )
    .unwrap_err();
    let e = format!("{e:#}");
    ensure!(
        e.contains("no root with the digest"),
        "a member under another root is refused: {e}"
    );
    let register = |id: &str, key: &str| -> Result<RegisterResponse> {
        let csr = pki::request(key, CertRole::Node, id).map_err(anyhow::Error::msg)?;
        let (code, body) = call(
            &pinned,
            &format!("{base}/v1/agent/register"),
            Some(&token),
            &register_request(&token, id, Some(csr)),
        )?;
        ensure!(
            code == 200,
            "register {id}: {code} {}",
            String::from_utf8_lossy(&body)
        );
        Ok(RegisterResponse::decode(
            &body,
            hoist_proto::format::CURRENT,
        )?)
    };
    let x_key = pki::new_key().map_err(anyhow::Error::msg)?;
    let y_key = pki::new_key().map_err(anyhow::Error::msg)?;
    let x = register("x1", &x_key)?;
    let y = register("y1", &y_key)?;
    ensure!(
        x.node_credential.is_none(),
        "a certificate, not a bearer credential"
    );
    let x_cert = x.certificate.context("x1's certificate")?;
    ensure!(x.ca_certificate.as_deref() == Some(root_pem.as_str()));
    let x_der = tls::certs_from_pem(&x_cert).map_err(anyhow::Error::msg)?;
    let named = tls::identity_of(&x_der[0]).context("the certificate names its node")?;
    ensure!(
        named.role == CertRole::Node && named.id == "x1",
        "{named:?}"
    );
    let life = named.not_after - named.not_before;
    ensure!(
        (24 * 3600..=24 * 3600 + 300).contains(&life),
        "24 h by default (plus 5 minutes back-dated): {life} s"
    );
    let as_node = |cert: &str, key: &str| -> Result<reqwest::blocking::Client> {
        let id =
            Identity::from_pem(&format!("{cert}{root_pem}"), key).map_err(anyhow::Error::msg)?;
        client(Trust::Roots(root.clone()), Some(id))
    };
    let xc = as_node(&x_cert, &x_key)?;
    let yc = as_node(&y.certificate.context("y1's certificate")?, &y_key)?;
    let url = |p: &str| format!("{base}{p}");

    let (code, _) = call(&xc, &url("/v1/agent/heartbeat"), None, &beat("x1"))?;
    ensure!(code == 200, "x1 for itself: {code}");
    let (code, body) = call(&xc, &url("/v1/agent/status"), None, &report("y1"))?;
    ensure!(
        code == 403,
        "x1's certificate reported for y1: {code} {}",
        String::from_utf8_lossy(&body)
    );
    let (code, _) = call(&yc, &url("/v1/agent/status"), None, &report("y1"))?;
    ensure!(code == 200, "y1 for itself: {code}");
    // The join token registers nodes; it does not act for a node that has a certificate,
    // over TLS or not.
    let (code, _) = call(
        &pinned,
        &url("/v1/agent/status"),
        Some(&token),
        &report("x1"),
    )?;
    ensure!(code == 403, "the join token acted for x1: {code}");

    // Renewal: for the same key only.
    let renew = |c: &reqwest::blocking::Client, node: &str, key: &str| -> Result<(u16, Vec<u8>)> {
        let csr = pki::request(key, CertRole::Node, node).map_err(anyhow::Error::msg)?;
        call(
            c,
            &url("/v1/agent/certificate"),
            None,
            &CertificateRequest {
                node_id: node.into(),
                csr,
            },
        )
    };
    let (code, body) = renew(&xc, "x1", &x_key)?;
    ensure!(
        code == 200,
        "renewal: {code} {}",
        String::from_utf8_lossy(&body)
    );
    let renewed = CertificateResponse::decode(&body, hoist_proto::format::CURRENT)?;
    let der = tls::certs_from_pem(&renewed.certificate).map_err(anyhow::Error::msg)?;
    let again = tls::identity_of(&der[0]).context("renewed names")?;
    ensure!(again.id == "x1" && again.key_sha256 == named.key_sha256);
    let (code, _) = renew(&xc, "x1", &pki::new_key().map_err(anyhow::Error::msg)?)?;
    ensure!(code == 403, "a renewal for another key: {code}");
    let (code, _) = renew(&xc, "y1", &y_key)?;
    ensure!(code == 403, "x1 renewing y1's certificate: {code}");

    // Removing the node revokes its certificate: refused at once.
    let (code, v) = lab.send(0, "DELETE", "/v1/nodes/x1", Vec::new(), "application/json")?;
    ensure!(code == 200, "node rm: {code} {v}");
    let (code, body) = call(&xc, &url("/v1/agent/heartbeat"), None, &beat("x1"))?;
    ensure!(
        code == 401,
        "a removed node's certificate: {code} {}",
        String::from_utf8_lossy(&body)
    );
    // Registering again (with the join token) under a new key replaces the old key: the old
    // certificate stays refused, the new one works.
    let x2_key = pki::new_key().map_err(anyhow::Error::msg)?;
    let x2 = register("x1", &x2_key)?;
    let (code, _) = call(&xc, &url("/v1/agent/heartbeat"), None, &beat("x1"))?;
    ensure!(code == 401, "the replaced certificate: {code}");
    let x2c = as_node(&x2.certificate.context("new certificate")?, &x2_key)?;
    let (code, _) = call(&x2c, &url("/v1/agent/heartbeat"), None, &beat("x1"))?;
    ensure!(code == 200, "the new certificate: {code}");

    // A rotated join token: the old one registers no one, the new one does.
    let (code, v) = lab.post(0, "/v1/cluster/token/rotate", &serde_json::json!({}))?;
    ensure!(code == 200, "rotate: {code} {v}");
    let new_token = v["token"].as_str().context("new token")?.to_string();
    ensure!(new_token != token && new_token.contains(&digest));
    let csr = pki::request(&x2_key, CertRole::Node, "z1").map_err(anyhow::Error::msg)?;
    let (code, _) = call(
        &pinned,
        &url("/v1/agent/register"),
        Some(&token),
        &register_request(&token, "z1", Some(csr)),
    )?;
    ensure!(code == 401, "the old token registered a node: {code}");
    Ok(())
}

/// Members call each other over mutual TLS: every member of a 3-member cluster (two joined
/// with `--join`) serves under the cluster's root and keeps its certificate in its data dir;
/// Raft RPCs over plain HTTP, or with a node's certificate (over HTTP or the member link), are
/// refused by every member, while writes commit, with Raft and the forwarded writes on the
/// member link.
#[test]
fn members_talk_raft_over_mutual_tls_only() -> Result<()> {
    let _g = serial();
    let mut lab = Lab::new(3)?;
    lab.start_cluster(3)?;
    lab.wait_voters(3, Duration::from_secs(30))?;
    let digest = lab.wait_tls(0, Duration::from_secs(10))?;
    for i in 0..3 {
        ensure!(
            lab.wait_tls(i, Duration::from_secs(20))? == digest,
            "member {i}'s root"
        );
        let chain = std::fs::read_to_string(lab.data_dir(i).join("tls/member.crt"))
            .with_context(|| format!("member {i}'s certificate file"))?;
        let der = tls::certs_from_pem(&chain).map_err(anyhow::Error::msg)?;
        let who = tls::identity_of(&der[0]).context("names a member")?;
        ensure!(
            who.role == CertRole::Member && who.id == lab.id(i).to_string(),
            "member {i}: {who:?}"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(lab.data_dir(i).join("tls/member.key"))?
            .permissions()
            .mode();
        ensure!(mode & 0o077 == 0, "member {i}'s key is private: {mode:o}");
    }
    // Writes commit (through every member: forwarded ones too).
    for i in 0..3 {
        let (code, v) = lab.post(
            i,
            "/v1/services",
            &serde_json::json!({"name": format!("tls-{i}"), "image": "busybox", "replicas": 0}),
        )?;
        ensure!(
            (200..300).contains(&code),
            "apply through member {i}: {code} {v}"
        );
    }
    // An attacker on the network: plain Raft RPCs are refused everywhere, and so is a node's
    // certificate of this very cluster.
    let token = lab.get(0, "/v1/cluster/token")?.1["token"]
        .as_str()
        .context("join token")?
        .to_string();
    let key = pki::new_key().map_err(anyhow::Error::msg)?;
    let csr = pki::request(&key, CertRole::Node, "evil").map_err(anyhow::Error::msg)?;
    let root_pem = lab.get(0, "/v1/cluster/ca")?.1["certificate"]
        .as_str()
        .context("root")?
        .to_string();
    let pinned = client(Trust::Pinned(digest.clone()), None)?;
    let leader = lab.leader().context("a leader")?;
    let (code, body) = call(
        &pinned,
        &format!("https://{}/v1/agent/register", lab.addr(leader)),
        Some(&token),
        &register_request(&token, "evil", Some(csr)),
    )?;
    ensure!(
        code == 200,
        "register: {code} {}",
        String::from_utf8_lossy(&body)
    );
    let cert = RegisterResponse::decode(&body, hoist_proto::format::CURRENT)?
        .certificate
        .context("a node certificate")?;
    let id = Identity::from_pem(&format!("{cert}{root_pem}"), &key).map_err(anyhow::Error::msg)?;
    let roots = tls::certs_from_pem(&root_pem).map_err(anyhow::Error::msg)?;
    let as_node = client(Trust::Roots(roots.clone()), Some(id.clone()))?;
    let plain = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()?;
    for i in 0..3 {
        for path in ["/raft/propose", "/raft/vote", "/raft/append", "/raft/stall"] {
            let code = plain
                .post(format!("http://{}{path}", lab.addr(i)))
                .body(vec![0u8; 16])
                .send()?
                .status()
                .as_u16();
            ensure!(code == 401, "plain {path} on member {i}: {code}");
            let code = as_node
                .post(format!("https://{}{path}", lab.addr(i)))
                .body(vec![0u8; 16])
                .send()?
                .status()
                .as_u16();
            ensure!(
                code == 403,
                "{path} with a node certificate on member {i}: {code}"
            );
        }
        // Nor does a node's certificate open a member link; and before the caller is known,
        // a frame larger than a hello is not even read.
        let hello = Hello {
            member: 9,
            ..Hello::this_build(9)
        };
        let frame = peer_link::encode_request(Kind::Hello, CURRENT, &hello.to_bytes());
        let refused = link_hello(&lab.addr(i), roots.clone(), id.clone(), &frame)?;
        ensure!(
            refused
                .as_deref()
                .is_some_and(|r| r.contains("a node certificate cannot open a member link")),
            "member link with a node certificate on member {i}: {refused:?}"
        );
        let huge = ((peer_link::MAX_FRAME as u32).to_be_bytes(), [0u8, 2]);
        let frame = [&huge.0[..], &huge.1[..]].concat();
        let refused = link_hello(&lab.addr(i), roots.clone(), id.clone(), &frame)?;
        ensure!(
            refused
                .as_deref()
                .is_some_and(|r| r.contains("over the limit of 4096")),
            "a 64 MiB hello on member {i}: {refused:?}"
        );
    }
    // The members' Raft RPCs and the forwarded writes went over the member link: a persistent
    // connection per peer, not an HTTP request each.
    let leader = lab.leader().context("a leader")?;
    for i in 0..3 {
        let sent = peer_requests(&lab, i)?;
        let link = |kind: &str| sent.get(&(kind.to_string(), "link".into())).copied();
        if i == leader {
            ensure!(
                link("append").unwrap_or(0.0) > 0.0,
                "the leader (member {i}) sent no append on a member link: {sent:?}"
            );
        }
    }
    let forwarded: f64 = (0..3)
        .filter(|&i| i != leader)
        .map(|i| peer_requests(&lab, i))
        .collect::<Result<Vec<_>>>()?
        .iter()
        .filter_map(|sent| sent.get(&("propose".to_string(), "link".to_string())))
        .sum();
    ensure!(
        forwarded > 0.0,
        "the followers forwarded no write on a member link"
    );
    Ok(())
}

/// `hoist_peer_requests_total` of member `i` by (kind, transport).
fn peer_requests(lab: &Lab, i: usize) -> Result<std::collections::BTreeMap<(String, String), f64>> {
    let resp = lab
        .client_builder()
        .timeout(Duration::from_secs(5))
        .build()?
        .get(format!("http://{}/metrics", lab.addr(i)))
        .send()?;
    ensure!(
        resp.status() == 200,
        "metrics of member {i}: {}",
        resp.status()
    );
    let text = resp.text()?;
    let mut out = std::collections::BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("hoist_peer_requests_total{") else {
            continue;
        };
        let (labels, value) = rest.split_once("} ").context("a sample")?;
        let label = |name: &str| {
            labels
                .split(',')
                .find_map(|l| l.strip_prefix(&format!("{name}=\"")))
                .map(|v| v.trim_end_matches('"').to_string())
                .unwrap_or_default()
        };
        out.insert((label("kind"), label("transport")), value.trim().parse()?);
    }
    Ok(out)
}

/// Opens a member link (TLS with the link's ALPN name) to `addr` presenting `identity`, sends
/// `frame` (a hello), and answers the reason of the refusal, or `None` when the member closed
/// the link without an answer (an error if the hello was taken).
fn link_hello(
    addr: &str,
    roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    identity: Identity,
    frame: &[u8],
) -> Result<Option<String>> {
    use std::io::{ErrorKind, Read, Write};
    hoist_common::init_tls();
    let mut config =
        tls::client_config(Trust::Roots(roots), Some(identity)).map_err(anyhow::Error::msg)?;
    config.alpn_protocols = vec![peer_link::ALPN.to_vec()];
    let name = rustls::pki_types::ServerName::try_from(tls::MEMBER_NAME)?;
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name)?;
    let tcp = std::net::TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(frame)?;
    tls.flush()?;
    ensure!(
        tls.conn.alpn_protocol() == Some(peer_link::ALPN),
        "the member does not offer the member link"
    );
    let mut prefix = [0u8; 4];
    match tls.read_exact(&mut prefix) {
        Ok(()) => {}
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            anyhow::bail!("the member neither answered nor closed the link in 5 s")
        }
        Err(_) => return Ok(None),
    }
    let mut payload = vec![0u8; peer_link::payload_len(prefix)?];
    tls.read_exact(&mut payload)?;
    let (status, _, body) = peer_link::decode_answer(&payload)?;
    ensure!(status == Status::Refused, "the hello was taken");
    Ok(Some(String::from_utf8_lossy(body).into_owned()))
}

/// The node certificate of a real agent (its key never left its host) over its life: made at
/// join, renewed before it ends while the node stays ready, and after the agent was off past its
/// end, the agent rejoins with its token and keeps its node id. `hoist node rm` revokes it;
/// with the join token rotated, the removed agent cannot come back.
#[test]
fn an_agent_renews_its_certificate_rejoins_after_expiry_and_stays_out_once_revoked() -> Result<()> {
    use hoist_tests::cluster_lab::ClusterLab;
    use std::os::unix::fs::PermissionsExt;
    use std::time::{SystemTime, UNIX_EPOCH};
    let _g = serial();
    // Short certificates: renewed at 50–80 % of 12 s.
    let mut lab = ClusterLab::start(1, &["--cert-lifetime", "12s"])?;
    ensure!(
        lab.token.starts_with("HOIST2-"),
        "a token with the CA digest: {}",
        lab.token
    );
    // `hoist cluster ca` prints the root the token's digest is of.
    let pem = lab.hoist_ok(&["cluster", "ca"])?;
    let root = tls::certs_from_pem(&pem).map_err(anyhow::Error::msg)?;
    let digest = tls::ca_digest(&root[0]);
    ensure!(
        lab.token.contains(&digest),
        "the token pins the printed root"
    );
    let json: serde_json::Value =
        serde_json::from_str(&lab.hoist_ok(&["-o", "json", "cluster", "ca"])?)?;
    ensure!(json["digest"] == digest.as_str(), "{json}");
    let a = lab.add_agent("pki1", &[])?;
    let node = lab.node_id(a).context("node id")?;
    let tls_dir = lab.agents[a].host.data_dir().join("tls");
    let mode = std::fs::metadata(tls_dir.join("node.key"))?
        .permissions()
        .mode();
    ensure!(mode & 0o077 == 0, "the node's key is private: {mode:o}");
    let held = || -> Option<tls::CertIdentity> {
        let chain = std::fs::read_to_string(tls_dir.join("node.crt")).ok()?;
        tls::identity_of(&tls::certs_from_pem(&chain).ok()?[0])
    };
    let first = lab.wait_until(
        "the agent holds its certificate",
        Duration::from_secs(10),
        || Ok((held(), format!("{:?}", held()))),
    )?;
    ensure!(
        first.role == CertRole::Node && first.id == node,
        "{first:?}"
    );
    let now = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs() as i64
    };
    let ready = |lab: &ClusterLab| -> Result<bool> {
        Ok(lab.nodes()?.get(&node).is_some_and(|(s, _)| s == "ready"))
    };

    // Renewal: a new certificate for the same key, before the old one ends.
    let renewed = lab.wait_until("a renewed certificate", Duration::from_secs(20), || {
        let h = held().filter(|h| h.not_after > first.not_after);
        Ok((h.clone(), format!("{h:?}")))
    })?;
    ensure!(
        renewed.key_sha256 == first.key_sha256,
        "renewal keeps the key"
    );
    ensure!(now() < first.not_after, "renewed before the end");
    ensure!(ready(&lab)?, "the node stays ready through renewal");

    // Off past the end of its certificate: it rejoins with its token, same id.
    lab.kill_agent(a)?;
    let ended = held().context("certificate")?.not_after;
    lab.wait_until(
        "the stopped agent's certificate ends",
        Duration::from_secs(20),
        || {
            Ok((
                (now() > ended).then_some(()),
                format!("now {} end {ended}", now()),
            ))
        },
    )?;
    lab.restart_agent(a)?;
    lab.wait_until(
        "the agent rejoined with a new certificate",
        Duration::from_secs(20),
        || {
            let h = held().filter(|h| h.not_after > now());
            let back =
                h.is_some() && ready(&lab)? && lab.node_id(a).as_deref() == Some(node.as_str());
            Ok((back.then_some(()), format!("{h:?}")))
        },
    )?;

    // Revoked, with the token rotated: the agent is refused and stays out.
    lab.hoist_ok(&["cluster", "token", "--rotate"])?;
    lab.hoist_ok(&["node", "rm", &node])?;
    lab.wait_until(
        "the removed agent is refused",
        Duration::from_secs(20),
        || {
            let log = lab.agents[a].host.agent_log();
            let refused = log.contains("join token's secret is wrong");
            Ok((refused.then_some(()), hoist_tests::tail(&log, 5)))
        },
    )?;
    ensure!(
        !lab.nodes()?.contains_key(&node),
        "a revoked node with a stale token came back"
    );
    Ok(())
}

/// `hoist cluster ca rotate` on a 3-member cluster with a real agent, under a continuous write
/// load through every member (forwarded writes cross member to member over mutual TLS) and
/// with certificates short enough to be renewed meanwhile: no write fails, the node stays
/// ready, and at the end every member's and the node's certificate is under the new root, the
/// old root is trusted by no one, and join and operator tokens carry the new digest.
#[test]
fn the_root_rotates_under_continuous_writes_with_no_failed_write() -> Result<()> {
    use hoist_tests::cluster_lab::ClusterLab;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let _g = serial();
    let mut lab = ClusterLab::start(3, &["--cert-lifetime", "20s"])?;
    let old: serde_json::Value =
        serde_json::from_str(&lab.hoist_ok(&["-o", "json", "cluster", "ca"])?)?;
    let old_digest = old["digest"].as_str().context("digest")?.to_string();
    let old_root = tls::certs_from_pem(old["certificate"].as_str().context("root")?)
        .map_err(anyhow::Error::msg)?;
    ensure!(old["rotation"].is_null(), "no rotation yet: {old}");
    let a = lab.add_agent("rot1", &[])?;
    let node = lab.node_id(a).context("node id")?;
    let tls_dir = lab.agents[a].host.data_dir().join("tls");
    let held = || -> Option<tls::CertIdentity> {
        let chain = std::fs::read_to_string(tls_dir.join("node.crt")).ok()?;
        tls::identity_of(&tls::certs_from_pem(&chain).ok()?[0])
    };
    lab.wait_until(
        "the agent holds its certificate",
        Duration::from_secs(10),
        || Ok((held(), String::new())),
    )?;

    // The load: applies through each member in turn, counting every write that fails.
    let addrs: Vec<String> = (0..3).map(|i| lab.lab.addr(i)).collect();
    let token = lab.lab.token().context("admin token")?;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || -> (u64, Vec<String>) {
            let http = reqwest::blocking::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("a client");
            let (mut done, mut failed) = (0u64, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                let addr = &addrs[done as usize % addrs.len()];
                let spec = serde_json::json!({"name": "rot-load", "image": "busybox",
                    "replicas": 0, "env": {"N": done.to_string()}});
                match http
                    .post(format!("http://{addr}/v1/services"))
                    .bearer_auth(&token)
                    .json(&spec)
                    .send()
                {
                    Ok(r) if r.status().is_success() => {}
                    Ok(r) => failed.push(format!(
                        "{addr}: {} {}",
                        r.status(),
                        r.text().unwrap_or_default()
                    )),
                    Err(e) => failed.push(format!("{addr}: {e}")),
                }
                done += 1;
            }
            (done, failed)
        })
    };
    std::thread::sleep(Duration::from_secs(1));

    // The rotation, followed by the CLI to its end.
    let started = std::time::Instant::now();
    let (code, out, err) =
        lab.hoist(&["-o", "json", "cluster", "ca", "rotate", "--timeout", "90s"])?;
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (writes, failed) = writer
        .join()
        .map_err(|_| anyhow::anyhow!("the writer panicked"))?;
    ensure!(
        code == 0,
        "rotate: {code}\n{out}\n{err}\n{}",
        lab.lab.logs_tail()
    );
    let done: serde_json::Value = serde_json::from_str(&out)?;
    let new_digest = done["digest"].as_str().context("new digest")?.to_string();
    ensure!(
        done["previous_digest"] == old_digest.as_str() && new_digest != old_digest,
        "{done}"
    );
    eprintln!(
        "[lab] rotation ended after {took:?}; {writes} writes meanwhile, {} failed",
        failed.len()
    );
    ensure!(writes >= 20, "the load kept writing: {writes} writes");
    ensure!(
        failed.is_empty(),
        "{} of {writes} writes failed during the rotation: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );

    // Everyone is under the new root, which alone is trusted.
    let new_token = token_with(
        &lab.lab.token().context("admin token")?,
        &old_digest,
        &new_digest,
    );
    let cli = |args: &[&str]| -> Result<String> {
        let (code, out, err) =
            hoist_tests::hoist_cli_as(&lab.controllers_arg(), Some(&new_token), args)?;
        ensure!(code == 0, "hoist {}: {code}\n{out}\n{err}", args.join(" "));
        Ok(out)
    };
    let now: serde_json::Value = serde_json::from_str(&cli(&["-o", "json", "cluster", "ca"])?)?;
    ensure!(
        now["digest"] == new_digest.as_str()
            && now["rotation"].is_null()
            && now["trusted"] == serde_json::json!([new_digest]),
        "{now}"
    );
    let new_root = tls::certs_from_pem(now["certificate"].as_str().context("root")?)
        .map_err(anyhow::Error::msg)?;
    let new_key_id = tls::key_id(&new_root[0]).context("the new root's key id")?;
    // Each member writes its certificate once it has applied the end of the rotation, which
    // the API may answer a moment before.
    let members_under_new_root = || -> Result<Option<()>> {
        for i in 0..3 {
            let chain = std::fs::read_to_string(lab.lab.data_dir(i).join("tls/member.crt"))?;
            let certs = tls::certs_from_pem(&chain).map_err(anyhow::Error::msg)?;
            let leaf = tls::identity_of(&certs[0]).context("member certificate")?;
            ensure!(
                leaf.issuer_key_id == new_key_id,
                "member {i} is under the new root"
            );
            ensure!(
                certs.iter().all(|c| tls::ca_digest(c) != old_digest),
                "member {i} no longer presents the old root"
            );
        }
        Ok(Some(()))
    };
    hoist_tests::wait_for(
        "every member's certificate under the new root alone",
        Duration::from_secs(10),
        members_under_new_root,
    )?;
    let leaf = held().context("the node's certificate")?;
    ensure!(
        leaf.issuer_key_id == new_key_id,
        "the node is under the new root: {leaf:?}"
    );
    let ca_kept = std::fs::read_to_string(tls_dir.join("ca.crt"))?;
    let kept = tls::certs_from_pem(&ca_kept).map_err(anyhow::Error::msg)?;
    ensure!(
        tls::ca_digest(&kept[0]) == new_digest,
        "the agent keeps the new root first"
    );
    ensure!(
        lab.nodes()?.get(&node).is_some_and(|(s, _)| s == "ready"),
        "the node stayed ready"
    );
    // The node keeps renewing under the new root (20 s certificates) and stays ready.
    let renewed = lab.wait_until(
        "the node renews again under the new root",
        Duration::from_secs(30),
        || {
            let h = held().filter(|h| h.not_after > leaf.not_after);
            Ok((h.clone(), format!("{h:?}")))
        },
    )?;
    ensure!(renewed.issuer_key_id == new_key_id);
    ensure!(lab.nodes()?.get(&node).is_some_and(|(s, _)| s == "ready"));
    // A client that trusts only the old root no longer verifies the members; join tokens carry
    // the new digest.
    let stale = client(Trust::Roots(old_root), None)?;
    ensure!(
        stale
            .get(format!("https://{}/v1/health", lab.lab.addr(0)))
            .send()
            .is_err(),
        "a member still verifies under the old root"
    );
    let join = cli(&["cluster", "token"])?;
    ensure!(
        join.contains(&new_digest),
        "the join token carries the new digest: {join}"
    );
    // The first admin token's file follows the root (same secret, new digest).
    let file = lab.lab.token_source();
    lab.wait_until(
        "admin.token carries the new digest",
        Duration::from_secs(10),
        || {
            let t = file();
            Ok((t.clone().filter(|t| *t == new_token), format!("{t:?}")))
        },
    )?;
    Ok(())
}

/// `token` (an operator token) with `new` in place of the root digest `old`.
fn token_with(token: &str, old: &str, new: &str) -> String {
    token.replacen(old, new, 1)
}

/// A member joins with the manager join token alone (no operator token): it checks the cluster
/// by the root's digest in the token before it sends anything, gets its certificate and votes.
/// The manager token adds members and does nothing else; a token whose digest is not this
/// cluster's root makes the joining member stop at once, having sent nothing.
#[test]
fn a_member_joins_with_the_manager_token_after_checking_the_cluster() -> Result<()> {
    let _g = serial();
    let mut lab = Lab::new(3)?;
    lab.start_cluster(1)?;
    let digest = lab.wait_tls(0, Duration::from_secs(10))?;
    let (code, v) = lab.get(0, "/v1/cluster/token?role=manager")?;
    ensure!(code == 200, "manager token: {code} {v}");
    let manager = v["token"].as_str().context("token")?.to_string();
    let worker = lab.get(0, "/v1/cluster/token")?.1["token"]
        .as_str()
        .context("token")?
        .to_string();
    let parts = parse_join_token(&manager).map_err(anyhow::Error::msg)?;
    ensure!(parts.ca_digest.as_deref() == Some(digest.as_str()) && manager != worker);
    let (code, again) = lab.get(0, "/v1/cluster/token?role=manager")?;
    ensure!(
        code == 200 && again["token"] == manager.as_str(),
        "made once: {again}"
    );

    // Nothing but joining: no operator route, no node registration.
    let plain = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()?;
    let code = plain
        .get(format!("http://{}/v1/services", lab.addr(0)))
        .bearer_auth(&manager)
        .send()?
        .status()
        .as_u16();
    ensure!(code == 401, "the manager token read services: {code}");
    let (code, _) = call(
        &plain,
        &format!("http://{}/v1/agent/register", lab.addr(0)),
        Some(&manager),
        &register_request(&manager, "m1", None),
    )?;
    ensure!(code == 401, "the manager token registered a node: {code}");
    // The worker token adds no member.
    let code = plain
        .post(format!("http://{}/v1/cluster/members", lab.addr(0)))
        .bearer_auth(&worker)
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"id": {}, "address": "{}"}}"#,
            lab.id(1),
            lab.addr(1)
        ))
        .send()?
        .status()
        .as_u16();
    ensure!(code == 401, "the worker token added a member: {code}");

    // A token whose digest is another root: the member stops before sending anything.
    let wrong = hoist_proto::node::JoinTokenParts {
        ca_digest: Some("ab".repeat(32)),
        ..parts.clone()
    }
    .encode();
    let seed = lab.addr(0);
    // (It may stop before it answers its first health check: only its exit counts.)
    let _ = lab.start(2, &["--join", &seed, "--token", &wrong]);
    // (`wait_exit` fails if it still runs, and answers whether it exited successfully.)
    ensure!(
        !lab.wait_exit(2, Duration::from_secs(20))?,
        "a member with another cluster's digest must stop with an error"
    );
    let log = std::fs::read_to_string(lab.log_path(2))?;
    ensure!(
        log.contains("not a member of the cluster the token is for"),
        "{}",
        hoist_tests::tail(&log, 5)
    );
    ensure!(
        !lab.status(0)?["members"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|m| m["id"] == lab.id(2)),
        "the member was added"
    );

    // The right one: the member joins, with its certificate from the cluster.
    lab.start(1, &["--join", &seed, "--token", &manager])?;
    lab.wait_voters(2, Duration::from_secs(30))?;
    ensure!(lab.wait_tls(1, Duration::from_secs(10))? == digest);
    let log = std::fs::read_to_string(lab.log_path(1))?;
    ensure!(
        log.contains("this member has its certificate"),
        "{}",
        hoist_tests::tail(&log, 10)
    );
    Ok(())
}

/// An operator token carries the root's digest (the first admin token too): the CLI talks TLS
/// to members it verified by it (no trust on first use) and keeps the root at login; a token
/// whose digest is not this cluster's root makes the CLI stop before it sends the token.
#[test]
fn the_cli_verifies_the_cluster_by_the_digest_in_an_operator_token() -> Result<()> {
    let _g = serial();
    let mut lab = Lab::new(1)?;
    lab.start_cluster(1)?;
    let digest = lab.wait_tls(0, Duration::from_secs(10))?;
    let admin = lab.token().context("the first admin token")?;
    ensure!(
        admin.starts_with("HOISTOP2-") && admin.contains(&digest),
        "the first admin token pins the root: {admin}"
    );
    let addr = lab.addr(0);
    let (code, out, err) = hoist_tests::hoist_cli_as(&addr, Some(&admin), &["service", "ls"])?;
    ensure!(code == 0, "service ls: {code}\n{out}\n{err}");
    // A token made by an admin carries it too.
    let (code, v) = lab.post(
        0,
        "/v1/tokens",
        &serde_json::json!({"name": "pki-viewer", "role": "viewer"}),
    )?;
    ensure!(code == 201, "token create: {code} {v}");
    let viewer = v["token"].as_str().context("token")?.to_string();
    ensure!(viewer.starts_with("HOISTOP2-") && viewer.contains(&digest));
    // The same token with another digest: refused by the CLI itself, at the handshake.
    let forged = admin.replacen(&digest, &"cd".repeat(32), 1);
    let (code, out, err) = hoist_tests::hoist_cli_as(&addr, Some(&forged), &["service", "ls"])?;
    ensure!(code != 0, "a token for another root was sent: {out}");
    ensure!(err.contains(tls::WRONG_ROOT), "the CLI says why: {err}");
    // Login keeps the root, fetched over the verified connection.
    let (code, out, err) =
        hoist_tests::hoist_cli_as(&addr, Some(&viewer), &["-o", "json", "cluster", "login"])?;
    ensure!(code == 0, "login: {code}\n{out}\n{err}");
    let file: serde_json::Value = serde_json::from_str(&out)?;
    let kept: serde_json::Value = serde_json::from_slice(&std::fs::read(
        file["file"].as_str().context("credentials file")?,
    )?)?;
    let pem = kept["ca_certificate"].as_str().context("the kept root")?;
    let root = tls::certs_from_pem(pem).map_err(anyhow::Error::msg)?;
    ensure!(
        tls::ca_digest(&root[0]) == digest,
        "the kept root is the token's"
    );
    let (code, _, err) = hoist_tests::hoist_cli_as(&addr, None, &["cluster", "logout"])?;
    ensure!(code == 0, "logout: {err}");
    Ok(())
}
