//! `hoist token create|ls|rm` (operators' tokens, admins only), `hoist token cert` (a client
//! certificate of one's own token), `hoist cluster login|logout` (keep a token for later
//! commands), and `hoist cluster audit` (who wrote what).

use crate::controller_client::{report, ControllerClient};
use crate::credentials::{self, Saved};
use crate::output;
use reqwest::Method;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const TOKEN_EXAMPLES: &str = "\
Roles:
  viewer    reads everything but the audit log, tokens and snapshots
  deployer  a viewer who also applies, scales, rolls back and removes services and stacks,
            and runs commands in replicas (hoist service exec)
  admin     everything: tokens, members, nodes, snapshots, join tokens, the audit log

Examples:
  hoist token create ci --role deployer     # prints the token once
  HOIST_TOKEN=HOISTOP2-... hoist service ls
  hoist token ls
  hoist token rm ci
  hoist token cert                          # a client certificate instead of the token";

pub const CERT_EXAMPLES: &str = "\
The certificate acts as the token it was made with (its role; its name in the audit log) until
it ends or the token is removed (`hoist token rm`). Its private key is made here and never sent.
Later hoist commands use the files in the config dir by themselves when no token is given (a
token, from --token, HOIST_TOKEN or `hoist cluster login`, comes first); elsewhere, name them
with `hoist --cert FILE --key FILE ...` (or HOIST_CERT, HOIST_KEY). Renew before the end: the
certificate itself authenticates `hoist token cert`.

Examples:
  HOIST_TOKEN=HOISTOP2-... hoist token cert            # into the config dir, for 24 h
  hoist token cert --lifetime 30d --out ./ci-certs     # renew, elsewhere, for 30 days
  hoist --cert ./ci-certs/operator.crt --key ./ci-certs/operator.key service ls
  curl --cacert ca.crt --cert operator.crt --key operator.key https://MEMBER:7070/v1/services";

/// `hoist token ...`
#[derive(Debug, clap::Subcommand)]
pub enum TokenCmd {
    /// Make an operator token; it is printed once and never shown again.
    Create {
        /// A unique name (lowercase letters, digits, `-`, `_`, `.`): the audit log names it.
        name: String,
        /// What it may do: admin, deployer or viewer.
        #[arg(long, value_parser = ["admin", "deployer", "viewer"])]
        role: String,
    },
    /// List operator tokens: names, roles, when made and last used (never their secrets).
    Ls,
    /// Revoke a token at once (the last admin token cannot be removed).
    Rm { name: String },
    /// Get a client certificate of your own token, to use instead of it (mutual TLS).
    ///
    /// Writes operator.key (made here, 0600), operator.crt (the certificate, then the
    /// cluster's root) and ca.crt (the root). Any role may; the token, or a current
    /// certificate of it, is the credential.
    #[command(after_help = CERT_EXAMPLES)]
    Cert {
        /// Where to write the files (default: the CLI's config dir, where later commands find
        /// them: $HOIST_CONFIG_DIR, else ~/.config/hoist).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// How long it lives, e.g. 12h or 30d (default: the cluster's --cert-lifetime, 24 h
        /// unless set; at most 90 days).
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        lifetime: Option<Duration>,
    },
}

