//! `hoist-agent __wg IFACE`: the embedded userspace WireGuard device (boringtun) in a process of
//! its own, so that the data plane outlives the agent (a restart or an upgrade re-adopts it
//! through its UAPI socket, `/var/run/wireguard/IFACE.sock`). It prints one line when the device
//! is up (`ready`) or why it is not, then serves until its socket is removed
//! ([`stop`]) or it is killed.

use super::OverlayError;
use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;

/// The helper's main, chosen by `main` before any runtime starts.
pub fn main(interface: &str) -> anyhow::Result<()> {
    let config = boringtun::device::DeviceConfig {
        n_threads: 2,
        use_connected_socket: true,
        use_multi_queue: false,
        uapi_fd: -1,
    };
    let mut out = std::io::stdout();
    match boringtun::device::DeviceHandle::new(interface, config) {
        Ok(mut handle) => {
            let _ = writeln!(out, "ready");
            let _ = out.flush();
            handle.wait();
            handle.clean();
            Ok(())
        }
        Err(e) => {
            let _ = writeln!(out, "failed: {e}");
            let _ = out.flush();
            std::process::exit(1)
        }
    }
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
