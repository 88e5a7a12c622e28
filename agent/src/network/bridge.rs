//! The host bridge: created once, idempotently, with the subnet's gateway address on it.

use super::error::netlink_errno;
use super::{Ipv4Subnet, NetworkError};
use futures::TryStreamExt;
use rtnetlink::{Handle, LinkBridge, LinkUnspec};
use std::net::IpAddr;

/// Makes sure bridge `name` exists, is up and carries the gateway address; returns its ifindex.
pub async fn ensure(handle: &Handle, name: &str, subnet: Ipv4Subnet) -> Result<u32, NetworkError> {
    let index = match link_index(handle, name).await? {
        Some(i) => i,
        None => {
            match handle
                .link()
                .add(LinkBridge::new(name).up().build())
                .execute()
                .await
            {
                Ok(()) => {}
                // Lost a race with another creator: fine, it is there now.
                Err(e) if netlink_errno(&e) == Some(libc::EEXIST) => {}
                Err(e) => return Err(NetworkError::netlink(format!("create bridge {name}"), e)),
            }
            link_index(handle, name)
                .await?
                .ok_or_else(|| NetworkError::Link {
                    name: name.to_string(),
                    problem: "vanished right after creation".into(),
                })?
        }
    };
    handle
        .link()
        .change(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(|e| NetworkError::netlink(format!("set bridge {name} up"), e))?;
    handle
        .address()
        .add(index, IpAddr::V4(subnet.gateway()), subnet.prefix_len())
        .replace()
        .execute()
        .await
        .map_err(|e| {
            NetworkError::netlink(
                format!("add address {} to bridge {name}", subnet.gateway()),
                e,
            )
        })?;
    Ok(index)
}

/// The ifindex of link `name`, or `None` if there is no such link.
pub async fn link_index(handle: &Handle, name: &str) -> Result<Option<u32>, NetworkError> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(msg)) => Ok(Some(msg.header.index)),
        Ok(None) => Ok(None),
        Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(NetworkError::netlink(format!("look up link {name}"), e)),
    }
}