#[derive(Debug, Deserialize, serde::Serialize)]
struct TokenView {
    name: String,
    role: String,
    id: String,
    created_ms: u64,
    created_by: String,
    last_used_ms: u64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub(crate) fn ago(ms: u64, now: u64) -> String {
    if ms == 0 {
        return "never".into();
    }
    format!(
        "{} ago",
        output::human_duration(Duration::from_millis(now.saturating_sub(ms)))
    )
}

pub async fn run(cmd: TokenCmd, controllers: &[String], json: bool) -> anyhow::Result<i32> {
    let client = ControllerClient::new(controllers)?;
    match cmd {
        TokenCmd::Create { name, role } => {
            let body = serde_json::json!({ "name": name, "role": role });
            match client
                .json::<serde_json::Value>(Method::POST, "/v1/tokens", Some(&body))
                .await
            {
                Ok(v) if json => output::json(&v),
                Ok(v) => {
                    eprintln!(
                        "token {name} ({role}), shown once: keep it (HOIST_TOKEN, --token, or `hoist cluster login`)"
                    );
                    println!("{}", v["token"].as_str().unwrap_or_default());
                }
                Err(e) => return Ok(report(&e)),
            }
        }
        TokenCmd::Ls => {
            let header = ["NAME", "ROLE", "ID", "CREATED", "CREATED BY", "LAST USED"];
            return list(&client, "/v1/tokens", json, &header, |t: TokenView, now| {
                vec![
                    t.name,
                    t.role,
                    t.id,
                    ago(t.created_ms, now),
                    t.created_by,
                    ago(t.last_used_ms, now),
                ]
            })
            .await;
        }
        TokenCmd::Cert { out, lifetime } => return cert(&client, out, lifetime, json).await,
        TokenCmd::Rm { name } => {
            match client
                .call(Method::DELETE, &format!("/v1/tokens/{name}"), None)
                .await
            {
                Ok(_) if json => output::json(&serde_json::json!({ "removed": name })),
                Ok(_) => println!("removed token {name}"),
                Err(e) => return Ok(report(&e)),
            }
        }
    }
    Ok(0)
}

/// What `POST /v1/tokens/certificate` answers.
#[derive(Debug, Deserialize)]
struct SignedCertificate {
    certificate: String,
    ca_certificate: String,
    name: String,
    role: String,
    not_after_ms: u64,
}

/// `hoist token cert`: a new key, its request signed by the cluster for the caller's token, and
/// the files written into `out` (default: the config dir).
async fn cert(
    client: &ControllerClient,
    out: Option<PathBuf>,
    lifetime: Option<Duration>,
    json: bool,
) -> anyhow::Result<i32> {
    // The root written to ca.crt is trusted from then on: it must come over a connection
    // verified by the token's digest or the current certificate's root, never over plain HTTP.
    if let Some(plain) = client.bases().iter().find(|b| !b.starts_with("https://")) {
        anyhow::bail!(
            "{plain} is not reached over TLS, and the root kept with the certificate must come \
             from a member verified first: use an operator token that carries the cluster's \
             root digest (HOISTOP2-...) or a current client certificate, and addresses without \
             http://"
        );
    }
    let dir = out.unwrap_or_else(crate::private_file::config_dir);
    let key = hoist_transport::pki::new_key().map_err(anyhow::Error::msg)?;
    let csr =
        hoist_transport::pki::request(&key, hoist_transport::tls::CertRole::Operator, "hoist")
            .map_err(anyhow::Error::msg)?;
    let mut body = serde_json::json!({ "csr": csr });
    if let Some(l) = lifetime {
        body["lifetime_s"] = serde_json::json!(l.as_secs().max(1));
    }
    let signed: SignedCertificate = match client
        .json(Method::POST, "/v1/tokens/certificate", Some(&body))
        .await
    {
        Ok(s) => s,
        Err(e) => return Ok(report(&e)),
    };
    check_signed(&signed, &csr)?;
    let written = write_cert_files(&dir, &key, &signed)?;
    let until =
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(signed.not_after_ms));
    if json {
        output::json(&serde_json::json!({
            "name": signed.name, "role": signed.role, "not_after_ms": signed.not_after_ms,
            "certificate": written[0], "key": written[1], "ca_certificate": written[2],
        }));
    } else {
        println!(
            "a client certificate of token {} ({}), valid until {until}, in {}:\n  {}  \
             the certificate, then the cluster's root\n  {}  its private key (never sent)\n  \
             {}  the cluster's root\n{}",
            signed.name,
            signed.role,
            dir.display(),
            written[0].display(),
            written[1].display(),
            written[2].display(),
            usage_hint(&dir, &written),
        );
    }
    Ok(0)
}

/// The answer must be a certificate of an operator for the key just made.
fn check_signed(signed: &SignedCertificate, csr: &str) -> anyhow::Result<()> {
    let der = hoist_transport::tls::certs_from_pem(&signed.certificate)
        .map_err(|e| anyhow::anyhow!("the controller's answer holds no certificate: {e}"))?;
    let who = hoist_transport::tls::identity_of(&der[0])
        .filter(|w| w.role == hoist_transport::tls::CertRole::Operator)
        .ok_or_else(|| anyhow::anyhow!("the controller's answer is not an operator certificate"))?;
    let asked = hoist_transport::pki::request_key_sha256(csr).map_err(anyhow::Error::msg)?;
    anyhow::ensure!(
        who.key_sha256 == asked,
        "the controller's certificate is for another key than the one made here"
    );
    hoist_transport::tls::certs_from_pem(&signed.ca_certificate)
        .map_err(|e| anyhow::anyhow!("the controller's answer holds no root: {e}"))?;
    Ok(())
}

/// Writes ca.crt, operator.key and operator.crt into `dir`, each replaced whole (0600);
/// answers their paths (certificate, key, root).
fn write_cert_files(
    dir: &Path,
    key: &str,
    signed: &SignedCertificate,
) -> anyhow::Result<[PathBuf; 3]> {
    let cert_path = dir.join(credentials::CERT_FILE);
    let key_path = dir.join(credentials::KEY_FILE);
    let ca_path = dir.join(credentials::CA_FILE);
    let chain = format!(
        "{}\n{}\n",
        signed.certificate.trim_end(),
        signed.ca_certificate.trim_end()
    );
    for (path, bytes) in [
        (&ca_path, format!("{}\n", signed.ca_certificate.trim_end())),
        (&key_path, key.to_string()),
        (&cert_path, chain),
    ] {
        crate::private_file::write(path, bytes.as_bytes()).map_err(anyhow::Error::msg)?;
    }
    Ok([cert_path, key_path, ca_path])
}

