//! Real registries for image tests: Debian's `docker-registry` (the CNCF distribution registry)
//! inside a lab host's network namespace on loopback, with a temp storage dir, optionally behind
//! Basic auth (htpasswd, bcrypt) or a bearer-token server (`hoist-token-server`); plus an OCI
//! image built from the busybox rootfs with `umoci` and pushed with `skopeo`.
//! Everything started here is killed and removed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::{bin, probe_image_tar, wait_for, Host};

/// How a test registry authenticates.
#[derive(Debug, Clone)]
pub enum RegistryAuthMode {
    Anonymous,
    /// Basic auth for `user`/`password`.
    Basic {
        user: String,
        password: String,
    },
    /// Bearer tokens from a token server that checks `user`/`password`.
    Token {
        user: String,
        password: String,
    },
}

/// A running registry (and token server) in a host's netns.
#[derive(Debug)]
pub struct Registry {
    pub addr: String,
    pub dir: tempfile::TempDir,
    children: Vec<Child>,
    netns: String,
}

fn run_in(netns: &str, program: &str, args: &[&str]) -> Result<Output> {
    Command::new("nsenter")
        .arg(format!("--net=/run/netns/{netns}"))
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run {program}"))
}

fn ok(out: Output, what: &str) -> Result<String> {
    if !out.status.success() {
        bail!(
            "{what} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn sh(cmd: &str) -> Result<String> {
    ok(crate::sh(cmd)?, cmd)
}

impl Registry {
    /// Starts a registry on `127.0.0.1:port` inside `host`'s namespace.
    pub fn start(host: &Host, port: u16, auth: RegistryAuthMode) -> Result<Self> {
        Self::start_in(&host.netns, "127.0.0.1", port, auth)
    }

    /// Starts a registry on `ip:port` inside network namespace `netns` (a lab host's address,
    /// for the agents of a cluster lab to reach it).
    pub fn start_in(netns: &str, ip: &str, port: u16, auth: RegistryAuthMode) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("hoist-registry-")
            .tempdir()?;
        let d = dir.path();
        let addr = format!("{ip}:{port}");
        let mut children = Vec::new();
        let auth_yaml = match &auth {
            RegistryAuthMode::Anonymous => String::new(),
            RegistryAuthMode::Basic { user, password } => {
                // htpasswd -B: bcrypt, the only hash the registry accepts.
                sh(&format!(
                    "htpasswd -Bbn '{user}' '{password}' > {}/htpasswd",
                    d.display()
                ))?;
                format!(
                    "auth:\n  htpasswd:\n    realm: hoist-test\n    path: {}/htpasswd\n",
                    d.display()
                )
            }
            RegistryAuthMode::Token { user, password } => {
                sh(&format!(
                    "cd {0} && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
                     -keyout key.pem -out cert.pem -subj /CN=hoist-token -days 2 2>/dev/null && \
                     openssl pkcs8 -topk8 -nocrypt -in key.pem -outform DER -out key.der && \
                     openssl x509 -in cert.pem -outform DER -out cert.der",
                    d.display()
                ))?;
                let token_addr = format!("{ip}:{}", port + 1);
                let child = Command::new("nsenter")
                    .arg(format!("--net=/run/netns/{netns}"))
                    .arg(bin("hoist-token-server"))
                    .arg(&token_addr)
                    .arg(d.join("key.der"))
                    .arg(d.join("cert.der"))
                    .arg("hoist-test-issuer")
                    .arg(format!("{user}:{password}"))
                    .stdout(Stdio::null())
                    .stderr(std::fs::File::create(d.join("token.log"))?)
                    .spawn()
                    .context("start token server")?;
                children.push(child);
                format!(
                    "auth:\n  token:\n    realm: http://{token_addr}/token\n    service: hoist-test\n    \
                     issuer: hoist-test-issuer\n    rootcertbundle: {}/cert.pem\n",
                    d.display()
                )
            }
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}/data\n  \
             delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{auth_yaml}",
            d.display()
        );
        std::fs::write(d.join("config.yml"), config)?;
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{netns}"))
            .arg("/usr/bin/docker-registry")
            .arg("serve")
            .arg(d.join("config.yml"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("registry.log"))?)
            .spawn()
            .context("start docker-registry (apt-get install docker-registry)")?;
        children.push(child);
        let reg = Self {
            addr,
            dir,
            children,
            netns: netns.to_owned(),
        };
        let url = format!("http://{}/v2/", reg.addr);
        wait_for("the registry", Duration::from_secs(10), || {
            let out = run_in(
                &reg.netns,
                "curl",
                &["-s", "-o", "/dev/null", "-w", "%{http_code}", &url],
            )?;
            let code = String::from_utf8_lossy(&out.stdout).into_owned();
            Ok((code == "200" || code == "401").then_some(()))
        })?;
        Ok(reg)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// `skopeo ARGS` inside the registry's namespace.
    pub fn skopeo(&self, args: &[&str]) -> Result<String> {
        ok(
            run_in(&self.netns, "skopeo", args)?,
            &format!("skopeo {}", args.join(" ")),
        )
    }

    /// `skopeo inspect` of `REPO:TAG` in this registry (raw manifest digest and layers), as JSON.
    pub fn inspect(&self, repo_tag: &str, creds: Option<&str>) -> Result<serde_json::Value> {
        let target = format!("docker://{}/{repo_tag}", self.addr);
        let mut args = vec!["inspect", "--tls-verify=false"];
        if let Some(c) = creds {
            args.extend(["--creds", c]);
        }
        args.push(&target);
        Ok(serde_json::from_str(&self.skopeo(&args)?)?)
    }

    /// The registry's on-disk blob file for a digest (to tamper with).
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// An OCI layout with one busybox image (`:base`) built by umoci from the probe image's rootfs,
/// with a second layer holding `/hello.txt`, and `Cmd ["/bin/sh"]`.
#[derive(Debug)]
pub struct OciLayout {
    pub dir: tempfile::TempDir,
}

impl OciLayout {
    pub fn build() -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("hoist-umoci-").tempdir()?;
        let d = dir.path();
        let tar = probe_image_tar();
        sh(&format!(
            "set -e; cd {0}; umoci init --layout layout; umoci new --image layout:base; \
             umoci unpack --image layout:base bundle; tar -C bundle/rootfs -xf {1}; \
             umoci repack --image layout:base bundle; rm -rf bundle; \
             umoci unpack --image layout:base bundle; echo hello-from-umoci > bundle/rootfs/hello.txt; \
             umoci repack --image layout:base bundle; rm -rf bundle; \
             umoci config --image layout:base --config.cmd /bin/sh --config.env PATH=/bin:/usr/bin:/sbin \
               --os linux --architecture amd64",
            d.display(),
            tar.display()
        ))?;
        Ok(Self { dir })
    }

    /// `oci:DIR:base` for skopeo.
    pub fn source(&self) -> String {
        format!("oci:{}:base", self.dir.path().join("layout").display())
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// What [`FlakyProxy`] does to the first response stream that grows past `after` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Close the connection (once; later connections pass through).
    Cut,
    /// Stop forwarding and hold the connection open (every connection, until dropped).
    Stall,
}

/// A TCP proxy on loopback inside a host's netns, in front of a registry, that breaks the first big
/// response: to test resumed downloads and killed pulls. Records the requests it forwarded.
#[derive(Debug)]
pub struct FlakyProxy {
    pub addr: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pub requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// Moves the calling thread into `netns` (threads it creates inherit it).
fn enter_netns(netns: &str) -> Result<()> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(format!("/run/netns/{netns}"))?;
    // SAFETY: setns on a valid namespace fd affects only the calling thread's network namespace.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        bail!("setns {netns}: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

impl FlakyProxy {
    pub fn start(host: &Host, port: u16, upstream: &str, fault: Fault, after: u64) -> Result<Self> {
        use std::io::{Read, Write};
        use std::net::{TcpListener, TcpStream};
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        let addr = format!("127.0.0.1:{port}");
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (netns, upstream, listen) = (host.netns.clone(), upstream.to_owned(), addr.clone());
        let (stop2, requests2) = (stop.clone(), requests.clone());
        std::thread::spawn(move || {
            let listener = match enter_netns(&netns).and_then(|()| Ok(TcpListener::bind(&listen)?))
            {
                Ok(l) => l,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let _ = listener.set_nonblocking(true);
            let _ = ready_tx.send(Ok(()));
            let faulted = Arc::new(AtomicBool::new(false));
            while !stop2.load(Ordering::Relaxed) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let _ = client.set_nonblocking(false);
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let (mut c_read, mut s_write) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let requests = requests2.clone();
                // client -> registry, logging request heads.
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    while let Ok(n) = c_read.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        let text = String::from_utf8_lossy(&buf[..n]);
                        if text.starts_with("GET ")
                            || text.starts_with("HEAD ")
                            || text.starts_with("PUT ")
                            || text.starts_with("POST ")
                        {
                            requests
                                .lock()
                                .unwrap()
                                .push(text.split("\r\n\r\n").next().unwrap_or("").to_owned());
                        }
                        if s_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = s_write.shutdown(std::net::Shutdown::Write);
                });
                // registry -> client, with the fault.
                let (faulted, stop3) = (faulted.clone(), stop2.clone());
                let (mut s_read, mut c_write) = (server, client);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    let mut sent = 0u64;
                    while let Ok(n) = s_read.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        if sent + n as u64 > after {
                            let first = match fault {
                                Fault::Cut => !faulted.swap(true, Ordering::SeqCst),
                                Fault::Stall => true,
                            };
                            if first {
                                let keep = (after - sent.min(after)) as usize;
                                let _ = c_write.write_all(&buf[..keep.min(n)]);
                                if fault == Fault::Stall {
                                    while !stop3.load(Ordering::Relaxed) {
                                        std::thread::sleep(Duration::from_millis(50));
                                    }
                                }
                                break;
                            }
                        }
                        sent += n as u64;
                        if c_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = c_write.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        ready_rx.recv()??;
        Ok(Self {
            addr,
            stop,
            requests,
        })
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FlakyProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
