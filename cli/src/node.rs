//! `hoist node ...`: list, inspect, label, and set whether a node takes work.

use crate::controller_client::{report, ControllerClient};
use comfy_table::Table;
use hoist_proto::cluster::{Node, NodeAvailability, NodeView, NodeVolumes};
use reqwest::Method;
use std::collections::BTreeMap;

/// Node commands.
#[derive(Debug, clap::Subcommand)]
pub enum NodeCmd {
    /// List nodes: status (ready/down), availability, resources, replicas.
    Ls,
    /// Show one node (by id or hostname).
    Inspect { node: String },
    /// Set labels (`zone=a`) and remove them (`--rm zone`).
    Label {
        node: String,
        /// KEY=VALUE pairs to set.
        labels: Vec<String>,
        /// Label keys to remove.
        #[arg(long = "rm")]
        remove: Vec<String>,
    },
    /// Move the node's replicas elsewhere (honouring each service's update policy); no new ones.
    Drain { node: String },
    /// Keep the node's replicas but place no new ones.
    Pause { node: String },
    /// Let the node take replicas again.
    Activate { node: String },
    /// Forget a node (its agent must register again).
    Rm { node: String },
    /// The node's named volumes, as its agent last reported them to the leader (on change and
    /// every 30 s; sizes measured at most once a minute).
    Volumes { node: String },
}

fn print_json<T: serde::Serialize>(v: &T) {
    println!("{}", serde_json::to_string_pretty(v).expect("json encodes"));
}

fn gib(bytes: u64) -> String {
    format!("{:.1}G", bytes as f64 / (1u64 << 30) as f64)
}

