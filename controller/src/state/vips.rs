//! Services' virtual IPs and published ports: what `apply` checks and allocates so that every
//! member computes the same addresses (allocation is in `apply`, like the overlay's subnets).
//!
//! A service with `endpoint_mode = "vip"` gets the lowest free address of the cluster's VIP
//! range (`hoist-controller --vip-cidr`, written into the state with the overlay's address plan)
//! when it is first applied, keeps it across updates, scales and rollbacks, and frees it on `rm`
//! or when it moves to `dnsrr`. A published port belongs to one service cluster-wide as soon as
//! one of its publishers uses the routing mesh (`mode = "ingress"`, which takes it on every
//! node); two services may share a port number only when both publish it in `host` mode, where
//! the scheduler keeps them on different nodes.

use super::{invalid, State};
use hoist_proto::raft::{CommandError, ErrorCode};
use hoist_proto::service::{EndpointMode, PortMode, ServiceSpec};
use ipnet::Ipv4Net;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// The lowest address of `range` not in `used`, skipping the network and broadcast addresses.
pub fn allocate_vip(range: Ipv4Net, used: &BTreeSet<Ipv4Addr>) -> Option<Ipv4Addr> {
    range.hosts().find(|a| !used.contains(a))
}

impl State {
    /// The VIP range, once the cluster has one.
    fn vip_range(&self) -> Option<Ipv4Net> {
        self.network
            .as_ref()?
            .vip_cidr
            .as_deref()?
            .parse::<Ipv4Net>()
            .ok()
            .map(|n| n.trunc())
    }

    /// The VIP `spec`'s service should have after this apply: its current one, a new one, or none
    /// (`dnsrr`, or no range yet). An exhausted range is an error naming it.
    pub(super) fn vip_for(&self, spec: &ServiceSpec) -> Result<Option<String>, CommandError> {
        let Some(range) = self.vip_range() else {
            return Ok(None);
        };
        if spec.endpoint_mode == EndpointMode::Dnsrr {
            return Ok(None);
        }
        if let Some(v) = self.vips.get(&spec.name) {
            return Ok(Some(v.clone()));
        }
        let used: BTreeSet<Ipv4Addr> = self.vips.values().filter_map(|v| v.parse().ok()).collect();
        match allocate_vip(range, &used) {
            Some(a) => Ok(Some(a.to_string())),
            None => Err(CommandError {
                code: ErrorCode::Conflict,
                message: format!(
                    "endpoint_mode: the virtual IP range {range} has no free address left \
                     (remove a service, use endpoint_mode = \"dnsrr\", or start the cluster with a \
                     larger --vip-cidr)"
                ),
                field: Some("endpoint_mode".into()),
            }),
        }
    }

    /// Refuses a set of specs applied at once (a stack) when the range cannot give each new
    /// `vip` service its own address.
    pub(super) fn check_vips_for(&self, specs: &[&ServiceSpec]) -> Result<(), CommandError> {
        let Some(range) = self.vip_range() else {
            return Ok(());
        };
        let mut used: BTreeSet<Ipv4Addr> =
            self.vips.values().filter_map(|v| v.parse().ok()).collect();
        for spec in specs {
            if spec.endpoint_mode == EndpointMode::Dnsrr || self.vips.contains_key(&spec.name) {
                continue;
            }
            match allocate_vip(range, &used) {
                Some(a) => {
                    used.insert(a);
                }
                None => {
                    return Err(CommandError {
                        code: ErrorCode::Conflict,
                        message: format!(
                            "{}: endpoint_mode: the virtual IP range {range} has no free address \
                             left for every service of the stack",
                            spec.name
                        ),
                        field: Some("endpoint_mode".into()),
                    })
                }
            }
        }
        Ok(())
    }

    /// Records `service`'s VIP; whether it changed.
    pub(super) fn set_vip(&mut self, service: &str, vip: Option<String>) -> bool {
        match vip {
            Some(v) => self.vips.insert(service.to_string(), v.clone()) != Some(v),
            None => self.vips.remove(service).is_some(),
        }
    }

    /// Gives every `vip` service without one its address (when the range is first set).
    pub(super) fn assign_missing_vips(&mut self) {
        let names: Vec<String> = self.services.keys().cloned().collect();
        for name in names {
            let spec = self.services[&name].current().spec.clone();
            // A full range leaves the rest without one; their next apply says why.
            if let Ok(vip) = self.vip_for(&spec) {
                if self.set_vip(&name, vip) {
                    self.touch_endpoints(&name);
                }
            }
        }
    }

    /// Refuses a published port another service already publishes, unless both use `host`
    /// mode. Only once the cluster has the routing mesh (format 2): older members accept it.
    pub(super) fn check_published_ports(&self, spec: &ServiceSpec) -> Result<(), CommandError> {
        self.check_published_ports_except(spec, &BTreeSet::new())
    }

