//! Fakes of the kernel: cgroups ([`FakeCgroups`]), network namespaces and links
//! ([`FakeLinks`]) and nftables ([`FakeNft`]). Each keeps its state in the [`FakeHost`]'s
//! [`World`](super::World) and records its calls there.
//!
//! They model what the callers rely on: a cgroup or netns made twice is an error; a failed
//! `bridged` may leave its file pinned (the real one can, after the bind mount); an nft batch
//! applies whole or not at all, and deleting an element that is not there fails the batch, as
//! `nft` does.

use super::FakeHost;
use crate::network::{Address, Links, NetworkError, Nft, PortElement, Sysctl};
use crate::runtime::cgroup::{CgroupHandle, CgroupStats, CgroupVersion, Cgroups};
use futures::future::BoxFuture;
use hoist_proto::Resources;
use nftables::expr::{Expression, NamedExpression};
use nftables::schema::{NfCmd, NfListObject, NfObject, Nftables};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::Path;
use std::sync::Arc;

/// Where fake cgroups seem to live.
const CGROUP_ROOT: &str = "/sys/fs/cgroup/hoist";

/// Cgroups in memory: ops `cgroup create`, `cgroup remove`, `cgroup kill`.
#[derive(Debug)]
pub struct FakeCgroups {
    host: Arc<FakeHost>,
}

impl FakeCgroups {
    pub fn new(host: Arc<FakeHost>) -> Self {
        FakeCgroups { host }
    }
}

/// The container id a fake handle stands for.
fn cgroup_id(cgroup: &CgroupHandle) -> String {
    let dir = match cgroup {
        CgroupHandle::V2 { dir } => Some(dir),
        CgroupHandle::V1 { dirs } => dirs.values().next(),
    };
    dir.and_then(|d| d.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl Cgroups for FakeCgroups {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V2
    }

    fn handle_for(&self, id: &str) -> CgroupHandle {
        CgroupHandle::V2 {
            dir: Path::new(CGROUP_ROOT).join(id),
        }
    }

    fn create(&self, id: &str, res: &Resources) -> io::Result<CgroupHandle> {
        self.host
            .call("cgroup create", id)
            .map_err(io::Error::other)?;
        self.host.world(|w| {
            if w.cgroups.contains_key(id) {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            w.cgroups.insert(id.to_string(), *res);
            Ok(())
        })?;
        Ok(self.handle_for(id))
    }

    fn remove(&self, cgroup: &CgroupHandle) -> io::Result<()> {
        let id = cgroup_id(cgroup);
        self.host
            .call("cgroup remove", &id)
            .map_err(io::Error::other)?;
        self.host.world(|w| w.cgroups.remove(&id));
        Ok(())
    }

    fn stats(&self, _: &CgroupHandle) -> CgroupStats {
        CgroupStats::default()
    }

    fn oom_killed(&self, _: &CgroupHandle) -> bool {
        false
    }

    fn pids(&self, _: &CgroupHandle) -> Vec<i32> {
        Vec::new()
    }

    fn signal_all(&self, cgroup: &CgroupHandle, signal: nix::sys::signal::Signal) {
        let _ = self
            .host
            .call("cgroup kill", format!("{} {signal}", cgroup_id(cgroup)));
    }
}

/// Namespaces in memory, pinned by plain files in the netns dir: ops `netns bridged`,
/// `netns remove`.
#[derive(Debug)]
pub struct FakeLinks {
    host: Arc<FakeHost>,
}

impl FakeLinks {
    pub fn new(host: Arc<FakeHost>) -> Self {
        FakeLinks { host }
    }

    /// Creates the pinning file (which must not exist) and the namespace.
    fn pin(&self, path: &Path, addr: Address) -> Result<(), NetworkError> {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| NetworkError::io("create netns file", path, e))?;
        self.host
            .world(|w| w.namespaces.insert(file_name(path), addr));
        Ok(())
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn injected(path: &Path) -> impl FnOnce(String) -> NetworkError + '_ {
    move |e| NetworkError::io("fake netns", path, io::Error::other(e))
}

impl Links for FakeLinks {
    fn bridged<'a>(
        &'a self,
        path: &'a Path,
        addr: Address,
    ) -> BoxFuture<'a, Result<(), NetworkError>> {
        Box::pin(async move {
            let fault = self.host.call("netns bridged", file_name(path));
            self.pin(path, addr)?;
            // Failing after the bind mount, the worst case: the caller must remove the file.
            fault.map_err(injected(path))
        })
    }

    fn remove(&self, path: &Path) -> Result<(), NetworkError> {
        self.host
            .call("netns remove", file_name(path))
            .map_err(injected(path))?;
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(NetworkError::io("delete netns file", path, e)),
        }
        self.host.world(|w| w.namespaces.remove(&file_name(path)));
        Ok(())
    }

    fn refill(&self) {}
}

