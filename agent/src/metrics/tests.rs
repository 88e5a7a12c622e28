//! The agent's scrape over the fakes of `crate::testing`: a replica and a plain container, their
//! labels, limits, restarts and probes, in both formats. (Real cgroup and network numbers are
//! the lab test's, `tests/tests/metrics.rs`.)

use super::*;
use crate::testing::FakeHost;
use crate::worker::container::{RESTARTS, SERVICE, SLOT, TASK};
use hoist_proto::node::Health;
use hoist_proto::{CreateContainer, NetworkMode, Resources};
use std::time::Duration;

fn request(name: &str, labels: &[(&str, &str)], memory: Option<u64>) -> CreateContainer {
    CreateContainer {
        image: "busybox".into(),
        name: Some(name.into()),
        network: NetworkMode::None,
        resources: Resources {
            memory_bytes: memory,
            ..Resources::default()
        },
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..CreateContainer::default()
    }
}

use hoist_common::metrics::value_of as sample;

#[test]
fn a_replica_and_a_plain_container_with_their_labels_limits_restarts_and_probes() {
    let host = FakeHost::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (mgr, replica) = rt.block_on(async {
        let (mgr, _net) = host.agent().await;
        mgr.restore().await.expect("restore");
        let (replica, _) = mgr
            .create(
                request(
                    "web.0.t1",
                    &[
                        (SERVICE, "web"),
                        (TASK, "t1"),
                        (SLOT, "0"),
                        (RESTARTS, "1700000000000,1700000005000"),
                    ],
                    Some(64 << 20),
                ),
                false,
            )
            .await
            .expect("create the replica");
        mgr.create(request("plain", &[], None), false)
            .await
            .expect("create the plain container");
        (mgr, replica)
    });
    let id = replica.record.id.clone();
    events().probe(&id, true, Duration::from_millis(3), Health::Starting);
    events().probe(&id, true, Duration::from_millis(4), Health::Healthy);
    events().probe(&id, false, Duration::from_millis(2), Health::Healthy);

    let scrape = collect(&mgr);
    assert_eq!(scrape.containers.len(), 2);
    let text = render(&mgr, Exposition::Prometheus);
    let web = r#"{container="web.0.t1",service="web",task="t1",slot="0",node=""}"#;
    let plain = r#"{container="plain",service="",task="",slot="",node=""}"#;
    for (series, value) in [
        (format!("hoist_container_memory_limit_bytes{web}"), 64.0 * 1024.0 * 1024.0),
        (format!("hoist_container_restarts_total{web}"), 2.0),
        (format!("hoist_container_restarts_total{plain}"), 0.0),
        (format!("hoist_container_running{web}"), 1.0),
        (format!("hoist_container_running{plain}"), 1.0),
        (format!("hoist_container_oom_kills_total{plain}"), 0.0),
        (format!("hoist_container_cpu_seconds_total{plain}"), 0.0),
        (
            r#"hoist_health_probes_total{container="web.0.t1",service="web",task="t1",slot="0",node="",result="success"}"#.to_string(),
            2.0,
        ),
        (
            r#"hoist_health_probes_total{container="web.0.t1",service="web",task="t1",slot="0",node="",result="failure"}"#.to_string(),
            1.0,
        ),
        (
            r#"hoist_container_health_status{container="web.0.t1",service="web",task="t1",slot="0",node="",status="healthy"}"#.to_string(),
            1.0,
        ),
        (
            r#"hoist_container_health_status{container="web.0.t1",service="web",task="t1",slot="0",node="",status="starting"}"#.to_string(),
            0.0,
        ),
        (
            r#"hoist_health_probe_duration_seconds_count{container="web.0.t1",service="web",task="t1",slot="0",node=""}"#.to_string(),
            3.0,
        ),
    ] {
        assert_eq!(sample(&text, &series), Some(value), "{series} in\n{text}");
    }
    // No limit, no sample; `none` networking, no network bytes; the plain container was never
    // probed.
    assert!(!text.contains(&format!("hoist_container_memory_limit_bytes{plain}")));
    assert!(!text.contains("hoist_container_network_receive_bytes_total{"));
    assert!(!text.contains(r#"hoist_health_probes_total{container="plain""#));
    assert!(text.contains("# TYPE hoist_image_pulls_total counter\n"));
    assert!(text.contains("hoist_agent_build_info{version="));

    let om = render(&mgr, Exposition::OpenMetrics);
    assert!(
        om.contains("# UNIT hoist_container_memory_usage_bytes bytes\n"),
        "{om}"
    );
    assert!(om.ends_with("# EOF\n"));

    // A removed container's probes go with it.
    rt.block_on(mgr.remove(&id, true)).expect("remove");
    let text = render(&mgr, Exposition::Prometheus);
    assert!(!text.contains("web.0.t1"), "{text}");
    assert!(events().probes(&HashSet::from([id.as_str()])).is_empty());
}

#[test]
fn the_listen_flag() {
    assert_eq!(
        parse_listen(DEFAULT_LISTEN),
        Ok(Some("127.0.0.1:9323".parse().expect("addr")))
    );
    assert_eq!(
        parse_listen("[::1]:9100"),
        Ok(Some("[::1]:9100".parse().expect("addr")))
    );
    assert_eq!(parse_listen("none"), Ok(None));
    assert_eq!(parse_listen(" "), Ok(None));
    let err = parse_listen("localhost").expect_err("no port");
    assert!(err.contains("is not IP:PORT"), "{err}");
}