/// How to use the files: by themselves from the config dir, else with --cert/--key; and curl.
fn usage_hint(dir: &Path, [cert, key, ca]: &[PathBuf; 3]) -> String {
    let hoist = if dir == crate::private_file::config_dir() {
        "hoist commands use them when no token is given (unset HOIST_TOKEN; `hoist cluster \
         logout` forgets a kept token)"
            .to_string()
    } else {
        format!(
            "use them with: hoist --cert {} --key {} COMMAND",
            cert.display(),
            key.display()
        )
    };
    format!(
        "{hoist}\nor: curl --cacert {} --cert {} --key {} https://MEMBER/v1/services",
        ca.display(),
        cert.display(),
        key.display()
    )
}

#[derive(Debug, Deserialize)]
struct WhoAmI {
    name: Option<String>,
    role: Option<String>,
    cluster_id: Option<String>,
}

/// `hoist cluster login`: checks the token (`given` by `--token` or `HOIST_TOKEN`, else read
/// from standard input) with the controllers and keeps it.
pub async fn login(
    controllers: &[String],
    given: Option<String>,
    json: bool,
) -> anyhow::Result<i32> {
    let token = match given {
        Some(t) => t.trim().to_string(),
        None => {
            eprintln!("paste the operator token (HOISTOP2-... or HOISTOP1-...), then Enter:");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim().to_string()
        }
    };
    if token.is_empty() {
        anyhow::bail!("no token given: pass --token, set HOIST_TOKEN, or paste one");
    }
    let Some(cluster) = credentials::cluster_of(&token).map(str::to_string) else {
        anyhow::bail!(
            "not an operator token: they look like HOISTOP2-<cluster>-<CA digest>-<id>-<secret>"
        );
    };
    let client = ControllerClient::new(controllers)?.with_token(&token)?;
    let who = match client.json::<WhoAmI>(Method::GET, "/v1/whoami", None).await {
        Ok(w) => w,
        Err(e) => return Ok(report(&e)),
    };
    if let Some(id) = who.cluster_id.as_deref().filter(|id| *id != cluster) {
        anyhow::bail!("the controllers belong to cluster {id}, the token to cluster {cluster}");
    }
    // The root, fetched over the connection the token's digest verified: kept with the token.
    let ca_certificate = match credentials::ca_digest_of(&token) {
        Some(_) => client
            .json::<serde_json::Value>(Method::GET, "/v1/cluster/ca", None)
            .await
            .ok()
            .and_then(|ca| ca["certificate"].as_str().map(str::to_string)),
        None => None,
    };
    let saved = Saved {
        token,
        cluster_id: who.cluster_id.clone(),
        name: who.name.clone(),
        role: who.role.clone(),
        controllers: controllers.to_vec(),
        ca_certificate,
    };
    credentials::save(&saved).map_err(anyhow::Error::msg)?;
    if json {
        output::json(&serde_json::json!({
            "cluster_id": saved.cluster_id, "name": saved.name, "role": saved.role,
            "file": credentials::path(),
        }));
    } else {
        println!(
            "logged in to cluster {} as {} ({}); credentials in {}",
            saved.cluster_id.as_deref().unwrap_or("?"),
            saved.name.as_deref().unwrap_or("?"),
            saved.role.as_deref().unwrap_or("?"),
            credentials::path().display()
        );
    }
    Ok(0)
}

/// `hoist cluster logout`
pub fn logout(json: bool) -> anyhow::Result<i32> {
    let had = credentials::forget().map_err(anyhow::Error::msg)?;
    if json {
        output::json(&serde_json::json!({ "removed": had }));
    } else if had {
        println!(
            "forgot the credentials in {}",
            credentials::path().display()
        );
    } else {
        println!("no saved credentials");
    }
    Ok(0)
}

#[derive(Debug, Deserialize, serde::Serialize)]
struct AuditEntry {
    index: u64,
    time_ms: u64,
    actor: String,
    action: String,
    #[serde(default)]
    error: Option<String>,
}

/// `hoist cluster audit`
pub async fn audit(controllers: &[String], limit: usize, json: bool) -> anyhow::Result<i32> {
    let client = ControllerClient::new(controllers)?;
    let path = format!("/v1/cluster/audit?limit={limit}");
    let header = ["WHEN", "WHO", "WHAT", "OUTCOME"];
    list(&client, &path, json, &header, |e: AuditEntry, now| {
        vec![
            ago(e.time_ms, now),
            e.actor,
            e.action,
            e.error.map_or("ok".into(), |m| format!("refused: {m}")),
        ]
    })
    .await
}

/// GETs the list at `path` and prints it: as JSON, or as a table of `row`s (given the time now).
pub(crate) async fn list<T: serde::de::DeserializeOwned + serde::Serialize>(
    client: &ControllerClient,
    path: &str,
    json: bool,
    header: &[&str],
    row: impl Fn(T, u64) -> Vec<String>,
) -> anyhow::Result<i32> {
    match client.json::<Vec<T>>(Method::GET, path, None).await {
        Ok(v) if json => output::json(&v),
        Ok(v) => {
            let now = now_ms();
            output::table(header, v.into_iter().map(|t| row(t, now)).collect());
        }
        Err(e) => return Ok(report(&e)),
    }
    Ok(0)
}
