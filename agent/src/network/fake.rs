//! `ContainerNetwork`, the interface the runtime codes against, and `FakeNetwork`, an in-memory
//! implementation for unit tests without root: real IPAM and port-conflict rules (the pure
//! modules), no kernel, and a log of the calls made. Pass it in explicitly where a `Network`
//! would go.

use super::{Attachment, Ipam, Ipv4Subnet, Network, NetworkError, PortTable};
use futures::future::BoxFuture;
use hoist_proto::agent::{NetworkMode, PortMapping};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

/// What the agent needs from container networking (implemented by `Network` and `FakeNetwork`).
pub trait ContainerNetwork: Send + Sync + std::fmt::Debug {
    /// See [`Network::attach`].
    fn attach<'a>(
        &'a self,
        id: &'a str,
        mode: NetworkMode,
        ports: &'a [PortMapping],
    ) -> BoxFuture<'a, Result<Attachment, NetworkError>>;
    /// See [`Network::detach`].
    fn detach<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), NetworkError>>;
    /// See [`Network::retain`].
    fn retain<'a>(&'a self, live_ids: &'a [String]) -> BoxFuture<'a, Result<(), NetworkError>>;
}

impl ContainerNetwork for Network {
    fn attach<'a>(
        &'a self,
        id: &'a str,
        mode: NetworkMode,
        ports: &'a [PortMapping],
    ) -> BoxFuture<'a, Result<Attachment, NetworkError>> {
        Box::pin(Network::attach(self, id, mode, ports))
    }
    fn detach<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), NetworkError>> {
        Box::pin(Network::detach(self, id))
    }
    fn retain<'a>(&'a self, live_ids: &'a [String]) -> BoxFuture<'a, Result<(), NetworkError>> {
        Box::pin(Network::retain(self, live_ids))
    }
}

/// A call `FakeNetwork` received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeCall {
    Attach {
        id: String,
        mode: NetworkMode,
        ports: Vec<PortMapping>,
    },
    Detach {
        id: String,
    },
    Retain {
        live_ids: Vec<String>,
    },
}

#[derive(Debug)]
struct FakeState {
    ipam: Ipam,
    ports: PortTable,
    attached: BTreeMap<String, Attachment>,
    calls: Vec<FakeCall>,
}

/// In-memory `ContainerNetwork`: hands out addresses and checks ports like `Network`, touches
/// nothing. Netns paths are reported under `netns_dir` but never created.
#[derive(Debug)]
pub struct FakeNetwork {
    subnet: Ipv4Subnet,
    netns_dir: PathBuf,
    state: Mutex<FakeState>,
}

impl FakeNetwork {
    pub fn new(subnet: Ipv4Subnet, netns_dir: PathBuf) -> Self {
        let state = FakeState {
            ipam: Ipam::new(subnet),
            ports: PortTable::default(),
            attached: BTreeMap::new(),
            calls: Vec::new(),
        };
        FakeNetwork {
            subnet,
            netns_dir,
            state: Mutex::new(state),
        }
    }

    fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<FakeCall> {
        self.state().calls.clone()
    }

    /// Containers currently attached.
    pub fn attached(&self) -> BTreeMap<String, Attachment> {
        self.state().attached.clone()
    }

    fn attach_now(
        &self,
        id: &str,
        mode: NetworkMode,
        ports: &[PortMapping],
    ) -> Result<Attachment, NetworkError> {
        super::validate_id(id)?;
        let mut st = self.state();
        st.calls.push(FakeCall::Attach {
            id: id.to_string(),
            mode,
            ports: ports.to_vec(),
        });
        if mode != NetworkMode::Bridge && !ports.is_empty() {
            let mode = if mode == NetworkMode::Host {
                "host"
            } else {
                "none"
            };
            return Err(NetworkError::PortsNeedBridge {
                id: id.to_string(),
                mode,
            });
        }
        if mode == NetworkMode::Host {
            return Ok(Attachment {
                netns: None,
                ip: None,
                gateway: None,
                prefix_len: 0,
            });
        }
        if st.attached.contains_key(id) {
            return Err(NetworkError::AlreadyAttached { id: id.to_string() });
        }
        st.ports.check(id, ports)?;
        let mut att = Attachment {
            netns: Some(self.netns_dir.join(id)),
            ip: None,
            gateway: None,
            prefix_len: 0,
        };
        if mode == NetworkMode::Bridge {
            let ip = st.ipam.allocate().ok_or_else(|| NetworkError::SubnetFull {
                subnet: self.subnet.to_string(),
                id: id.to_string(),
            })?;
            att = Attachment {
                ip: Some(ip),
                gateway: Some(self.subnet.gateway()),
                prefix_len: self.subnet.prefix_len(),
                ..att
            };
        }
        st.ports.claim(id, ports)?;
        st.attached.insert(id.to_string(), att.clone());
        Ok(att)
    }

