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

fn row(prefix: &str, slot: u64, t: &Task) -> Vec<String> {
    vec![
        format!("{prefix}{slot}"),
        t.id.clone(),
        t.node.clone(),
        t.service_version.to_string(),
        format!("{} → {}", word(t.desired), word(t.state)),
        word(t.health),
        t.message.clone(),
    ]
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
    let mut t = Table::new();
    t.load_preset(comfy_table::presets::NOTHING);
    t.set_header([
        "SLOT",
        "TASK",
        "NODE",
        "VERSION",
        "DESIRED → STATE",
        "HEALTH",
        "MESSAGE",
    ]);
    for r in &st.replicas {
        match (&r.task, &r.pending) {
            (Some(task), _) => {
                t.add_row(row("", r.slot, task));
            }
            (None, Some(why)) => {
                t.add_row(vec![
                    r.slot.to_string(),
                    "-".into(),
                    "-".into(),
                    st.version.to_string(),
                    "running → pending".into(),
                    "-".into(),
                    why.clone(),
                ]);
            }
            (None, None) => {}
        }
        for h in r.history.iter().take(4) {
            t.add_row(row(" \\_ ", r.slot, h));
        }
    }
    println!("{t}");
    0
}
