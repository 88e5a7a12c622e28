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
        let dir = tempfile::Builder::new()
            .prefix("hoist-registry-")
            .tempdir()?;
        let d = dir.path();
        let addr = format!("127.0.0.1:{port}");
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
                let token_addr = format!("127.0.0.1:{}", port + 1);
                let child = Command::new("nsenter")
                    .arg(format!("--net=/run/netns/{}", host.netns))
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
            .arg(format!("--net=/run/netns/{}", host.netns))
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
            netns: host.netns.clone(),
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