    fn detach_now(&self, id: &str) {
        let mut st = self.state();
        st.calls.push(FakeCall::Detach { id: id.to_string() });
        if let Some(ip) = st.attached.remove(id).and_then(|a| a.ip) {
            st.ipam.release(ip);
        }
        st.ports.release(id);
    }
}

impl ContainerNetwork for FakeNetwork {
    fn attach<'a>(
        &'a self,
        id: &'a str,
        mode: NetworkMode,
        ports: &'a [PortMapping],
    ) -> BoxFuture<'a, Result<Attachment, NetworkError>> {
        Box::pin(async move { self.attach_now(id, mode, ports) })
    }
    fn detach<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), NetworkError>> {
        Box::pin(async move {
            super::validate_id(id)?;
            self.detach_now(id);
            Ok(())
        })
    }
    fn retain<'a>(&'a self, live_ids: &'a [String]) -> BoxFuture<'a, Result<(), NetworkError>> {
        Box::pin(async move {
            let stale: Vec<String> = {
                let mut st = self.state();
                st.calls.push(FakeCall::Retain {
                    live_ids: live_ids.to_vec(),
                });
                st.attached
                    .keys()
                    .filter(|id| !live_ids.contains(id))
                    .cloned()
                    .collect()
            };
            for id in stale {
                self.detach_now(&id);
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_proto::agent::Protocol;
    use std::net::Ipv4Addr;
    use std::sync::Arc;

    #[tokio::test]
    async fn fake_behaves_like_the_real_thing() {
        let net: Arc<dyn ContainerNetwork> = Arc::new(FakeNetwork::new(
            "10.89.0.0/24".parse().expect("subnet"),
            "/data/netns".into(),
        ));
        let web = [PortMapping {
            host_port: 8080,
            container_port: 80,
            protocol: Protocol::Tcp,
        }];
        let a = net
            .attach("a", NetworkMode::Bridge, &web)
            .await
            .expect("attach");
        assert_eq!(a.ip, Some(Ipv4Addr::new(10, 89, 0, 2)));
        assert_eq!(a.netns, Some(PathBuf::from("/data/netns/a")));
        let err = net
            .attach("b", NetworkMode::Bridge, &web)
            .await
            .expect_err("conflict");
        assert_eq!(
            err.to_string(),
            "host port 8080/tcp is already published by container a"
        );
        net.attach("b", NetworkMode::Bridge, &[])
            .await
            .expect("attach b");
        net.retain(&["b".to_string()]).await.expect("retain");
        let c = net
            .attach("c", NetworkMode::Bridge, &web)
            .await
            .expect("a's port and address are free");
        assert_eq!(c.ip, Some(Ipv4Addr::new(10, 89, 0, 2)));
        net.detach("c").await.expect("detach");
        net.detach("c").await.expect("idempotent");
    }

    #[test]
    fn records_calls() {
        let fake = FakeNetwork::new(Ipv4Subnet::default(), "/n".into());
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            fake.attach("x", NetworkMode::None, &[])
                .await
                .expect("none");
            fake.detach("x").await.expect("detach");
        });
        assert_eq!(
            fake.calls(),
            vec![
                FakeCall::Attach {
                    id: "x".into(),
                    mode: NetworkMode::None,
                    ports: vec![]
                },
                FakeCall::Detach { id: "x".into() }
            ]
        );
        assert!(fake.attached().is_empty());
    }
}
