//! The controller's exposition without a running member: recorders and a snapshot encoded as a
//! scrape encodes them.

use super::*;

fn encode(recorders: &Recorders, snap: Snapshot) -> String {
    let mut r = Registry::default();
    recorders.register(&mut r);
    r.register_collector(Box::new(snap));
    Exposition::Prometheus.encode(&r)
}

use hoist_common::metrics::value_of as sample;

#[test]
fn requests_are_counted_by_route_method_and_status_with_latency() {
    let rec = Recorders::default();
    rec.request("GET", "/v1/services/{name}", 200, Duration::from_millis(3));
    rec.request("GET", "/v1/services/{name}", 200, Duration::from_millis(30));
    rec.request("POST", "/v1/services", 400, Duration::from_millis(1));
    let text = encode(&rec, Snapshot::default());
    assert_eq!(
        sample(
            &text,
            r#"hoist_api_requests_total{method="GET",route="/v1/services/{name}",status="200"}"#
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"hoist_api_requests_total{method="POST",route="/v1/services",status="400"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"hoist_api_request_duration_seconds_bucket{method="GET",route="/v1/services/{name}",le="0.005"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"hoist_api_request_duration_seconds_count{method="GET",route="/v1/services/{name}"}"#
        ),
        Some(2.0)
    );
}

#[test]
fn raft_recorders_and_placements() {
    let rec = Recorders::default();
    rec.log_synced(Duration::from_micros(300));
    rec.log_synced(Duration::from_millis(3));
    rec.committed(42);
    rec.leader_changed();
    rec.placements(5, 1);
    rec.placements(2, 0);
    let text = encode(&rec, Snapshot::default());
    assert_eq!(
        sample(&text, "hoist_raft_log_fsync_duration_seconds_count"),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"hoist_raft_log_fsync_duration_seconds_bucket{le="0.0005"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(sample(&text, "hoist_raft_commit_index"), Some(42.0));
    assert_eq!(sample(&text, "hoist_raft_leader_changes_total"), Some(1.0));
    assert_eq!(
        sample(
            &text,
            r#"hoist_scheduler_placements_total{result="placed"}"#
        ),
        Some(7.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"hoist_scheduler_placements_total{result="refused"}"#
        ),
        Some(1.0)
    );
}

#[test]
fn a_snapshot_gives_raft_progress_services_pending_and_nodes() {
    let snap = Snapshot {
        term: 7,
        applied: 120,
        leader: true,
        services: vec![(
            "web".into(),
            cluster::Replicas {
                desired: 3,
                running: 2,
                healthy: 1,
                starting: 0,
            },
        )],
        pending: vec![("web".into(), "memory".into(), 1)],
        nodes: vec![("down", 0), ("ready", 2)],
        cluster_format: 2,
        autoscale: vec![("web".into(), 3, 2)],
    };
    let text = encode(&Recorders::default(), snap);
    for (series, value) in [
        ("hoist_raft_term", 7.0),
        ("hoist_raft_applied_index", 120.0),
        ("hoist_raft_leader", 1.0),
        ("hoist_cluster_format", 2.0),
        (r#"hoist_nodes{status="ready"}"#, 2.0),
        (r#"hoist_service_replicas_desired{service="web"}"#, 3.0),
        (r#"hoist_service_replicas_running{service="web"}"#, 2.0),
        (r#"hoist_service_replicas_healthy{service="web"}"#, 1.0),
        (r#"hoist_pending_tasks{service="web",reason="memory"}"#, 1.0),
        (
            r#"hoist_autoscale_decisions_total{service="web",outcome="scaled"}"#,
            3.0,
        ),
        (
            r#"hoist_autoscale_decisions_total{service="web",outcome="held"}"#,
            2.0,
        ),
    ] {
        assert_eq!(sample(&text, series), Some(value), "{series} in\n{text}");
    }
    assert!(text.contains("# TYPE hoist_service_replicas_running gauge\n"));
}
