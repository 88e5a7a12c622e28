//! Errors of the networking module: one enum, lowercase one-line messages naming the thing involved.

use hoist_proto::agent::Protocol;
use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while wiring a container to the network.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// A subnet string did not parse.
    #[error("invalid subnet {input:?}: {reason}")]
    InvalidSubnet { input: String, reason: String },
    /// A container id that cannot be used as a file name.
    #[error("invalid container id {id:?}: use 1-128 characters from [A-Za-z0-9_.-]")]
    InvalidId { id: String },
    /// The host port is already published by a container on this agent.
    #[error("host port {port}/{protocol} is already published by container {owner}")]
    PortInUse {
        port: u16,
        protocol: Protocol,
        owner: String,
    },
    /// A port mapping with port 0.
    #[error("invalid port mapping {mapping} for container {id}: ports must be 1-65535")]
    InvalidPort { id: String, mapping: String },
    /// The same host port appears twice in one request.
    #[error("host port {port}/{protocol} is listed twice for container {id}")]
    DuplicatePort {
        port: u16,
        protocol: Protocol,
        id: String,
    },
    /// Only bridge mode can publish ports (host mode already uses the host's ports; none has no address).
    #[error("container {id} uses network mode {mode} and cannot publish ports")]
    PortsNeedBridge { id: String, mode: &'static str },
    /// A link is missing or not what we expect.
    #[error("link {name}: {problem}")]
    Link { name: String, problem: String },
    /// The bridge name is unusable as a Linux interface name.
    #[error("invalid bridge name {name:?}: use 1-15 characters without '/' or whitespace")]
    InvalidBridgeName { name: String },
    /// Every address of the subnet is in use.
    #[error("subnet {subnet} is full: no free address for container {id}")]
    SubnetFull { subnet: String, id: String },
    /// `attach` was called twice for one container.
    #[error("container {id} is already attached")]
    AlreadyAttached { id: String },
    /// A netlink request failed.
    #[error("netlink: {op}: {source}")]
    Netlink {
        op: String,
        #[source]
        source: rtnetlink::Error,
    },
    /// A system call or file operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// `nft` rejected a change or could not run.
    #[error("nftables: {op}: {message}")]
    Nft { op: String, message: String },
    /// The persisted state file is unreadable.
    #[error("network state {}: {reason}", path.display())]
    State { path: PathBuf, reason: String },
    /// A helper thread died (a bug; the panic message is in the log).
    #[error("network helper thread for {what} panicked")]
    ThreadPanicked { what: String },
}

impl NetworkError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        NetworkError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn errno(
        op: &'static str,
        path: impl Into<PathBuf>,
        errno: nix::errno::Errno,
    ) -> Self {
        NetworkError::Io {
            op,
            path: path.into(),
            source: io::Error::from(errno),
        }
    }

    pub(crate) fn netlink(op: impl Into<String>, source: rtnetlink::Error) -> Self {
        NetworkError::Netlink {
            op: op.into(),
            source,
        }
    }
}

/// The (positive) errno carried by a netlink error, if any.
pub(crate) fn netlink_errno(err: &rtnetlink::Error) -> Option<i32> {
    match err {
        rtnetlink::Error::NetlinkError(msg) => msg.code.map(|c| -c.get()),
        _ => None,
    }
}
