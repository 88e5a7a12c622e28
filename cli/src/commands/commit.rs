//! `hoist commit`, `hoist diff`, `hoist export`: a container's filesystem as an image, as a list
//! of changes, as a tarball (Docker's commands of the same names).

use crate::client::{enc, Client, ClientError};
use crate::output::{self, Format};
use clap::Subcommand;
use hoist_proto::{CommitRequest, CommitResult, FileChange};
use std::io::IsTerminal;
use std::path::PathBuf;

const COMMIT_HELP: &str = "\
The container's writable layer becomes one new layer on top of its image. The new image's config
is what the container ran with (command, env, workdir, user, labels), changed by each --change
(CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR, STOPSIGNAL, written as in a
Dockerfile). The history gets an entry `hoist commit` with the message as its comment. A running
container is not paused: stop it first for a consistent image. Prints the new image id.

Examples:
  hoist run --name prep busybox sh -c 'echo hi > /greeting'
  hoist commit prep greeter:1
  hoist commit --change 'CMD [\"cat\", \"/greeting\"]' -m 'add greeting' prep greeter:2
  hoist commit -c 'ENV MODE=prod' -c 'EXPOSE 8080' -a 'Jane <jane@example.com>' web web:snap
  hoist image history greeter:2";

const DIFF_HELP: &str = "\
One line per changed path, sorted: A added, C changed (also every directory above a change),
D deleted, as `docker diff` prints them. `-o json` gives [{\"kind\": \"A\", \"path\": \"/x\"}, ...].

Examples:
  hoist diff web
  hoist diff -o json web | jq -r '.[] | select(.kind == \"D\") | .path'";

const EXPORT_HELP: &str = "\
The tar holds the filesystem the container sees (its image's layers with its own changes, deleted
files gone), not the image's layers or config: `hoist image import` makes a one-layer image of it.
Without -o the tar goes to standard output, which must not be a terminal.

Examples:
  hoist export web -o web-rootfs.tar
  hoist export web | tar -t | head
  hoist export web > rootfs.tar && hoist image import rootfs.tar web-flat:1";

/// `hoist commit|diff|export`.
#[derive(Debug, Subcommand)]
pub enum SnapshotCmd {
    /// Make an image from a container's changes.
    #[command(after_help = COMMIT_HELP)]
    Commit {
        /// The container (name, id or unique id prefix).
        container: String,
        /// NAME[:TAG] of the new image (tag defaults to latest).
        #[arg(value_name = "IMAGE[:TAG]")]
        image: String,
        /// Apply a Dockerfile instruction to the new image's config; repeatable.
        #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
        changes: Vec<String>,
        /// Commit message (the history entry's comment).
        #[arg(short, long)]
        message: Option<String>,
        /// Author, e.g. "Jane <jane@example.com>".
        #[arg(short, long)]
        author: Option<String>,
    },
    /// List the files a container added (A), changed (C) and deleted (D).
    #[command(after_help = DIFF_HELP)]
    Diff {
        /// The container (name, id or unique id prefix).
        container: String,
    },
    /// Write a container's whole filesystem as a tar archive.
    #[command(after_help = EXPORT_HELP)]
    Export {
        /// The container (name, id or unique id prefix).
        container: String,
        /// Write the tar to FILE (`-o FILE` as in `docker export` works too).
        #[arg(short = 'f', long = "output-file", value_name = "FILE")]
        output_file: Option<PathBuf>,
    },
}

pub async fn run(cmd: SnapshotCmd, client: &Client, format: Format) -> Result<i32, ClientError> {
    match cmd {
        SnapshotCmd::Commit {
            container,
            image,
            changes,
            message,
            author,
        } => {
            let req = CommitRequest {
                reference: image,
                changes,
                message,
                author,
            };
            let result: CommitResult = client
                .call(
                    hyper::Method::POST,
                    &format!("/v1/containers/{}/commit", enc(&container)),
                    Some(&req),
                )
                .await?;
            match format {
                Format::Json => output::json(&result),
                Format::Table => println!("{}", result.id),
            }
        }
        SnapshotCmd::Diff { container } => {
            let changes: Vec<FileChange> = client
                .get(&format!("/v1/containers/{}/changes", enc(&container)))
                .await?;
            match format {
                Format::Json => output::json(&changes),
                Format::Table => {
                    for c in changes {
                        println!("{} {}", c.kind, c.path);
                    }
                }
            }
        }
        SnapshotCmd::Export {
            container,
            output_file,
        } => export(client, &container, output_file).await?,
    }
    Ok(0)
}

async fn export(
    client: &Client,
    container: &str,
    output_file: Option<PathBuf>,
) -> Result<(), ClientError> {
    let url = format!("/v1/containers/{}/export", enc(container));
    let Some(path) = output_file else {
        if std::io::stdout().is_terminal() {
            return Err(ClientError::Transport(
                "refusing to write a tar archive to a terminal: use -o FILE or redirect".into(),
            ));
        }
        client.download(&url, &mut tokio::io::stdout()).await?;
        return Ok(());
    };
    // Written beside the target and renamed at the end: an interrupted export leaves no tar
    // that looks whole.
    let mut tmp = path.clone().into_os_string();
    tmp.push(".partial");
    let tmp = PathBuf::from(tmp);
    let io =
        |p: &PathBuf, e: std::io::Error| ClientError::Transport(format!("{}: {e}", p.display()));
    let mut f = tokio::fs::File::create(&tmp)
        .await
        .map_err(|e| io(&tmp, e))?;
    if let Err(e) = client.download(&url, &mut f).await {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(e);
    }
    tokio::fs::rename(&tmp, &path)
        .await
        .map_err(|e| io(&path, e))
}

/// Docker's `export -o FILE`: the global `-o/--output` is the output format, so for `export` the
/// arguments after the command name are rewritten to `--output-file` before clap sees them.
pub fn docker_export_args(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    use std::ffi::OsString;
    // Global options that take a value, which may come before the command name.
    const VALUED: &[&str] = &["--agent", "--controller", "-o", "--output"];
    let mut i = 1;
    while i < args.len() {
        let a = args[i].to_string_lossy();
        if VALUED.contains(&a.as_ref()) {
            i += 2;
        } else if a.starts_with('-') {
            i += 1;
        } else {
            break;
        }
    }
    if args.get(i).map(|a| a == "export") != Some(true) {
        return args;
    }
    let mut out: Vec<OsString> = args[..=i].to_vec();
    let mut rest = args[i + 1..].iter();
    while let Some(a) = rest.next() {
        let s = a.to_string_lossy();
        if s == "--" {
            out.push(a.clone());
            out.extend(rest.cloned());
            break;
        } else if s == "-o" || s == "--output" {
            out.push("--output-file".into());
        } else if let Some(v) = s.strip_prefix("--output=") {
            out.push(format!("--output-file={v}").into());
        } else if let Some(v) = s.strip_prefix("-o").filter(|v| !v.is_empty()) {
            out.push(format!("--output-file={}", v.trim_start_matches('=')).into());
        } else {
            out.push(a.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(args: &[&str]) -> Vec<String> {
        docker_export_args(args.iter().map(Into::into).collect())
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn export_takes_dockers_dash_o() {
        assert_eq!(
            rewrite(&["hoist", "export", "web", "-o", "r.tar"]),
            ["hoist", "export", "web", "--output-file", "r.tar"]
        );
        assert_eq!(
            rewrite(&["hoist", "--agent", "/s", "export", "-or.tar", "web"]),
            [
                "hoist",
                "--agent",
                "/s",
                "export",
                "--output-file=r.tar",
                "web"
            ]
        );
        assert_eq!(
            rewrite(&["hoist", "export", "--output=x.tar", "web"]),
            ["hoist", "export", "--output-file=x.tar", "web"]
        );
        // Other commands keep -o as the output format.
        assert_eq!(
            rewrite(&["hoist", "diff", "-o", "json", "web"]),
            ["hoist", "diff", "-o", "json", "web"]
        );
        assert_eq!(
            rewrite(&["hoist", "-o", "json", "ps"]),
            ["hoist", "-o", "json", "ps"]
        );
    }
}
