//! Running one health probe against a container: a command inside it (the `exec` path), a TCP
//! connect to its address, or an HTTP GET expecting 2xx or 3xx. Each within the check's timeout;
//! the error is one line for `hoist service ps`.

use crate::containers::Manager;
use hoist_proto::service::HealthCheck;
use hoist_proto::ExecRequest;
use std::sync::Arc;
use std::time::Duration;

/// What a check does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Exec(Vec<String>),
    Tcp(u16),
    Http { port: u16, path: String },
}

impl Probe {
    pub fn from_spec(h: &HealthCheck) -> Option<Probe> {
        let port = h.tcp_port.and_then(|p| u16::try_from(p).ok());
        if !h.command.is_empty() {
            Some(Probe::Exec(h.command.clone()))
        } else if let (Some(path), Some(port)) = (&h.http_path, port) {
            Some(Probe::Http {
                port,
                path: path.clone(),
            })
        } else {
            port.map(Probe::Tcp)
        }
    }
}

/// Runs `probe` against `container` (whose bridge address is `ip`).
pub async fn run(
    probe: &Probe,
    mgr: &Arc<Manager>,
    container: &str,
    ip: Option<&str>,
    timeout: Duration,
    http: &reqwest::Client,
) -> Result<(), String> {
    let fut = async {
        match probe {
            Probe::Exec(cmd) => exec(mgr, container, cmd).await,
            Probe::Tcp(port) => {
                let ip = ip.ok_or("the container has no address")?;
                tokio::net::TcpStream::connect((ip, *port))
                    .await
                    .map(drop)
                    .map_err(|e| format!("connect {ip}:{port}: {e}"))
            }
            Probe::Http { port, path } => {
                let ip = ip.ok_or("the container has no address")?;
                let url = format!("http://{ip}:{port}{path}");
                let resp = http
                    .get(&url)
                    .send()
                    .await
                    .map_err(|e| format!("GET {url}: {e}"))?;
                let code = resp.status().as_u16();
                if (200..400).contains(&code) {
                    Ok(())
                } else {
                    Err(format!("GET {url}: HTTP {code}"))
                }
            }
        }
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "timed out after {}",
            humantime::format_duration(timeout)
        )),
    }
}

async fn exec(mgr: &Arc<Manager>, container: &str, cmd: &[String]) -> Result<(), String> {
    let req = ExecRequest {
        cmd: cmd.to_vec(),
        env: vec![],
        workdir: None,
        user: None,
    };
    let mut rx = mgr.exec(container, req).await.map_err(|e| e.to_string())?;
    let mut output = String::new();
    while let Some(chunk) = rx.recv().await {
        if let Some(code) = chunk.exit_code {
            if code == 0 {
                return Ok(());
            }
            let out = output.trim();
            let out: String = out.chars().take(200).collect();
            return Err(if out.is_empty() {
                format!("{} exited with code {code}", cmd.join(" "))
            } else {
                format!("{} exited with code {code}: {out}", cmd.join(" "))
            });
        }
        if let Some(d) = chunk.data {
            if output.len() < 4096 {
                output.push_str(&d);
            }
        }
    }
    Err("the exec helper ended without an exit code".into())
}

/// The HTTP client for checks: no redirects followed (a 3xx is healthy), no proxy.
pub fn http_client() -> reqwest::Client {
    hoist_common::init_tls();
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check() -> HealthCheck {
        HealthCheck {
            command: vec![],
            http_path: None,
            tcp_port: None,
            interval: "1s".into(),
            timeout: "1s".into(),
            retries: 1,
            start_period: "0s".into(),
        }
    }

    #[test]
    fn probe_kinds() {
        let mut h = check();
        h.tcp_port = Some(80);
        assert_eq!(Probe::from_spec(&h), Some(Probe::Tcp(80)));
        h.http_path = Some("/healthz".into());
        assert_eq!(
            Probe::from_spec(&h),
            Some(Probe::Http {
                port: 80,
                path: "/healthz".into()
            })
        );
        h.command = vec!["true".into()];
        assert_eq!(Probe::from_spec(&h), Some(Probe::Exec(vec!["true".into()])));
        assert_eq!(Probe::from_spec(&check()), None);
    }
}