/// Tables and map elements in memory: ops `nft apply` (subject: what the batch does) and
/// `nft list`.
#[derive(Debug)]
pub struct FakeNft {
    host: Arc<FakeHost>,
}

impl FakeNft {
    pub fn new(host: Arc<FakeHost>) -> Self {
        FakeNft { host }
    }
}

type Elements = BTreeMap<(String, String, u16), String>;

/// Applies the table and element commands of `batch` to copies; `Err` leaves the originals alone.
fn apply_batch(
    batch: &Nftables,
    tables: &BTreeSet<String>,
    elements: &Elements,
) -> Result<(BTreeSet<String>, Elements), String> {
    let (mut tables, mut elements) = (tables.clone(), elements.clone());
    for object in batch.objects.iter() {
        let NfObject::CmdObject(cmd) = object else {
            continue;
        };
        match cmd {
            NfCmd::Add(NfListObject::Table(t)) => {
                tables.insert(t.name.to_string());
            }
            NfCmd::Add(NfListObject::Element(e)) => {
                if !tables.contains(e.table.as_ref()) {
                    return Err(format!("no such table {}", e.table));
                }
                for item in e.elem.iter() {
                    let Expression::List(pair) = item else {
                        return Err(format!("unexpected element {item:?}"));
                    };
                    let Some(Expression::Named(NamedExpression::Elem(key))) = pair.first() else {
                        return Err(format!("unexpected element key {pair:?}"));
                    };
                    let Expression::Number(port) = *key.val else {
                        return Err(format!("unexpected element key {key:?}"));
                    };
                    let owner = key.comment.as_deref().unwrap_or_default().to_string();
                    let port = u16::try_from(port).map_err(|e| e.to_string())?;
                    elements.insert((e.table.to_string(), e.name.to_string(), port), owner);
                }
            }
            NfCmd::Delete(NfListObject::Element(e)) => {
                for item in e.elem.iter() {
                    let Expression::Number(port) = item else {
                        return Err(format!("unexpected element {item:?}"));
                    };
                    let port = u16::try_from(*port).map_err(|e| e.to_string())?;
                    let key = (e.table.to_string(), e.name.to_string(), port);
                    if elements.remove(&key).is_none() {
                        return Err(format!(
                            "Could not process rule: No such file or directory (element {port} of {})",
                            e.name
                        ));
                    }
                }
            }
            // Maps, chains and rules are fixed by `setup`; the fake does not model them.
            _ => {}
        }
    }
    Ok((tables, elements))
}

impl Nft for FakeNft {
    fn apply(
        &self,
        op: &'static str,
        sysctls: Vec<Sysctl>,
        batch: Nftables<'static>,
    ) -> BoxFuture<'_, Result<(), NetworkError>> {
        let fail = move |message: String| NetworkError::Nft {
            op: op.to_string(),
            message,
        };
        Box::pin(async move {
            self.host.call("nft apply", op).map_err(fail)?;
            self.host.world(|w| {
                for s in sysctls {
                    w.sysctls.insert(s.key, s.value.to_string());
                }
                let (tables, elements) =
                    apply_batch(&batch, &w.tables, &w.elements).map_err(fail)?;
                (w.tables, w.elements) = (tables, elements);
                Ok(())
            })
        })
    }

    fn list_ports<'a>(
        &'a self,
        table: &'a str,
    ) -> BoxFuture<'a, Result<BTreeSet<PortElement>, NetworkError>> {
        Box::pin(async move {
            self.host
                .call("nft list", table)
                .map_err(|message| NetworkError::Nft {
                    op: format!("list table {table}"),
                    message,
                })?;
            Ok(self.host.world(|w| super::published(w, Some(table))))
        })
    }
}
