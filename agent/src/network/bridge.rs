//! The host bridge: created once, idempotently, with the subnet's gateway address on it.

use super::error::netlink_errno;
use super::{Ipv4Subnet, NetworkError};
use futures::TryStreamExt;
use rtnetlink::{Handle, LinkBridge, LinkUnspec};
use std::net::IpAddr;

/// Makes sure bridge `name` exists, is up, has its stable MAC (and `mtu`, when given: the
/// overlay's, so that containers never send what the tunnel cannot carry) and carries the
/// gateway address; returns its ifindex.
pub async fn ensure(
    handle: &Handle,
    name: &str,
    subnet: Ipv4Subnet,
    mtu: Option<u32>,
) -> Result<u32, NetworkError> {
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
    let mut change = LinkUnspec::new_with_index(index)
        .up()
        .address(stable_mac(name, subnet).to_vec());
    if let Some(mtu) = mtu {
        change = change.mtu(mtu);
    }
    handle
        .link()
        .change(change.build())
        .execute()
        .await
        .map_err(|e| NetworkError::netlink(format!("set bridge {name} up with a fixed MAC"), e))?;
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

/// A fixed, locally administered MAC for the bridge. Without one, a Linux bridge takes the lowest
/// MAC of its ports, so it changes whenever a container comes or goes, and containers that cached
/// the old gateway MAC lose their default route until ARP notices (seconds). Derived from the
/// bridge name and subnet so that it stays the same across agent restarts.
pub fn stable_mac(name: &str, subnet: Ipv4Subnet) -> [u8; 6] {
    let seed = format!("{name}/{subnet}");
    let h = seed.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let b = h.to_be_bytes();
    // 0x02: locally administered, unicast.
    [0x02, b[0], b[1], b[2], b[3], b[4]]
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
