//! API conformance: schemathesis (from PyPI, installed by `deploy/install-deps.sh`) generates
//! requests from the OpenAPI document a live member serves (`GET /v1/openapi.json`), valid and
//! invalid, plain and in sequences, and checks every answer against the document: no server
//! error, only documented statuses and content types, bodies that fit their schemas, invalid
//! requests refused and valid ones accepted. Then the same for an agent's local API
//! (`GET /v1/openapi.json` on its socket, reached through a loopback relay). Bounded: a few
//! thousand requests, well under a minute each on this machine.
//!
//! What the runs leave out or relax, and why, is in `tests/conformance/*.toml`.

use anyhow::{bail, ensure, Context, Result};
use hoist_tests::controller_lab::{serial, Lab};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The schemathesis the suite is written against (`deploy/install-deps.sh` installs it).
const VERSION: &str = "4.32.5";

/// Test cases per operation and phase; with every phase this is a few thousand requests.
const MAX_EXAMPLES: &str = "25";

/// The `st` program: `HOIST_SCHEMATHESIS`, else where `deploy/install-deps.sh` puts it.
fn schemathesis() -> Result<PathBuf> {
    let st = std::env::var_os("HOIST_SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/hoist/schemathesis/bin/st"));
    let out = Command::new(&st)
        .arg("--version")
        .output()
        .with_context(|| format!("{} (run deploy/install-deps.sh)", st.display()))?;
    let version = String::from_utf8_lossy(&out.stdout);
    ensure!(
        version.contains(VERSION),
        "{} is {version:?}, the suite wants schemathesis {VERSION} (run deploy/install-deps.sh)",
        st.display()
    );
    Ok(st)
}

/// `tests/conformance/NAME`.
fn config(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("conformance")
        .join(name)
}

/// One schemathesis run: every check, the given config; fails with its report when anything
/// was found. Answers how long it took.
fn run(st: &Path, config: &Path, schema_url: &str, headers: &[String]) -> Result<Duration> {
    let seed = std::env::var("HOIST_CONFORMANCE_SEED").unwrap_or_else(|_| "15".into());
    let reports = tempfile::tempdir()?;
    let mut cmd = Command::new(st);
    cmd.arg("--config-file")
        .arg(config)
        .arg("--no-color")
        // Every check (the default); the config can only turn one off for named operations
        // when the command line does not name checks.
        .args(["run", schema_url])
        .args(["--max-examples", MAX_EXAMPLES, "--seed", &seed])
        // One worker: with two, Debian's Python 3.11 sometimes fails inside its `ast` module
        // ("AST constructor recursion depth mismatch", a thread-safety bug of CPython 3.11
        // that hypothesis trips when it describes a filter), a runtime error of the tool that
        // says nothing of the API.
        .args(["--workers", "1", "--request-timeout", "10"])
        .arg("--report-dir")
        .arg(reports.path())
        .env("SCHEMATHESIS_HOOKS", "")
        .current_dir(reports.path());
    for h in headers {
        cmd.args(["-H", h]);
    }
    let start = Instant::now();
    let out = cmd.output().context("run schemathesis")?;
    let took = start.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.contains("SUMMARY"))
        .collect();
    eprintln!(
        "schemathesis {schema_url}: {took:.1?}\n{}",
        summary.join("\n")
    );
    if !out.status.success() {
        bail!(
            "schemathesis found problems with {schema_url} (seed {seed}):\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(took)
}

/// The bootstrap member's admin token, once operators authenticate (`DATA_DIR/admin.token`).
fn admin_headers(lab: &Lab) -> Vec<String> {
    std::fs::read_to_string(lab.data_dir(0).join("admin.token"))
        .ok()
        .map(|t| vec![format!("Authorization: Bearer {}", t.trim())])
        .unwrap_or_default()
}

#[test]
fn the_controller_answers_as_its_openapi_document_says() -> Result<()> {
    let _serial = serial();
    let st = schemathesis()?;
    let mut lab = Lab::new(1)?;
    lab.start(0, &["--bootstrap"])?;
    lab.wait_leader(Duration::from_secs(10))?;
    let headers = admin_headers(&lab);
    // Something to find: a service, a stack and a hook token, so that reads answer 200 too.
    let seed = [
        (
            "/v1/services",
            json!({"name": "web", "image": "busybox", "replicas": 0, "ports": [{"target": 80, "published": 8080}]}),
        ),
        (
            "/v1/stacks",
            json!({"name": "shop", "services": [{"name": "shop_api", "image": "busybox", "replicas": 0}]}),
        ),
        ("/v1/hooks/tokens", json!({"service": "web"})),
    ];
    for (path, body) in seed {
        let (code, answer) = lab.post(0, path, &body)?;
        ensure!(code / 100 == 2, "POST {path}: {code} {answer}");
    }
    let url = format!("http://{}/v1/openapi.json", lab.addr(0));
    let took =
        run(&st, &config("controller.toml"), &url, &headers).with_context(|| lab.logs_tail())?;
    // The member took it all and still serves.
    ensure!(lab.is_running(0), "the member exited:\n{}", lab.logs_tail());
    let (code, _) = lab.get(0, "/v1/health")?;
    ensure!(code == 200, "health after the run: {code}");
    let log = std::fs::read_to_string(lab.log_path(0))?;
    ensure!(!log.contains("panicked"), "a panic:\n{}", lab.logs_tail());
    eprintln!("controller conformance run: {took:.1?}");
    Ok(())
}

/// Relays TCP connections on a loopback port to the agent's unix socket (schemathesis speaks
/// TCP only); ends with the test process.
fn relay(socket: &Path) -> Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?.to_string();
    let socket = socket.to_path_buf();
    std::thread::spawn(move || {
        for tcp in listener.incoming().map_while(Result::ok) {
            let Ok(unix) = std::os::unix::net::UnixStream::connect(&socket) else {
                continue;
            };
            let (Ok(mut tcp_r), Ok(mut unix_w)) = (tcp.try_clone(), unix.try_clone()) else {
                continue;
            };
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut tcp_r, &mut unix_w);
                let _ = unix_w.shutdown(std::net::Shutdown::Write);
            });
            let (mut unix_r, mut tcp_w) = (unix, tcp);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut unix_r, &mut tcp_w);
                let _ = tcp_w.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    Ok(addr)
}

#[test]
fn the_agent_answers_as_its_openapi_document_says() -> Result<()> {
    let _serial = serial();
    let st = schemathesis()?;
    // An agent in a namespace of its own (loopback only), with the probe image imported.
    let host = hoist_tests::Host::start("conformance")?;
    host.hoist_ok(&["run", "-d", "--name", "idle", "probe", "sleep", "600"])?;
    let addr = relay(&host.socket())?;
    let url = format!("http://{addr}/v1/openapi.json");
    let took = run(&st, &config("agent.toml"), &url, &[])?;
    // The agent took it all and still serves (the container may have been removed: the run
    // may stop, kill and delete what it lists).
    host.hoist_ok(&["ps", "-a"])?;
    eprintln!("agent conformance run: {took:.1?}");
    Ok(())
}
