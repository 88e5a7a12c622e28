//! `hoist net doctor`: this node's end of the overlay, checked (talks to the local agent).

use crate::client::{Client, ClientError};
use crate::output::{self, Format};
use clap::Subcommand;
use hoist_proto::OverlayStatus;

#[derive(Debug, Subcommand)]
pub enum NetCmd {
    /// Check this node's overlay: every peer's WireGuard handshake, bytes, and probes through the
    /// tunnel; says what is wrong in words. Exits 0 when every check passes, 1 otherwise
    /// (`-o json` prints the status with a `problems` list).
    Doctor,
}

pub async fn run(cmd: NetCmd, client: &Client, format: Format) -> Result<i32, ClientError> {
    match cmd {
        NetCmd::Doctor => doctor(client, format).await,
    }
}

async fn doctor(client: &Client, format: Format) -> Result<i32, ClientError> {
    let status: OverlayStatus = client.get("/v1/overlay").await?;
    let problems = status.problems();
    match format {
        Format::Json => {
            let mut v = serde_json::to_value(&status).unwrap_or_default();
            v["problems"] = serde_json::json!(problems);
            output::json(&v);
        }
        Format::Table => {
            println!(
                "Overlay:   {} (port {}), subnet {} of {}",
                status.interface,
                status.listen_port,
                status.subnet.as_deref().unwrap_or("-"),
                status.cluster_cidr.as_deref().unwrap_or("-")
            );
            println!("Key:       {}", status.public_key);
            if let Some(m) = &status.mesh {
                println!(
                    "Services:  {} with {} endpoints in nftables (endpoints index {}){}",
                    m.services,
                    m.endpoints,
                    m.endpoints_index,
                    if m.last_error.is_some() {
                        ", NOT APPLIED"
                    } else {
                        ""
                    }
                );
            }
            let mut t = comfy_table::Table::new();
            t.load_preset(comfy_table::presets::NOTHING);
            t.set_header([
                "PEER",
                "ENDPOINT",
                "SUBNET",
                "HANDSHAKE",
                "RX",
                "TX",
                "PROBES",
                "RTT",
            ]);
            for p in &status.peers {
                t.add_row([
                    p.node.clone(),
                    p.endpoint.clone(),
                    p.subnet.clone(),
                    p.handshake_age_s
                        .map_or("never".into(), |a| format!("{a}s ago")),
                    p.rx_bytes.to_string(),
                    p.tx_bytes.to_string(),
                    format!(
                        "{}/{} answered",
                        p.probes_sent - p.probes_lost,
                        p.probes_sent
                    ),
                    p.probe_rtt_ms.map_or("-".into(), |r| format!("{r:.2} ms")),
                ]);
            }
            println!("{t}");
            if problems.is_empty() {
                println!("All checks passed.");
            }
            for p in &problems {
                println!("PROBLEM: {p}");
            }
        }
    }
    Ok(if problems.is_empty() { 0 } else { 1 })
}
