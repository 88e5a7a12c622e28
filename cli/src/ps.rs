//! `hoist service ps NAME`: every replica slot with its node, state and health, why it is pending,
//! and its recent tasks with the reason each ended.

use crate::controller_client::{report, ControllerClient};
use comfy_table::Table;
use hoist_proto::cluster::{ServiceTasks, Task};
use reqwest::Method;

fn word(s: impl serde::Serialize) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

fn row(service: Option<&str>, prefix: &str, slot: u64, t: &Task) -> Vec<String> {
    let mut r: Vec<String> = service.map(str::to_string).into_iter().collect();
    r.extend([
        format!("{prefix}{slot}"),
        t.id.to_string(),
        t.node.to_string(),
        t.service_version.to_string(),
        format!("{} → {}", word(t.desired), word(t.state)),
        word(t.health),
        t.message.to_string(),
    ]);
    r
}

/// The replicas of `services` as a table: each slot's task, or why it is pending, then its
/// recent tasks; with a SERVICE column first when `with_service` (`hoist stack ps`).
pub fn replica_table(services: &[ServiceTasks], with_service: bool) -> Table {
    let mut t = Table::new();
    t.load_preset(comfy_table::presets::NOTHING);
    let mut header = vec![
        "SLOT",
        "TASK",
        "NODE",
        "VERSION",
        "DESIRED → STATE",
        "HEALTH",
        "MESSAGE",
    ];
    if with_service {
        header.insert(0, "SERVICE");
    }
    t.set_header(header);
    for st in services {
        let service = with_service.then_some(st.service.as_str());
        for r in &st.replicas {
            match (&r.task, &r.pending) {
                (Some(task), _) => {
                    t.add_row(row(service, "", r.slot, task));
                }
                (None, Some(why)) => {
                    let mut cells: Vec<String> = service.map(str::to_string).into_iter().collect();
                    cells.extend([
                        r.slot.to_string(),
                        "-".into(),
                        "-".into(),
                        st.version.to_string(),
                        "running → pending".into(),
                        "-".into(),
                        why.clone(),
                    ]);
                    t.add_row(cells);
                }
                (None, None) => {}
            }
            for h in r.history.iter().take(4) {
                t.add_row(row(service, " \\_ ", r.slot, h));
            }
        }
    }
    t
}

/// Prints the replicas; answers the exit code.
pub async fn run(client: &ControllerClient, name: &str, json: bool) -> i32 {
    let st = match client
        .json::<ServiceTasks>(Method::GET, &format!("/v1/services/{name}/ps"), None)
        .await
    {
        Ok(s) => s,
        Err(e) => return report(&e),
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&st).expect("json encodes")
        );
        return 0;
    }
    println!("{}", replica_table(&[st], false));
    0
}
