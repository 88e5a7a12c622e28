//! `hoist service exec NAME[.SLOT] -- CMD...`: runs a command in a replica wherever it runs,
//! through the controllers (`POST /v1/services/NAME/exec`), as `hoist exec` does in a local
//! container: the command's output as it comes, and its exit code as the CLI's. When Hoist
//! cannot run it (no such service or slot, the node is down or does not answer), the CLI says
//! why and exits 125, Docker's code for "the engine refused".

use crate::controller_client::{CallError, ControllerClient};
use crate::session_stream;
use hoist_proto::session::{ExecBody, ExecRecord};
use reqwest::Method;
use std::io::Write;

/// The exit code when Hoist, not the command, failed.
pub const REFUSED: i32 = 125;

const EXAMPLES: &str = "Examples:
  hoist service exec web -- cat /etc/hostname            in the first running replica
  hoist service exec web.2 -- sh -c 'echo hi; exit 3'    in slot 2's replica; exits 3
  hoist service exec -e DEBUG=1 -u nobody web -- env

Slots are those `hoist service ps` shows (from 0). The exit code is the command's; 125 means
Hoist could not run it (no such service or slot, its node is down or does not answer).";

/// `hoist service exec`
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct ExecArgs {
    /// Set an environment variable (KEY=VALUE).
    #[arg(short, long = "env", value_parser = check_env)]
    pub env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// User: UID[:GID] or NAME[:GROUP].
    #[arg(short, long)]
    pub user: Option<String>,
    /// The service, and optionally the replica's slot (`web.2`; default: the first running
    /// replica).
    #[arg(value_name = "NAME[.SLOT]")]
    pub target: String,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub cmd: Vec<String>,
}

fn check_env(s: &str) -> Result<String, String> {
    hoist_common::parse::parse_env(s).map(|_| s.to_string())
}

/// `NAME[.SLOT]`: service names hold no dot, so a trailing `.N` is the slot.
pub fn parse_target(t: &str) -> Result<(String, Option<u64>), String> {
    let (name, slot) = match t.rsplit_once('.') {
        Some((name, slot)) => {
            let slot = slot.parse().map_err(|_| {
                format!("{t:?}: expected NAME or NAME.SLOT with a slot number after the dot")
            })?;
            (name, Some(slot))
        }
        None => (t, None),
    };
    if name.is_empty() {
        return Err(format!("{t:?}: the service name is missing"));
    }
    Ok((name.to_string(), slot))
}

/// Runs the command; answers the exit code.
pub async fn run(client: &ControllerClient, args: ExecArgs, json: bool) -> i32 {
    let (name, slot) = match parse_target(&args.target) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return REFUSED;
        }
    };
    let body = ExecBody {
        slot,
        cmd: args.cmd,
        env: args.env,
        workdir: args.workdir,
        user: args.user,
    };
    let body = serde_json::to_value(&body).unwrap_or_default();
    let path = format!("/v1/services/{}/exec", name.replace('/', "%2F"));
    let resp = match session_stream::open(client, Method::POST, &path, Some(&body)).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return match e {
                CallError::Api { .. } => REFUSED,
                CallError::Unreachable(_) => 3,
            };
        }
    };
    let mut code = None;
    let mut failed = None;
    let read = session_stream::each(resp, |records: Vec<ExecRecord>| {
        for r in records {
            if json {
                println!("{}", serde_json::to_string(&r).unwrap_or_default());
            } else if let Some(data) = &r.data {
                let _ = match r.stream.as_deref() {
                    Some("stderr") => std::io::stderr().lock().write_all(data.as_bytes()),
                    _ => {
                        let mut out = std::io::stdout().lock();
                        out.write_all(data.as_bytes()).and_then(|_| out.flush())
                    }
                };
            }
            if let Some(c) = r.exit_code {
                code = Some(c);
            }
            if let Some(e) = r.error {
                failed = Some(e.message);
            }
        }
        true
    })
    .await;
    if let Err(e) = read {
        failed = Some(e);
    }
    match (code, failed) {
        (Some(c), _) => c,
        (None, Some(why)) => {
            if !json {
                eprintln!("error: {why}");
            }
            REFUSED
        }
        (None, None) => {
            eprintln!("error: the answer ended without the command's exit code");
            REFUSED
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(parse_target("web").unwrap(), ("web".into(), None));
        assert_eq!(parse_target("web.2").unwrap(), ("web".into(), Some(2)));
        assert_eq!(
            parse_target("shop_api.0").unwrap(),
            ("shop_api".into(), Some(0))
        );
        assert!(parse_target("web.x")
            .unwrap_err()
            .contains("expected NAME or NAME.SLOT"));
        assert!(parse_target(".2").unwrap_err().contains("name is missing"));
        assert!(parse_target("web.").is_err());
    }

    #[test]
    fn the_command_keeps_its_own_flags() {
        use clap::Parser;
        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(flatten)]
            exec: ExecArgs,
        }
        let c = Cli::try_parse_from(["hoist", "-e", "A=1", "web.1", "--", "ls", "-l", "/"])
            .unwrap()
            .exec;
        assert_eq!(c.target, "web.1");
        assert_eq!(c.env, ["A=1"]);
        assert_eq!(c.cmd, ["ls", "-l", "/"]);
        let c = Cli::try_parse_from(["hoist", "web", "sh", "-c", "exit 3"])
            .unwrap()
            .exec;
        assert_eq!(c.cmd, ["sh", "-c", "exit 3"]);
    }
}
