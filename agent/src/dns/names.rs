//! Which addresses a name has: pure lookups in the table of ready replicas.

use hoist_proto::node::ServiceEndpoints;
use std::collections::HashMap;
use std::net::Ipv4Addr;

/// What a name is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// One of ours, with these addresses (possibly none: a service without a ready replica).
    Addresses(Vec<Ipv4Addr>),
    /// A single-label name that is no service, or `tasks.`/`SLOT.` of an unknown one.
    NoSuchName,
    /// Not a cluster name: the host's resolvers answer it.
    NotOurs,
}

/// Ready replicas by service, as of a Raft index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registry {
    /// Raft index of the endpoints it was built from.
    pub index: u64,
    /// By lowercase service name: (slot, address), in slot order.
    services: HashMap<String, Vec<(u64, Ipv4Addr)>>,
    /// By lowercase service name: its virtual IP, for services that have one.
    vips: HashMap<String, Ipv4Addr>,
}

impl Registry {
    /// The table of a watch answer; replicas without a readable IPv4 address are left out.
    pub fn from_endpoints(e: &ServiceEndpoints) -> Registry {
        let services = e
            .services
            .iter()
            .map(|s| {
                let mut replicas: Vec<(u64, Ipv4Addr)> = s
                    .replicas
                    .iter()
                    .filter_map(|r| Some((r.slot, r.address.parse().ok()?)))
                    .collect();
                replicas.sort();
                (s.service.to_ascii_lowercase(), replicas)
            })
            .collect();
        let vips = e
            .services
            .iter()
            .filter_map(|s| {
                Some((
                    s.service.to_ascii_lowercase(),
                    s.vip.as_deref()?.parse().ok()?,
                ))
            })
            .collect();
        Registry {
            index: e.index,
            services,
            vips,
        }
    }

    pub fn len(&self) -> usize {
        self.services.len()
    }

    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// What `name` (any case, with or without the final dot) is.
    pub fn lookup(&self, name: &str) -> Lookup {
        let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
        if let Some(vip) = self.vips.get(&name) {
            return Lookup::Addresses(vec![*vip]);
        }
        if let Some(replicas) = self.services.get(&name) {
            return Lookup::Addresses(replicas.iter().map(|r| r.1).collect());
        }
        // `web.shop`: service `web` of stack `shop` (`shop_web`). A stack's containers have
        // `search shop` in their resolv.conf, so they reach each other by Compose's short names.
        if let Some((short, stack)) = name.split_once('.') {
            if !stack.contains('.') && !short.is_empty() {
                let full = format!("{stack}_{short}");
                if let Some(vip) = self.vips.get(&full) {
                    return Lookup::Addresses(vec![*vip]);
                }
                if let Some(replicas) = self.services.get(&full) {
                    return Lookup::Addresses(replicas.iter().map(|r| r.1).collect());
                }
            }
        }
        match name.split_once('.') {
            None if !name.is_empty() => Lookup::NoSuchName,
            Some(("tasks", service)) if !service.contains('.') => {
                match self.services.get(service) {
                    Some(r) => Lookup::Addresses(r.iter().map(|r| r.1).collect()),
                    None => Lookup::NoSuchName,
                }
            }
            Some((slot, service))
                if !service.contains('.') && slot.bytes().all(|b| b.is_ascii_digit()) =>
            {
                match (self.services.get(service), slot.parse::<u64>()) {
                    (Some(r), Ok(slot)) => {
                        let hit: Vec<Ipv4Addr> =
                            r.iter().filter(|x| x.0 == slot).map(|x| x.1).collect();
                        if hit.is_empty() {
                            Lookup::NoSuchName
                        } else {
                            Lookup::Addresses(hit)
                        }
                    }
                    _ => Lookup::NoSuchName,
                }
            }
            _ => Lookup::NotOurs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_proto::node::{ReplicaAddress, ServiceAddresses};

    fn registry() -> Registry {
        let r = |slot: u64, address: &str| ReplicaAddress {
            slot,
            task: format!("t{slot}"),
            node: "n1".into(),
            address: address.into(),
        };
        Registry::from_endpoints(&ServiceEndpoints {
            index: 9,
            term: 1,
            services: vec![
                ServiceAddresses {
                    service: "api".into(),
                    replicas: vec![r(1, "10.200.1.3"), r(0, "10.200.0.2"), r(2, "not an ip")],
                    vip: None,
                    ports: vec![],
                    ..Default::default()
                },
                ServiceAddresses {
                    service: "shop_db".into(),
                    replicas: vec![r(0, "10.200.2.4")],
                    vip: Some("10.201.0.9".into()),
                    ports: vec![],
                    ..Default::default()
                },
                ServiceAddresses {
                    service: "idle".into(),
                    replicas: vec![],
                    vip: None,
                    ports: vec![],
                    ..Default::default()
                },
                ServiceAddresses {
                    service: "web".into(),
                    replicas: vec![r(0, "10.200.0.7")],
                    vip: Some("10.201.0.3".into()),
                    ports: vec![],
                    ..Default::default()
                },
            ],
            ..Default::default()
        })
    }

    fn ips(v: &[&str]) -> Lookup {
        Lookup::Addresses(v.iter().map(|s| s.parse().unwrap()).collect())
    }

    #[test]
    fn service_tasks_and_slots() {
        let r = registry();
        assert_eq!(r.lookup("api"), ips(&["10.200.0.2", "10.200.1.3"]));
        assert_eq!(
            r.lookup("API."),
            ips(&["10.200.0.2", "10.200.1.3"]),
            "any case, final dot"
        );
        assert_eq!(r.lookup("tasks.api"), ips(&["10.200.0.2", "10.200.1.3"]));
        assert_eq!(r.lookup("1.api"), ips(&["10.200.1.3"]));
        assert_eq!(r.lookup("7.api"), Lookup::NoSuchName);
        assert_eq!(r.lookup("web"), ips(&["10.201.0.3"]), "the virtual IP");
        assert_eq!(r.lookup("tasks.web"), ips(&["10.200.0.7"]), "the replicas");
        assert_eq!(
            r.lookup("idle"),
            Lookup::Addresses(vec![]),
            "known, nothing ready: no data"
        );
    }

    #[test]
    fn a_stack_service_answers_to_its_short_name_in_the_stack() {
        let r = registry();
        assert_eq!(r.lookup("shop_db"), ips(&["10.201.0.9"]));
        assert_eq!(r.lookup("db.shop"), ips(&["10.201.0.9"]), "search shop");
        assert_eq!(r.lookup("DB.Shop."), ips(&["10.201.0.9"]));
        assert_eq!(r.lookup("db.other"), Lookup::NotOurs);
        assert_eq!(
            r.lookup("db"),
            Lookup::NoSuchName,
            "no stack, no short name"
        );
    }

    #[test]
    fn unknown_names_fail_fast_and_others_go_upstream() {
        let r = registry();
        assert_eq!(r.lookup("nope"), Lookup::NoSuchName);
        assert_eq!(r.lookup("tasks.nope"), Lookup::NoSuchName);
        assert_eq!(r.lookup("0.nope"), Lookup::NoSuchName);
        assert_eq!(r.lookup("example.com"), Lookup::NotOurs);
        assert_eq!(r.lookup("tasks.api.example.com"), Lookup::NotOurs);
        assert_eq!(r.lookup(""), Lookup::NotOurs);
    }
}
