//! `hoist cluster ca [rotate]`: the cluster's root certificate, and its rotation.
//!
//! A rotation answers at once on the controllers' side; this command then follows it until
//! every member and live node holds a certificate under the new root (the leader ends it then),
//! printing who is still waited for. It verifies the members by the new root from the start:
//! during the rotation their chains carry both roots, after it only the new one.

use crate::controller_client::{report, ControllerClient};
use reqwest::Method;
use serde_json::Value;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Subcommand)]
pub enum CaCmd {
    /// Replace the cluster's root CA with a new one (admins), as `docker swarm ca --rotate` does.
    /// The new root is cross-signed by the current one, and both are trusted while members
    /// and nodes move to certificates under the new one: members at once, agents at their next
    /// heartbeat. Nothing is refused meanwhile. The rotation ends by itself when every member
    /// and every node that is not down is under the new root; the old root is then no longer
    /// trusted, and join tokens carry the new root's digest (`hoist cluster token`). A node
    /// that was down by then joins again with a new token. Waits and shows progress unless
    /// `--detach`.
    Rotate {
        /// Start the rotation and return at once (`hoist cluster ca -o json` shows progress).
        #[arg(long)]
        detach: bool,
        /// How long to wait for the rotation to end before giving up waiting (it goes on).
        #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
}

/// `hoist cluster ca`: the root certificate (PEM), or everything with `-o json`.
pub async fn show(client: &ControllerClient, json: bool) -> anyhow::Result<i32> {
    match client
        .json::<Value>(Method::GET, "/v1/cluster/ca", None)
        .await
    {
        Ok(ca) if json => println!("{}", serde_json::to_string_pretty(&ca)?),
        Ok(ca) => {
            print!("{}", ca["certificate"].as_str().unwrap_or_default());
            if let Some(line) = progress_line(&ca) {
                eprintln!("a rotation of the root is going on: {line}");
            }
        }
        Err(e) => return Ok(report(&e)),
    }
    Ok(0)
}

/// How many failed looks in a row end the following of a rotation.
const MAX_FAILURES: u32 = 10;

/// `hoist cluster ca rotate`.
pub async fn rotate(
    client: ControllerClient,
    detach: bool,
    timeout: Duration,
    json: bool,
) -> anyhow::Result<i32> {
    let started = match client
        .json::<Value>(Method::POST, "/v1/cluster/ca/rotate", None)
        .await
    {
        Ok(v) => v,
        Err(e) => return Ok(report(&e)),
    };
    let digest = started["digest"].as_str().unwrap_or_default().to_string();
    let previous = started["previous_digest"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if !json {
        eprintln!("rotating the cluster's root CA: sha256 {previous} → {digest}");
    }
    // From now on, members are verified by the new root: their chains carry it during the
    // rotation and after. The controllers do not read the digest part of an operator token.
    let token =
        crate::credentials::token().and_then(|t| crate::credentials::with_ca_digest(t, &digest));
    let client = match &token {
        Some(t) => client.with_token(t)?,
        None => client,
    };
    if detach {
        if json {
            println!("{}", serde_json::to_string_pretty(&started)?);
        } else {
            eprintln!(
                "the rotation goes on by itself: `hoist cluster ca -o json` shows who is left"
            );
        }
        return Ok(0);
    }
    let deadline = Instant::now() + timeout;
    let mut said = String::new();
    let mut failures = 0u32;
    let root = loop {
        match client
            .json::<Value>(Method::GET, "/v1/cluster/ca", None)
            .await
        {
            Ok(ca) if ca["digest"] == digest.as_str() && ca["rotation"].is_null() => break ca,
            Ok(ca) if ca["digest"] != digest.as_str() => {
                eprintln!(
                    "error: the cluster's root is now sha256 {} (another rotation?)",
                    ca["digest"].as_str().unwrap_or("?")
                );
                return Ok(1);
            }
            Ok(ca) => {
                failures = 0;
                if let Some(line) = progress_line(&ca).filter(|l| *l != said) {
                    if !json {
                        eprintln!("{line}");
                    }
                    said = line;
                }
            }
            // A leader change or a member restarting: asked again, a few times.
            Err(_) if Instant::now() < deadline && failures < MAX_FAILURES => failures += 1,
            Err(e) => {
                if token.is_none() {
                    eprintln!(
                        "note: without an operator token, credentials under the previous root \
                         (a client certificate and its ca.crt) stop verifying once the rotation \
                         ends: make new ones with a token (`hoist token cert`)"
                    );
                }
                return Ok(report(&e));
            }
        }
        if Instant::now() >= deadline {
            eprintln!(
                "error: the rotation has not ended after {}: it goes on by itself; `hoist cluster \
                 ca -o json` shows who is left (a node that cannot renew: `hoist node rm` it)",
                humantime::format_duration(timeout)
            );
            return Ok(1);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let kept = keep_credentials(&previous, token.as_deref(), &root);
    if json {
        let mut out = started;
        out["done"] = Value::Bool(true);
        out["credentials_updated"] = Value::Bool(kept);
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(0);
    }
    eprintln!(
        "done: every member and live node holds a certificate under the new root; the previous \
         root is no longer trusted."
    );
    eprintln!(
        "join tokens now carry the new digest: `hoist cluster token` (and `--role manager`) \
         prints them. Operator tokens keep their secret; their digest part is now {digest} \
         (HOISTOP2-<cluster>-{digest}-<id>-<secret>){}.",
        if kept {
            ", and the saved credentials were updated"
        } else {
            ""
        }
    );
    Ok(0)
}

/// Updates the saved credentials (`hoist cluster login`) after a rotation from `previous`: the
/// token with the new digest, and the new root. Answers whether it did.
fn keep_credentials(previous: &str, token: Option<&str>, ca: &Value) -> bool {
    let Ok(Some(mut saved)) = crate::credentials::saved() else {
        return false;
    };
    let (Some(token), Some(cert)) = (token, ca["certificate"].as_str()) else {
        return false;
    };
    if crate::credentials::ca_digest_of(&saved.token) != Some(previous)
        || crate::credentials::with_ca_digest(&saved.token, ca["digest"].as_str().unwrap_or(""))
            .as_deref()
            != Some(token)
    {
        return false;
    }
    saved.token = token.to_string();
    saved.ca_certificate = Some(cert.to_string());
    crate::credentials::save(&saved).is_ok()
}

/// One line of a rotation's progress, from `GET /v1/cluster/ca`; `None` when none is going on.
pub fn progress_line(ca: &Value) -> Option<String> {
    let r = ca.get("rotation").filter(|r| !r.is_null())?;
    let count = |what: &str| -> (String, Vec<String>) {
        let c = &r[what];
        if c.is_null() {
            return ("?".into(), Vec::new());
        }
        let waiting = c["waiting"]
            .as_object()
            .map(|w| {
                w.iter()
                    .map(|(who, why)| {
                        format!(
                            "{} {who} ({})",
                            &what[..what.len() - 1],
                            why.as_str().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        (format!("{}/{}", c["done"], c["total"]), waiting)
    };
    let (members, mut waiting) = count("members");
    let (nodes, more) = count("nodes");
    waiting.extend(more);
    let mut line = format!("under the new root: members {members}, nodes {nodes}");
    if !waiting.is_empty() {
        line.push_str("; waiting for ");
        line.push_str(&waiting.join(", "));
    }
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_says_who_is_left() {
        let ca = serde_json::json!({"digest": "4d", "rotation": {"previous_digest": "3c",
            "members": {"done": 2, "total": 3, "waiting": {"3": "its certificate is under the previous root"}},
            "nodes": {"done": 1, "total": 1, "waiting": {}}}});
        assert_eq!(
            progress_line(&ca).unwrap(),
            "under the new root: members 2/3, nodes 1/1; waiting for member 3 (its certificate is under the previous root)"
        );
        let early = serde_json::json!({"rotation": {"previous_digest": "3c", "members": null, "nodes": null}});
        assert_eq!(
            progress_line(&early).unwrap(),
            "under the new root: members ?, nodes ?"
        );
        assert!(progress_line(&serde_json::json!({"rotation": null})).is_none());
    }
}
