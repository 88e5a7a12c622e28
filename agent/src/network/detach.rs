//! `Network::detach` and `Network::retain`: remove what `attach` made, also after a restart and
//! for leftovers no record accounts for.

use super::state::Record;
use super::{nft, validate_id, Network, NetworkError};
use hoist_proto::agent::Protocol;
use std::collections::BTreeSet;

impl Network {
    /// Idempotent; works from the persisted state after a restart: removes the port elements,
    /// unmounts and deletes the netns file (the kernel then removes the veth), releases the address.
    pub async fn detach(&self, id: &str) -> Result<(), NetworkError> {
        validate_id(id)?;
        let record = self.lock().records.get(id).cloned();
        match record {
            Some(rec) => {
                self.unwire(id, &rec).await?;
                self.forget(id);
                self.persist().await
            }
            // Unknown (host mode, already detached, or a crash before the state was written).
            None => self.links.remove(&self.netns_path(id)),
        }
    }

    /// After a restart: detaches every persisted attachment whose container is not in `live_ids`,
    /// and removes netns files and port elements that no attachment accounts for.
    pub async fn retain(&self, live_ids: &[String]) -> Result<(), NetworkError> {
        let live: BTreeSet<&str> = live_ids.iter().map(String::as_str).collect();
        let stale: Vec<String> = self
            .lock()
            .records
            .keys()
            .filter(|id| !live.contains(id.as_str()))
            .cloned()
            .collect();
        for id in &stale {
            tracing::info!(container = %id, "detaching leftover network attachment");
            self.detach(id).await?;
        }
        // Live containers count as known even without a record (state file lost): never break
        // their traffic; only what nobody accounts for is removed.
        let mut known: BTreeSet<String> = self.lock().records.keys().cloned().collect();
        known.extend(live.iter().map(|id| id.to_string()));
        let dir = &self.cfg.netns_dir;
        let entries =
            std::fs::read_dir(dir).map_err(|e| NetworkError::io("read directory", dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| NetworkError::io("read directory", dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !known.contains(&name) && !live.contains(name.as_str()) {
                tracing::info!(file = %entry.path().display(), "removing leftover netns file");
                self.links.remove(&entry.path())?;
            }
        }
        let orphans: Vec<(Protocol, u16)> = self
            .nft
            .list_ports(&self.table)
            .await?
            .into_iter()
            .filter(|(_, _, owner)| !known.contains(owner))
            .map(|(p, port, _)| (p, port))
            .collect();
        let batch = nft::delete_ports(&self.table, &orphans);
        self.nft
            .apply("delete leftover ports", Vec::new(), batch)
            .await
    }

    /// Undoes `wire`; tolerant of parts that were never done or are already undone.
    pub(super) async fn unwire(&self, id: &str, rec: &Record) -> Result<(), NetworkError> {
        if !rec.ports.is_empty() {
            let keys: Vec<(Protocol, u16)> = rec
                .ports
                .iter()
                .map(|p| (p.protocol, p.host_port))
                .collect();
            self.unpublish(id, &keys).await?;
        }
        self.links.remove(&self.netns_path(id))
    }

    /// Deletes `owner`'s port elements; if the one-shot batch fails (some already gone), deletes
    /// only those still present and owned by `owner`.
    async fn unpublish(&self, owner: &str, keys: &[(Protocol, u16)]) -> Result<(), NetworkError> {
        let batch = nft::delete_ports(&self.table, keys);
        if self
            .nft
            .apply("unpublish ports", Vec::new(), batch)
            .await
            .is_ok()
        {
            return Ok(());
        }
        let present: Vec<(Protocol, u16)> = self
            .nft
            .list_ports(&self.table)
            .await?
            .into_iter()
            .filter(|(p, port, o)| o == owner && keys.contains(&(*p, *port)))
            .map(|(p, port, _)| (p, port))
            .collect();
        let batch = nft::delete_ports(&self.table, &present);
        self.nft.apply("unpublish ports", Vec::new(), batch).await
    }
}
