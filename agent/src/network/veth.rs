//! The veth pair of a container: one netlink request creates both ends, attaches the host end to
//! the bridge and puts the peer into the container's namespace as `eth0`; a second connection,
//! opened inside that namespace, adds the address and the default route.

use super::NetworkError;
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth};
use rtnetlink::{Handle, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, BorrowedFd};

/// The container-side interface name.
pub const CONTAINER_IFNAME: &str = "eth0";

/// Creates `host_name` (up, enslaved to `bridge_index`) with its peer `eth0` (still down) inside
/// `netns`, both with `mtu` when given.
/// (Setting the peer up in the same request fails with ENOTCONN on kernel 6.18 when it goes to
/// another namespace, so `configure_container` does that.)
pub async fn create_pair(
    host: &Handle,
    host_name: &str,
    bridge_index: u32,
    netns: BorrowedFd<'_>,
    mtu: Option<u32>,
) -> Result<(), NetworkError> {
    let mut peer = LinkMessageBuilder::<LinkUnspec>::new()
        .name(CONTAINER_IFNAME.to_string())
        .setns_by_fd(netns.as_raw_fd());
    let mut host_end = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
        .name(host_name.to_string())
        .controller(bridge_index)
        .up();
    if let Some(mtu) = mtu {
        peer = peer.mtu(mtu);
        host_end = host_end.mtu(mtu);
    }
    let msg = host_end
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())))
        .build();
    host.link()
        .add(msg)
        .execute()
        .await
        .map_err(|e| NetworkError::netlink(format!("create veth {host_name}"), e))
}

/// The MAC of the container interface that holds `ip`: `02:42:` and the address, as Docker does.
/// An address handed out again gets the same MAC, so neighbour entries the host (and other
/// containers) cached for it stay right; with a random MAC they point at a vanished interface and
/// connections to the new container time out until the entry expires (seconds to minutes).
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// Inside the container namespace: `eth0` (ifindex `index` there) up with its address and the
/// MAC derived from it, and a default route via the gateway.
pub async fn configure_container(
    ns: &Handle,
    index: u32,
    ip: Ipv4Addr,
    prefix_len: u8,
    gateway: Ipv4Addr,
) -> Result<(), NetworkError> {
    let up = async {
        ns.link()
            .change(
                LinkUnspec::new_with_index(index)
                    .address(mac_for(ip).to_vec())
                    .up()
                    .build(),
            )
            .execute()
            .await
            .map_err(|e| NetworkError::netlink(format!("set {CONTAINER_IFNAME} up"), e))
    };
    let address = async {
        ns.address()
            .add(index, IpAddr::V4(ip), prefix_len)
            .execute()
            .await
            .map_err(|e| {
                NetworkError::netlink(
                    format!("add address {ip}/{prefix_len} to {CONTAINER_IFNAME}"),
                    e,
                )
            })
    };
    // Independent requests: both in flight at once.
    let (up, address) = futures::join!(up, address);
    up.and(address)?;
    let route = RouteMessageBuilder::<Ipv4Addr>::new()
        .gateway(gateway)
        .output_interface(index)
        .build();
    ns.route()
        .add(route)
        .execute()
        .await
        .map_err(|e| NetworkError::netlink(format!("add default route via {gateway}"), e))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_mac_follows_the_address() {
        assert_eq!(
            super::mac_for(std::net::Ipv4Addr::new(10, 89, 0, 7)),
            [0x02, 0x42, 10, 89, 0, 7]
        );
    }
}
