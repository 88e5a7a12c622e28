//! [`FakeMesh`]: a recording [`MeshKernel`] for the service mesh (`crate::mesh`). It keeps every
//! call in order (nft scripts, `ip`/`bridge` batches, the vxlan device), and can fail the n-th
//! call from now or the next nft transaction.

use crate::mesh::{MeshKernel, RuleEntry, VxlanSpec};
use std::sync::{Mutex, MutexGuard};

/// One call the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeshCall {
    Nft(String),
    EnsureVxlan(VxlanSpec),
    RemoveLink(String),
    Rules,
    Ip { lines: Vec<String>, lenient: bool },
    Bridge(Vec<String>),
}

#[derive(Debug, Default)]
struct Inner {
    calls: Vec<MeshCall>,
    /// Indexes (in `calls`) of calls that fail.
    fail_at: Vec<usize>,
    fail_next_nft: bool,
    rules: Vec<RuleEntry>,
}

/// A fake kernel for the mesh.
#[derive(Debug, Default)]
pub struct FakeMesh {
    inner: Mutex<Inner>,
}

impl FakeMesh {
    pub fn new() -> Self {
        Self::default()
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<MeshCall> {
        self.inner().calls.clone()
    }

    /// The nft scripts sent so far (failed ones included).
    pub fn scripts(&self) -> Vec<String> {
        self.inner()
            .calls
            .iter()
            .filter_map(|c| match c {
                MeshCall::Nft(s) => Some(s.clone()),
                _ => None,
            })
            .collect()
    }

    /// Forgets the calls so far.
    pub fn clear(&self) {
        self.inner().calls.clear();
        self.inner().fail_at.clear();
    }

    /// Makes the `n`-th call from now (0: the next one) fail.
    pub fn fail_nth(&self, n: usize) {
        let mut i = self.inner();
        let at = i.calls.len() + n;
        i.fail_at.push(at);
    }

    /// Makes the next nft transaction fail.
    pub fn fail_next_nft(&self) {
        self.inner().fail_next_nft = true;
    }

    /// What `rules` lists from now on.
    pub fn set_rules(&self, rules: Vec<RuleEntry>) {
        self.inner().rules = rules;
    }

    fn call(&self, call: MeshCall) -> Result<(), String> {
        let mut i = self.inner();
        let index = i.calls.len();
        let is_nft = matches!(call, MeshCall::Nft(_));
        i.calls.push(call);
        if let Some(pos) = i.fail_at.iter().position(|&a| a == index) {
            i.fail_at.remove(pos);
            return Err(format!("injected failure of call {index}"));
        }
        if is_nft && i.fail_next_nft {
            i.fail_next_nft = false;
            return Err("injected nft failure".into());
        }
        Ok(())
    }
}

impl MeshKernel for FakeMesh {
    fn nft(&self, script: &str) -> Result<(), String> {
        self.call(MeshCall::Nft(script.to_string()))
    }

    fn ensure_vxlan(&self, spec: &VxlanSpec) -> Result<(), String> {
        self.call(MeshCall::EnsureVxlan(spec.clone()))
    }

    fn remove_link(&self, name: &str) -> Result<(), String> {
        self.call(MeshCall::RemoveLink(name.to_string()))
    }

    fn rules(&self) -> Result<Vec<RuleEntry>, String> {
        self.call(MeshCall::Rules)?;
        Ok(self.inner().rules.clone())
    }

    fn ip(&self, lines: &[String], lenient: bool) -> Result<(), String> {
        self.call(MeshCall::Ip {
            lines: lines.to_vec(),
            lenient,
        })
    }

    fn bridge(&self, lines: &[String]) -> Result<(), String> {
        self.call(MeshCall::Bridge(lines.to_vec()))
    }
}