fn name(s: impl serde::Serialize) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// Parses `KEY=VALUE` arguments.
pub fn parse_labels(args: &[String]) -> Result<BTreeMap<String, String>, String> {
    args.iter()
        .map(|a| {
            let (k, v) = a
                .split_once('=')
                .ok_or_else(|| format!("label {a:?}: expected KEY=VALUE"))?;
            if k.is_empty() {
                return Err(format!("label {a:?}: the key is empty"));
            }
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

async fn availability(
    client: &ControllerClient,
    node: &str,
    a: NodeAvailability,
    json: bool,
) -> i32 {
    let body = serde_json::json!({ "availability": a });
    match client
        .json::<Node>(
            Method::POST,
            &format!("/v1/nodes/{node}/availability"),
            Some(&body),
        )
        .await
    {
        Ok(n) if json => {
            print_json(&n);
            0
        }
        Ok(n) => {
            println!("{}: {}", n.id, name(n.availability));
            0
        }
        Err(e) => report(&e),
    }
}

/// `hoist node volumes`'s table: NAME, SIZE (`-` before the agent first measured it), USED BY.
fn volumes_table(v: &NodeVolumes) -> String {
    let mut t = Table::new();
    t.load_preset(comfy_table::presets::NOTHING);
    t.set_header(["NAME", "SIZE", "USED BY"]);
    for vol in &v.volumes {
        t.add_row([
            vol.name.clone(),
            vol.size_bytes
                .map_or_else(|| "-".into(), hoist_common::parse::format_size),
            if vol.used_by.is_empty() {
                "-".into()
            } else {
                vol.used_by.join(",")
            },
        ]);
    }
    t.to_string()
}

/// What goes to stderr under the table: how old the report is, and the controller's note.
fn volumes_footer(v: &NodeVolumes) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(ms) = v.reported_ms_ago {
        out.push(format!(
            "{} ({}): reported {} ago",
            v.node,
            v.hostname,
            crate::output::human_duration(std::time::Duration::from_millis(ms)).to_lowercase()
        ));
    }
    if let Some(n) = &v.note {
        out.push(format!("note: {n}"));
    }
    out
}

/// Runs one node command; answers the exit code.
pub async fn run(cmd: NodeCmd, controllers: &[String], json: bool) -> anyhow::Result<i32> {
    let client = ControllerClient::new(controllers)?;
    Ok(match cmd {
        NodeCmd::Ls => match client
            .json::<Vec<NodeView>>(Method::GET, "/v1/nodes", None)
            .await
        {
            Ok(list) if json => {
                print_json(&list);
                0
            }
            Ok(list) => {
                let mut t = Table::new();
                t.load_preset(comfy_table::presets::NOTHING);
                t.set_header([
                    "ID",
                    "HOSTNAME",
                    "STATUS",
                    "AVAILABILITY",
                    "ADDRESS",
                    "SUBNET",
                    "CPU",
                    "MEMORY",
                    "REPLICAS",
                    "VERSION",
                    "LABELS",
                ]);
                for v in list {
                    let n = &v.node;
                    let labels: Vec<String> =
                        n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    t.add_row([
                        n.id.clone(),
                        n.hostname.clone(),
                        name(n.status),
                        name(n.availability),
                        n.address.clone(),
                        n.subnet
                            .clone()
                            .or_else(|| {
                                n.overlay_problem
                                    .as_ref()
                                    .map(|_| "none: CIDR exhausted".into())
                            })
                            .unwrap_or_else(|| "-".into()),
                        format!(
                            "{}/{}",
                            v.reserved.cpu_millis as f64 / 1000.0,
                            n.capacity.cpu_millis as f64 / 1000.0
                        ),
                        format!(
                            "{}/{}",
                            gib(v.reserved.memory_bytes),
                            gib(n.capacity.memory_bytes)
                        ),
                        v.tasks.to_string(),
                        n.agent_version.clone(),
                        labels.join(","),
                    ]);
                }
                println!("{t}");
                0
            }
            Err(e) => report(&e),
        },
        NodeCmd::Inspect { node } => {
            match client
                .json::<NodeView>(Method::GET, &format!("/v1/nodes/{node}"), None)
                .await
            {
                Ok(v) => {
                    print_json(&v);
                    0
                }
                Err(e) => report(&e),
            }
        }
        NodeCmd::Label {
            node,
            labels,
            remove,
        } => {
            let set = match parse_labels(&labels) {
                Ok(s) => s,
                Err(m) => {
                    eprintln!("error: {m}");
                    return Ok(2);
                }
            };
            if set.is_empty() && remove.is_empty() {
                eprintln!("error: give KEY=VALUE labels to set or --rm KEY to remove");
                return Ok(2);
            }
            let body = serde_json::json!({ "set": set, "remove": remove });
            match client
                .json::<Node>(
                    Method::POST,
                    &format!("/v1/nodes/{node}/labels"),
                    Some(&body),
                )
                .await
            {
                Ok(n) if json => {
                    print_json(&n);
                    0
                }
                Ok(n) => {
                    let l: Vec<String> = n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    println!("{}: {}", n.id, l.join(","));
                    0
                }
                Err(e) => report(&e),
            }
        }
        NodeCmd::Drain { node } => {
            availability(&client, &node, NodeAvailability::Drained, json).await
        }
        NodeCmd::Pause { node } => {
            availability(&client, &node, NodeAvailability::Paused, json).await
        }
        NodeCmd::Activate { node } => {
            availability(&client, &node, NodeAvailability::Active, json).await
        }
        NodeCmd::Volumes { node } => {
            match client
                .json::<NodeVolumes>(Method::GET, &format!("/v1/nodes/{node}/volumes"), None)
                .await
            {
                Ok(v) if json => {
                    print_json(&v);
                    0
                }
                Ok(v) => {
                    println!("{}", volumes_table(&v));
                    for line in volumes_footer(&v) {
                        eprintln!("{line}");
                    }
                    0
                }
                Err(e) => report(&e),
            }
        }
        NodeCmd::Rm { node } => {
            match client
                .json::<Node>(Method::DELETE, &format!("/v1/nodes/{node}"), None)
                .await
            {
                Ok(n) => {
                    println!("{}: removed", n.id);
                    0
                }
                Err(e) => report(&e),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn labels_parse() {
        let l = super::parse_labels(&["zone=a".into(), "x=".into()]).unwrap();
        assert_eq!(l["zone"], "a");
        assert_eq!(l["x"], "");
        assert!(super::parse_labels(&["zone".into()]).is_err());
    }

    #[test]
    fn node_volumes_table() {
        use hoist_proto::node::NodeVolume;
        let v = super::NodeVolumes {
            node: "n1".into(),
            hostname: "h1".into(),
            reported_ms_ago: Some(3_000),
            volumes: vec![
                NodeVolume {
                    name: "pgdata".into(),
                    size_bytes: Some(64 << 20),
                    used_by: vec!["shop_db.1.ab".into(), "backup".into()],
                    created_ms: None,
                },
                NodeVolume {
                    name: "spare".into(),
                    size_bytes: None,
                    used_by: vec![],
                    created_ms: None,
                },
            ],
            note: None,
        };
        let t = super::volumes_table(&v);
        let lines: Vec<Vec<&str>> = t.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(lines[0], ["NAME", "SIZE", "USED", "BY"]);
        assert_eq!(lines[1], ["pgdata", "64MiB", "shop_db.1.ab,backup"]);
        assert_eq!(lines[2], ["spare", "-", "-"]);
        assert_eq!(
            super::volumes_footer(&v),
            ["n1 (h1): reported 3 seconds ago"]
        );
        let never = super::NodeVolumes {
            reported_ms_ago: None,
            volumes: vec![],
            note: Some("node n1 has not reported".into()),
            ..v
        };
        assert_eq!(super::volumes_table(&never).lines().count(), 1);
        assert_eq!(
            super::volumes_footer(&never),
            ["note: node n1 has not reported"]
        );
    }
}
