//! The operator's side: the controllers' HTTP API with the admin token, as `hoist` and `curl`
//! use it (plain HTTP, JSON). It applies the services, reads the join token, and is what the
//! latency samples time: an operator's `node ls` and `service ps` while the cluster fills. The
//! phases after the fill update and scale a service, write a probe service, read one member's
//! own status and download a snapshot through it too.

use anyhow::{anyhow, bail, Result};
use serde_json::Value;
use std::time::{Duration, Instant};

/// The API of a controller cluster, tried member by member.
#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
    addrs: Vec<String>,
    bearer: String,
}

impl Api {
    pub fn new(addrs: Vec<String>, token: &str) -> Result<Api> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Api {
            http,
            addrs,
            bearer: format!("Bearer {}", token.trim()),
        })
    }

    /// One request to each member in turn until one answers other than 5xx.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value> {
        let mut last = String::from("no controller address");
        for addr in &self.addrs {
            let mut req = self
                .http
                .request(method.clone(), format!("http://{addr}{path}"))
                .header(reqwest::header::AUTHORIZATION, &self.bearer);
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    last = format!("{addr}: {e}");
                    continue;
                }
            };
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            if status.is_server_error() {
                last = format!(
                    "{addr}: HTTP {status}: {}",
                    text.chars().take(200).collect::<String>()
                );
                continue;
            }
            if !status.is_success() {
                bail!(
                    "{path}: HTTP {status}: {}",
                    text.chars().take(300).collect::<String>()
                );
            }
            return serde_json::from_str(&text).map_err(|e| anyhow!("{path}: {e}"));
        }
        bail!("{path}: {last}")
    }

    /// `GET /v1/cluster/status` of the member at `addr` itself (no failover: its own view).
    pub async fn member_status(&self, addr: &str) -> Result<Value> {
        let resp = self
            .http
            .get(format!("http://{addr}/v1/cluster/status"))
            .header(reqwest::header::AUTHORIZATION, &self.bearer)
            .timeout(Duration::from_secs(2))
            .send()
            .await?;
        let status = resp.status();
        if !status.is_success() {
            bail!("{addr}/v1/cluster/status: HTTP {status}");
        }
        Ok(resp.json().await?)
    }

    /// The size of the body a GET of `path` answers, from the first member that answers 2xx.
    pub async fn get_len(&self, path: &str) -> Result<u64> {
        let mut last = String::from("no controller address");
        for addr in &self.addrs {
            let resp = self
                .http
                .get(format!("http://{addr}{path}"))
                .header(reqwest::header::AUTHORIZATION, &self.bearer)
                .send()
                .await;
            match resp {
                Ok(r) if r.status().is_success() => return Ok(r.bytes().await?.len() as u64),
                Ok(r) => last = format!("{addr}: HTTP {}", r.status()),
                Err(e) => last = format!("{addr}: {e}"),
            }
        }
        bail!("{path}: {last}")
    }

    pub async fn get_json(&self, path: &str) -> Result<Value> {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Result<Value> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// How long a GET of `path` takes to answer in full, or why it failed.
    pub async fn timed_get(&self, path: &str) -> Result<Duration> {
        let t = Instant::now();
        self.get_json(path).await?;
        Ok(t.elapsed())
    }

    /// The worker join token (`GET /v1/cluster/token`). A new cluster makes its CA just after
    /// it starts: until then the token carries no CA digest (`HOIST1`) and agents would speak
    /// plain HTTP, so this waits up to 15 s for a `HOIST2` token, as a real agent's would be.
    pub async fn join_token(&self) -> Result<String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let v = self.get_json("/v1/cluster/token").await?;
            let token = v["token"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| anyhow!("/v1/cluster/token answered no token: {v}"))?;
            if token.starts_with(hoist_proto::node::TOKEN_PREFIX_CA) || Instant::now() > deadline {
                return Ok(token);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The id of the current leader (`GET /v1/cluster/status`).
    pub async fn leader(&self) -> Option<u64> {
        self.get_json("/v1/cluster/status").await.ok()?["leader"].as_u64()
    }
}

/// The spec of simulated service `name`: an image no one pulls (the agents are simulated) and a
/// short restart delay, so that a simulated failure is replaced at once.
pub fn service_spec(name: &str, replicas: u64) -> Value {
    serde_json::json!({
        "name": name,
        "image": "registry.example/hoist-sim:1",
        "replicas": replicas,
        "labels": { "hoist-sim": "1" },
        "restart": { "delay": "100ms" },
    })
}

/// [`service_spec`] the size of an operator's (`--rich-specs`), the shape of
/// `deploy/examples/web.toml`: a command and args, env, ports, restart and update policies,
/// labels. Without resources, health check or placement rules, which would change where
/// replicas go or when they count as ready.
pub fn rich_service_spec(name: &str, replicas: u64) -> Value {
    let mut v = service_spec(name, replicas);
    let extra = serde_json::json!({
        "command": ["/usr/local/bin/server"],
        "args": ["--listen", ":8080", "--log-format", "json", "--cache-dir", "/var/cache/app"],
        "env": {
            "APP_ENV": "production",
            "DATABASE_URL": "postgres://app@db.internal:5432/app",
            "LOG_LEVEL": "info",
            "REDIS_ADDR": "cache.internal:6379",
            "TZ": "UTC",
        },
        "ports": [{ "target": 8080 }, { "target": 9090 }],
        "labels": { "hoist-sim": "1", "team": "payments", "tier": "backend" },
        "restart": { "condition": "any", "delay": "100ms", "window": "5m" },
        "update": {
            "parallelism": 2,
            "delay": "5s",
            "failure_action": "rollback",
            "monitor": "10s",
            "order": "start-first",
        },
        "stop_grace_period": "30s",
    });
    for (k, e) in extra.as_object().into_iter().flatten() {
        v[k] = e.clone();
    }
    v
}

/// The spec of service `name` updated as an operator would (`hoist service update --image
/// --env`): a new image tag and an env var, replacing `parallelism` replicas at a time with no
/// monitor period (the simulated replicas have no health check to wait for).
pub fn updated_spec(name: &str, replicas: u64, parallelism: u64) -> Value {
    let mut v = service_spec(name, replicas);
    v["image"] = "registry.example/hoist-sim:2".into();
    v["env"] = serde_json::json!({ "HOIST_SIM_UPDATE": "2" });
    v["update"] = serde_json::json!({ "parallelism": parallelism, "monitor": "0s" });
    v
}

/// The probe service written during `--kill-leader`: no replicas, a new label value per write,
/// so that every write is a real change committed through Raft.
pub fn probe_spec(n: u64) -> Value {
    let mut v = service_spec(PROBE, 0);
    v["labels"]["probe"] = n.to_string().into();
    v
}

/// The name of the probe service.
pub const PROBE: &str = "hoist-sim-probe";

/// The name of service `i` of a run.
pub fn service_name(i: u64) -> String {
    format!("sim-{i:04}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_what_the_api_reads() {
        for v in [
            service_spec(&service_name(7), 250),
            rich_service_spec(&service_name(7), 250),
        ] {
            let spec: hoist_proto::service::ServiceSpec = serde_json::from_value(v).unwrap();
            assert_eq!(spec.name, "sim-0007");
            assert_eq!(spec.replicas, 250);
            assert!(spec.validate().is_empty(), "{:?}", spec.validate());
        }
        let rich: hoist_proto::service::ServiceSpec =
            serde_json::from_value(rich_service_spec("sim-0001", 1)).unwrap();
        assert_eq!((rich.env.len(), rich.ports.len()), (5, 2));
        use hoist_proto::format::Codec;
        let plain: hoist_proto::service::ServiceSpec =
            serde_json::from_value(service_spec("sim-0001", 1)).unwrap();
        // 374 and 87 bytes (the sizes `--rich-specs` and `bench/README.md` quote).
        let sizes = (
            rich.encode(2).unwrap().len(),
            plain.encode(2).unwrap().len(),
        );
        assert_eq!(sizes, (374, 87));
        for v in [updated_spec("sim-0001", 1000, 1000), probe_spec(3)] {
            let spec: hoist_proto::service::ServiceSpec = serde_json::from_value(v).unwrap();
            assert!(spec.validate().is_empty(), "{:?}", spec.validate());
        }
    }
}
