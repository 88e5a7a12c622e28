//! Container networking: the host bridge, veth pairs, IPAM and published ports.
