//! [`HostMesh`]: the real [`MeshKernel`], through `nft -f -`, `ip -batch -` and `bridge -batch -`
//! run as child processes, and `/proc/sys` for the vxlan device's reverse-path filter. Each call
//! runs on a throwaway thread that first enters the target network namespace when one is given
//! (tests), so callers may be on any thread.

use super::plan::mac_text;
use super::routes::RuleEntry;
use super::{MeshKernel, VxlanSpec};
use std::path::PathBuf;

/// The host's kernel, in the caller's network namespace or in a named one.
#[derive(Debug, Default, Clone)]
pub struct HostMesh {
    netns: Option<PathBuf>,
}

impl HostMesh {
    /// Works in the namespace of the thread that calls it (the agent's host namespace).
    pub fn new() -> Self {
        HostMesh { netns: None }
    }

    /// Works in the network namespace bound at `path` (e.g. `/run/netns/NAME`).
    pub fn in_netns(path: impl Into<PathBuf>) -> Self {
        HostMesh {
            netns: Some(path.into()),
        }
    }

    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        let Some(path) = self.netns.clone() else {
            return f();
        };
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&path)
                .map_err(|e| format!("open netns {}: {e}", path.display()))?;
            nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("enter netns {}: {e}", path.display()))?;
            f()
        })
        .join()
        .unwrap_or_else(|_| Err("mesh kernel thread panicked".into()))
    }
}

/// Runs `prog args`, feeding `stdin` (`network::tool`).
fn exec(prog: &str, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    crate::network::tool::run(prog, args, stdin.map(str::as_bytes))
}

fn sysctl_path(key: &str) -> PathBuf {
    PathBuf::from("/proc/sys").join(key.replace('.', "/"))
}

fn read_sysctl(key: &str) -> Result<String, String> {
    std::fs::read_to_string(sysctl_path(key))
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("read {key}: {e}"))
}

fn write_sysctl(key: &str, value: &str) -> Result<(), String> {
    std::fs::write(sysctl_path(key), value).map_err(|e| format!("write {key}={value}: {e}"))
}

/// Whether the link `name` is a vxlan device as `spec` wants (or absent: `None`).
fn vxlan_matches(spec: &VxlanSpec) -> Result<Option<bool>, String> {
    let out = match exec("ip", &["-d", "-j", "link", "show", "dev", &spec.name], None) {
        Ok(out) => out,
        Err(e) if e.contains("does not exist") => return Ok(None),
        Err(e) => return Err(e),
    };
    let v: serde_json::Value =
        serde_json::from_str(&out).map_err(|e| format!("read `ip -j link show`: {e}"))?;
    let info = &v[0]["linkinfo"];
    let data = &info["info_data"];
    let local = spec.local.to_string();
    Ok(Some(
        info["info_kind"] == "vxlan"
            && data["id"] == u64::from(spec.vni)
            && data["port"] == u64::from(spec.port)
            && data["local"] == local.as_str()
            && data["learning"] == false,
    ))
}

fn ensure_vxlan(spec: &VxlanSpec) -> Result<(), String> {
    let name = spec.name.as_str();
    match vxlan_matches(spec)? {
        Some(true) => {}
        found => {
            if found.is_some() {
                exec("ip", &["link", "del", "dev", name], None)?;
            }
            let (vni, port, local) = (
                spec.vni.to_string(),
                spec.port.to_string(),
                spec.local.to_string(),
            );
            exec(
                "ip",
                &[
                    "link",
                    "add",
                    name,
                    "type",
                    "vxlan",
                    "id",
                    &vni,
                    "dstport",
                    &port,
                    "local",
                    &local,
                    "nolearning",
                ],
                None,
            )?;
        }
    }
    let (mac, mtu) = (mac_text(spec.mac), spec.mtu.to_string());
    exec(
        "ip",
        &["link", "set", "dev", name, "address", &mac, "mtu", &mtu],
        None,
    )?;
    // rp_filter: the effective value is max(all, device). See the module doc.
    let all = read_sysctl("net.ipv4.conf.all.rp_filter")?;
    let want = if all == "0" { "0" } else { "2" };
    write_sysctl(&format!("net.ipv4.conf.{name}.rp_filter"), want)?;
    // An address, so that loose rp_filter accepts packets on the device (flannel's convention:
    // the subnet's network address, which no container gets).
    let addr = format!("{}/32", spec.address);
    exec(
        "ip",
        &["addr", "replace", &addr, "dev", name, "noprefixroute"],
        None,
    )?;
    exec("ip", &["link", "set", "dev", name, "up"], None)?;
    Ok(())
}

impl MeshKernel for HostMesh {
    fn nft(&self, script: &str) -> Result<(), String> {
        let script = script.to_string();
        self.run(move || exec("nft", &["-f", "-"], Some(&script)).map(|_| ()))
    }

    fn ensure_vxlan(&self, spec: &VxlanSpec) -> Result<(), String> {
        let spec = spec.clone();
        self.run(move || ensure_vxlan(&spec))
    }

    fn remove_link(&self, name: &str) -> Result<(), String> {
        let name = name.to_string();
        self.run(
            move || match exec("ip", &["link", "del", "dev", &name], None) {
                Err(e) if e.contains("does not exist") || e.contains("Cannot find device") => {
                    Ok(())
                }
                other => other.map(|_| ()),
            },
        )
    }

    fn rules(&self) -> Result<Vec<RuleEntry>, String> {
        self.run(|| {
            let out = exec("ip", &["-j", "rule", "show"], None)?;
            let v: Vec<serde_json::Value> =
                serde_json::from_str(&out).map_err(|e| format!("read `ip -j rule show`: {e}"))?;
            let num = |s: &serde_json::Value| -> Option<u32> {
                let s = s.as_str()?;
                match s.strip_prefix("0x") {
                    Some(hex) => u32::from_str_radix(hex, 16).ok(),
                    None => s.parse().ok(),
                }
            };
            Ok(v.iter()
                .filter_map(|r| {
                    Some(RuleEntry {
                        priority: u32::try_from(r["priority"].as_u64()?).ok()?,
                        fwmark: num(&r["fwmark"]),
                        table: num(&r["table"]),
                    })
                })
                .collect())
        })
    }

    fn ip(&self, lines: &[String], lenient: bool) -> Result<(), String> {
        let text = lines.join("\n") + "\n";
        self.run(move || {
            let args: &[&str] = if lenient {
                &["-force", "-batch", "-"]
            } else {
                &["-batch", "-"]
            };
            match exec("ip", args, Some(&text)) {
                Err(e) if lenient => {
                    tracing::debug!(error = %e, "mesh cleanup: some lines failed (expected when absent)");
                    Ok(())
                }
                other => other.map(|_| ()),
            }
        })
    }

    fn bridge(&self, lines: &[String]) -> Result<(), String> {
        let text = lines.join("\n") + "\n";
        self.run(move || exec("bridge", &["-batch", "-"], Some(&text)).map(|_| ()))
    }
}
