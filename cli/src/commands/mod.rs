//! One module per command group; each parses its flags with clap and calls the agent.

pub mod build;
pub mod commit;
pub mod containers;
pub mod image_transfer;
pub mod images;
pub mod net;
pub mod registry;
pub mod volumes;

use crate::client::{Client, ClientError};
use crate::output::{self, Format};
use hoist_proto::AgentInfo;

pub async fn info(client: &Client, format: Format) -> Result<i32, ClientError> {
    let info: AgentInfo = client.get("/v1/info").await?;
    match format {
        Format::Json => output::json(&info),
        Format::Table => {
            println!("Version:        {}", info.version);
            println!("Data dir:       {}", info.data_dir);
            println!(
                "Cgroups:        {} (parent {})",
                info.cgroup_version, info.cgroup_parent
            );
            println!("Bridge:         {} ({})", info.bridge, info.subnet);
            println!(
                "Containers:     {} ({} running)",
                info.containers, info.running
            );
            println!("Images:         {}", info.images);
        }
    }
    Ok(0)
}