    /// [`State::check_published_ports`], not counting the services named in `except`.
    pub(super) fn check_published_ports_except(
        &self,
        spec: &ServiceSpec,
        except: &BTreeSet<String>,
    ) -> Result<(), CommandError> {
        if self.cluster_format < 2 {
            return Ok(());
        }
        for (i, p) in spec.ports.iter().enumerate() {
            let Some(published) = p.published else {
                continue;
            };
            for (other, record) in &self.services {
                if *other == spec.name || except.contains(other) {
                    continue;
                }
                let clash = record.current().spec.ports.iter().find(|q| {
                    q.published == Some(published)
                        && q.protocol == p.protocol
                        && (q.mode == PortMode::Ingress || p.mode == PortMode::Ingress)
                });
                if clash.is_some() {
                    let mut e = invalid(
                        &format!("ports[{i}].published"),
                        format!("{published} is already published by service {other:?}"),
                    );
                    e.code = ErrorCode::Conflict;
                    return Err(e);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_the_lowest_free_host_address() {
        let range: Ipv4Net = "10.201.0.0/30".parse().unwrap();
        let mut used = BTreeSet::new();
        assert_eq!(
            allocate_vip(range, &used),
            Some(Ipv4Addr::new(10, 201, 0, 1))
        );
        used.insert(Ipv4Addr::new(10, 201, 0, 1));
        assert_eq!(
            allocate_vip(range, &used),
            Some(Ipv4Addr::new(10, 201, 0, 2))
        );
        used.insert(Ipv4Addr::new(10, 201, 0, 2));
        assert_eq!(
            allocate_vip(range, &used),
            None,
            "no network or broadcast address"
        );
    }
}

#[cfg(test)]
mod apply_tests {
    use crate::state::tests::{cluster_with_nodes, req};
    use hoist_proto::cluster::ClusterNetwork;
    use hoist_proto::raft::{Command, Response};
    use hoist_proto::service::{EndpointMode, PortMode, ServicePort, ServiceSpec};

    fn with_range(range: &str) -> crate::state::State {
        let mut st = cluster_with_nodes(1);
        st.network = Some(ClusterNetwork {
            cidr: "10.200.0.0/16".into(),
            subnet_prefix: 24,
            vip_cidr: Some(range.into()),
        });
        st
    }

    fn apply(st: &mut crate::state::State, spec: ServiceSpec) -> Response {
        st.index += 1;
        let i = st.index;
        st.apply_at(i, &req(1, Command::ApplyService(Box::new(spec))))
    }

    fn published(port: i64, mode: PortMode) -> ServicePort {
        ServicePort {
            target: 80,
            published: Some(port),
            protocol: Default::default(),
            mode,
        }
    }

    #[test]
    fn vips_are_kept_across_updates_freed_on_rm_and_exhaustion_names_the_range() {
        let mut st = with_range("10.201.0.0/30");
        let Response::Service(c) = apply(&mut st, ServiceSpec::new("a", "busybox")) else {
            panic!()
        };
        assert_eq!(c.service.vip.as_deref(), Some("10.201.0.1"));
        let mut a2 = ServiceSpec::new("a", "busybox:2");
        a2.replicas = 3;
        let Response::Service(c) = apply(&mut st, a2) else {
            panic!()
        };
        assert_eq!(
            c.service.vip.as_deref(),
            Some("10.201.0.1"),
            "kept across updates"
        );
        apply(&mut st, ServiceSpec::new("b", "busybox"));
        let Response::Error(e) = apply(&mut st, ServiceSpec::new("c", "busybox")) else {
            panic!("the range is full")
        };
        assert!(e.message.contains("10.201.0.0/30"), "{}", e.message);
        assert!(
            !st.services.contains_key("c"),
            "a refused apply changes nothing"
        );
        let mut dnsrr = ServiceSpec::new("c", "busybox");
        dnsrr.endpoint_mode = EndpointMode::Dnsrr;
        assert!(matches!(apply(&mut st, dnsrr), Response::Service(_)));
        st.apply_at(9, &req(2, Command::DeleteService { name: "a".into() }));
        let Response::Service(c) = apply(&mut st, ServiceSpec::new("d", "busybox")) else {
            panic!()
        };
        assert_eq!(c.service.vip.as_deref(), Some("10.201.0.1"), "freed by rm");
    }

    #[test]
    fn a_published_port_belongs_to_one_service_unless_both_use_host_mode() {
        let mut st = with_range("10.201.0.0/16");
        let mut a = ServiceSpec::new("a", "busybox");
        a.ports = vec![published(8080, PortMode::Ingress)];
        apply(&mut st, a);
        let mut b = ServiceSpec::new("b", "busybox");
        b.ports = vec![
            published(9090, PortMode::Host),
            published(8080, PortMode::Host),
        ];
        let Response::Error(e) = apply(&mut st, b.clone()) else {
            panic!("8080 is taken")
        };
        assert_eq!(e.field.as_deref(), Some("ports[1].published"));
        assert!(e.message.contains("service \"a\""), "{}", e.message);
        b.ports.pop();
        assert!(matches!(apply(&mut st, b), Response::Service(_)));
        let mut c = ServiceSpec::new("c", "busybox");
        c.ports = vec![published(9090, PortMode::Host)];
        assert!(
            matches!(apply(&mut st, c), Response::Service(_)),
            "two host-mode publishers share a port on different nodes"
        );
    }
}
