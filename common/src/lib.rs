//! Small pieces shared by Hoist's binaries: quantities and flag parsing, ids and names, tracing setup.
//!
//! Everything here is pure (no I/O) except [`init_tracing`], so the parsers are tested directly.

pub mod dockerignore;
pub mod ids;
pub mod json_body;
pub mod json_numbers;
pub mod metrics;
pub mod mount_flags;
pub mod parse;
pub mod private_file;
pub mod query;

/// Installs ring as the process's rustls crypto provider; call it before building any `reqwest`
/// client. Why: the agent's registry client needs TLS, `reqwest` is built with `rustls-no-provider`
/// (ring instead of building aws-lc), and Cargo unifies that feature across the workspace, so every
/// client in every Hoist binary and test would otherwise panic when it is built. Idempotent.
pub fn init_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Installs the `tracing` subscriber used by every Hoist daemon: human-readable lines on stderr,
/// filtered by `RUST_LOG` (default `info`).
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
