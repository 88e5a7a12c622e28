//! A headless Chromium driven over the Chrome DevTools Protocol, for the dashboard's tests.
//!
//! The browser speaks CDP over a pipe (`--remote-debugging-pipe`: it reads commands from fd 3
//! and writes answers and events to fd 4, each a JSON text ended by a NUL byte), so no websocket
//! client is needed and the browser can run inside a lab network namespace, where the test could
//! not reach a debugging port on the namespace's loopback. It runs in a process group of its
//! own with a fresh profile directory; `Drop` kills the group and removes the profile, also when
//! a test fails.
//!
//! Every console error or warning, uncaught exception and browser log entry of level error the
//! page produces is kept ([`Browser::problems`]): a test asserts there are none.

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long one protocol call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The Chromium to run: `HOIST_CHROMIUM`, else Debian's `/usr/bin/chromium`.
pub fn chromium_bin() -> PathBuf {
    std::env::var_os("HOIST_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

#[derive(Default)]
struct Inbox {
    replies: HashMap<u64, Value>,
    events: Vec<Value>,
    /// Set when the browser's end of the pipe closed (it exited).
    closed: bool,
}

/// A running headless Chromium with one page attached.
pub struct Browser {
    child: Child,
    to_browser: File,
    inbox: Arc<(Mutex<Inbox>, Condvar)>,
    next_id: u64,
    session: String,
    profile: tempfile::TempDir,
    log: PathBuf,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("pid", &self.child.id())
            .field("profile", &self.profile.path())
            .finish()
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two new descriptors into `fds`, which we own from here on.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error()).context("pipe2");
    }
    // SAFETY: both are fresh descriptors owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

impl Browser {
    /// Starts Chromium (inside network namespace `netns` when given) on `about:blank` and
    /// attaches to its page with the Runtime, Log and Page domains enabled.
    pub fn start(netns: Option<&str>) -> Result<Browser> {
        let bin = chromium_bin();
        if !bin.exists() {
            bail!(
                "{} is missing: install Debian's chromium (apt-get install -y chromium) or set HOIST_CHROMIUM",
                bin.display()
            );
        }
        let profile = tempfile::Builder::new()
            .prefix("hoist-chromium-")
            .tempdir()?;
        let log = profile.path().with_extension("log");
        let log_file = File::create(&log)?;
        let (cmd_read, cmd_write) = pipe()?; // test → browser (its fd 3)
        let (out_read, out_write) = pipe()?; // browser → test (its fd 4)
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net=/run/netns/{ns}")).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        cmd.args([
            "--headless=new",
            "--no-sandbox",
            "--remote-debugging-pipe",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-gpu",
            "--window-size=1400,1000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        // Its singleton socket's directory (`org.chromium.Chromium.*`) goes into the profile,
        // which is removed with it: in /tmp, a killed browser left one behind per run.
        .env("TMPDIR", profile.path())
        .stdin(Stdio::null())
        .stdout(Stdio::from(log_file.try_clone()?))
        .stderr(Stdio::from(log_file))
        .process_group(0);
        let (r, w) = (cmd_read.as_raw_fd(), out_write.as_raw_fd());
        // SAFETY: between fork and exec only async-signal-safe calls (fcntl, dup2). The
        // descriptors are first copied above 4, so that dup2 never meets itself (which would
        // keep close-on-exec set), then placed at 3 and 4 without close-on-exec.
        unsafe {
            cmd.pre_exec(move || {
                let r2 = libc::fcntl(r, libc::F_DUPFD_CLOEXEC, 10);
                let w2 = libc::fcntl(w, libc::F_DUPFD_CLOEXEC, 10);
                if r2 < 0 || w2 < 0 || libc::dup2(r2, 3) < 0 || libc::dup2(w2, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("start {}", bin.display()))?;
        drop(cmd_read);
        drop(out_write);
        let inbox: Arc<(Mutex<Inbox>, Condvar)> = Arc::default();
        let reader_inbox = inbox.clone();
        let from_browser = File::from(out_read);
        std::thread::spawn(move || read_messages(from_browser, &reader_inbox));
        let mut b = Browser {
            child,
            to_browser: File::from(cmd_write),
            inbox,
            next_id: 0,
            session: String::new(),
            profile,
            log,
        };
        let targets = b.browser_call("Target.getTargets", json!({}))?;
        let page = targets["targetInfos"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["type"] == "page")
            .and_then(|t| t["targetId"].as_str())
            .map(str::to_owned);
        let target = match page {
            Some(t) => t,
            None => b.browser_call("Target.createTarget", json!({"url": "about:blank"}))?
                ["targetId"]
                .as_str()
                .context("createTarget answered no targetId")?
                .to_owned(),
        };
        let attached = b.browser_call(
            "Target.attachToTarget",
            json!({"targetId": target, "flatten": true}),
        )?;
        b.session = attached["sessionId"]
            .as_str()
            .context("attachToTarget answered no sessionId")?
            .to_owned();
        for domain in ["Runtime", "Log", "Page"] {
            b.call(&format!("{domain}.enable"), json!({}))?;
        }
        Ok(b)
    }

    fn send(&mut self, session: Option<&str>, method: &str, params: Value) -> Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg)?;
        bytes.push(0);
        self.to_browser
            .write_all(&bytes)
            .with_context(|| format!("send {method} to the browser"))?;
        let (lock, cond) = &*self.inbox;
        let deadline = Instant::now() + CALL_TIMEOUT;
        let mut inbox = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(reply) = inbox.replies.remove(&id) {
                if let Some(e) = reply.get("error") {
                    bail!("{method}: {e}");
                }
                return Ok(reply["result"].clone());
            }
            if inbox.closed {
                bail!("the browser exited during {method}: {}", self.log_tail());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("{method}: no answer within {CALL_TIMEOUT:?}");
            }
            inbox = cond
                .wait_timeout(inbox, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// A call to the browser itself.
    pub fn browser_call(&mut self, method: &str, params: Value) -> Result<Value> {
        self.send(None, method, params)
    }

    /// A call to the attached page.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value> {
        let session = self.session.clone();
        self.send(Some(&session), method, params)
    }

    /// Loads `url` in the page.
    pub fn navigate(&mut self, url: &str) -> Result<()> {
        let r = self.call("Page.navigate", json!({"url": url}))?;
        if let Some(e) = r.get("errorText") {
            bail!("navigate to {url}: {e}");
        }
        Ok(())
    }

    /// Evaluates `expression` in the page; answers its value (JSON). A thrown exception is an
    /// error.
    pub fn eval(&mut self, expression: &str) -> Result<Value> {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        )?;
        if let Some(e) = r.get("exceptionDetails") {
            bail!("{expression}: {}", describe_exception(e));
        }
        Ok(r["result"]["value"].clone())
    }

    /// Polls `expression` every 50 ms until it answers something other than null, undefined or
    /// false, or `timeout` passes; answers that value. The error names `what` and the last value.
    pub fn wait_js(&mut self, what: &str, expression: &str, timeout: Duration) -> Result<Value> {
        let start = Instant::now();
        loop {
            let last = match self.eval(expression) {
                Ok(v) if !(v.is_null() || v == json!(false)) => return Ok(v),
                Ok(v) => format!("{v}"),
                Err(e) => format!("{e:#}"),
            };
            if start.elapsed() > timeout {
                bail!(
                    "timed out after {timeout:?} waiting for {what}: last {last}; page problems: {:?}",
                    self.problems()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A PNG of the whole page, written to `path`.
    pub fn screenshot(&mut self, path: &Path) -> Result<()> {
        self.capture(path, true)
    }

    /// A PNG of what the window shows (1400×1000), written to `path`.
    pub fn screenshot_window(&mut self, path: &Path) -> Result<()> {
        self.capture(path, false)
    }

    fn capture(&mut self, path: &Path, whole_page: bool) -> Result<()> {
        let r = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": whole_page}),
        )?;
        let data = r["data"]
            .as_str()
            .ok_or_else(|| anyhow!("captureScreenshot answered no data"))?;
        let png = base64::engine::general_purpose::STANDARD.decode(data)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png).with_context(|| format!("write {}", path.display()))?;
        eprintln!("[browser] screenshot {}", path.display());
        Ok(())
    }

    /// Every console error or warning, uncaught exception and error log entry so far.
    pub fn problems(&self) -> Vec<String> {
        let inbox = self.inbox.0.lock().unwrap_or_else(|e| e.into_inner());
        inbox.events.iter().filter_map(problem).collect()
    }

    /// The last lines Chromium wrote to its stderr.
    pub fn log_tail(&self) -> String {
        crate::tail(&std::fs::read_to_string(&self.log).unwrap_or_default(), 15)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The whole group: the browser and its renderer, GPU and zygote processes.
        let pgid = self.child.id() as libc::pid_t;
        // SAFETY: a signal to the process group this Browser started.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
        // The profile directory goes with `self.profile`.
    }
}

/// The reader thread: splits the browser's output at NULs; answers go by id, events are kept.
fn read_messages(mut from: File, inbox: &(Mutex<Inbox>, Condvar)) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = from.read(&mut chunk).unwrap_or(0);
        let (lock, cond) = inbox;
        let mut inbox = lock.lock().unwrap_or_else(|e| e.into_inner());
        if n == 0 {
            inbox.closed = true;
            cond.notify_all();
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        while let Some(end) = buf.iter().position(|&b| b == 0) {
            let msg: Vec<u8> = buf.drain(..=end).collect();
            let Ok(v) = serde_json::from_slice::<Value>(&msg[..msg.len() - 1]) else {
                continue;
            };
            match v.get("id").and_then(Value::as_u64) {
                Some(id) => {
                    inbox.replies.insert(id, v);
                }
                None => inbox.events.push(v),
            }
        }
        cond.notify_all();
    }
}

fn describe_exception(e: &Value) -> String {
    let text = e["text"].as_str().unwrap_or("exception");
    match e["exception"]["description"].as_str() {
        Some(d) => format!("{text} {d}"),
        None => text.to_string(),
    }
}

/// The problem an event reports, if it reports one.
fn problem(event: &Value) -> Option<String> {
    let p = &event["params"];
    match event["method"].as_str()? {
        "Runtime.exceptionThrown" => Some(format!(
            "uncaught: {}",
            describe_exception(&p["exceptionDetails"])
        )),
        "Runtime.consoleAPICalled" => {
            let kind = p["type"].as_str().unwrap_or_default();
            if !matches!(kind, "error" | "warning" | "assert") {
                return None;
            }
            let args: Vec<String> = p["args"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| match (&a["value"], a["description"].as_str()) {
                    (Value::String(s), _) => s.clone(),
                    (_, Some(d)) => d.to_string(),
                    (v, None) => v.to_string(),
                })
                .collect();
            Some(format!("console.{kind}: {}", args.join(" ")))
        }
        "Log.entryAdded" => {
            let e = &p["entry"];
            (e["level"] == "error").then(|| {
                format!(
                    "log {}: {} {}",
                    e["source"].as_str().unwrap_or_default(),
                    e["text"].as_str().unwrap_or_default(),
                    e["url"].as_str().unwrap_or_default()
                )
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::problem;
    use serde_json::json;

    #[test]
    fn console_errors_exceptions_and_error_logs_are_problems_and_the_rest_is_not() {
        let err = json!({"method": "Runtime.consoleAPICalled", "params": {"type": "error", "args": [{"type": "string", "value": "boom"}]}});
        assert_eq!(problem(&err).unwrap(), "console.error: boom");
        let log =
            json!({"method": "Runtime.consoleAPICalled", "params": {"type": "log", "args": []}});
        assert_eq!(problem(&log), None);
        let thrown = json!({"method": "Runtime.exceptionThrown", "params": {"exceptionDetails": {"text": "Uncaught", "exception": {"description": "TypeError: x is undefined"}}}});
        assert!(problem(&thrown).unwrap().contains("TypeError"));
        let csp = json!({"method": "Log.entryAdded", "params": {"entry": {"level": "error", "source": "security", "text": "Refused to execute inline script"}}});
        assert!(problem(&csp).unwrap().contains("Refused"));
        let verbose = json!({"method": "Log.entryAdded", "params": {"entry": {"level": "verbose", "source": "other", "text": "x"}}});
        assert_eq!(problem(&verbose), None);
        assert_eq!(
            problem(&json!({"method": "Page.loadEventFired", "params": {}})),
            None
        );
    }
}
