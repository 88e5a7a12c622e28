//! `hoist-agent __wg IFACE`: the embedded userspace WireGuard device (gotatun, Mullvad's
//! maintained fork of boringtun) in a process of its own, so that the data plane outlives the
//! agent (a restart or an upgrade re-adopts it through its UAPI socket,
//! `/var/run/wireguard/IFACE.sock`). It prints one line when the device is up (`ready`) or why
//! it is not, then serves until its socket is removed ([`stop`]) or it is killed.
//!
//! gotatun rather than boringtun 0.7: measured here with `bench/overlay.sh`, it carried 1.55× boringtun's
//! TCP throughput (0.58 vs 0.38 Gbit/s on one stream) with the same UAPI.

use super::OverlayError;
use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
use std::time::Duration;

/// The helper's main, chosen by `main` before any runtime starts.
pub fn main(interface: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let r: anyhow::Result<()> = rt.block_on(async {
        let socket = format!("/var/run/wireguard/{interface}.sock");
        let uapi = gotatun::device::uapi::UapiServer::default_unix_socket(interface, None, None)
            .map_err(|e| anyhow::anyhow!("UAPI socket {socket}: {e}"))?;
        let device = gotatun::device::DeviceBuilder::new()
            .with_default_udp()
            .create_tun(interface)
            .map_err(|e| anyhow::anyhow!("TUN device {interface}: {e}"))?
            .with_uapi(uapi)
            .build()
            .await
            .map_err(|e| anyhow::anyhow!("WireGuard device {interface}: {e}"))?;
        let _ = writeln!(out, "ready");
        let _ = out.flush();
        // Serve until the socket is removed (how the agent, or an operator, stops it).
        while std::path::Path::new(&socket).exists() {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        device.stop().await;
        Ok(())
    });
    if let Err(e) = r {
        let _ = writeln!(out, "failed: {e}");
        let _ = out.flush();
        std::process::exit(1);
    }
    Ok(())
}

/// Starts `hoist-agent __wg IFACE` detached (its own process group, not the agent's child for
/// long: a thread reaps it) and waits for its one line.
pub fn spawn(interface: &str) -> Result<(), OverlayError> {
    let mut child = std::process::Command::new(crate::runtime::selfexe::helper_exe())
        .process_group(0)
        .arg("__wg")
        .arg(interface)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .map_err(OverlayError::io("start hoist-agent __wg"))?;
    let stdout = child.stdout.take().expect("piped");
    let mut line = String::new();
    let read = std::io::BufReader::new(stdout).read_line(&mut line);
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    read.map_err(OverlayError::io("read hoist-agent __wg's report"))?;
    match line.trim() {
        "ready" => Ok(()),
        other => Err(OverlayError::Invalid(format!(
            "the userspace WireGuard device {interface} did not start: {other}"
        ))),
    }
}

/// Stops a userspace device by removing its socket (the device notices within a second).
pub fn stop(interface: &str) {
    for dir in ["/var/run/wireguard", "/run/wireguard"] {
        let _ = std::fs::remove_file(format!("{dir}/{interface}.sock"));
    }
}
