//! Small pieces shared by Hoist's binaries: quantities and flag parsing, ids and names, tracing setup.
//!
//! Everything here is pure (no I/O) except [`init_tracing`], so the parsers are tested directly.

pub mod dockerignore;
pub mod ids;
pub mod parse;

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
