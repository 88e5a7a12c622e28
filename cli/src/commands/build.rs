//! `hoist build`: send a Dockerfile and its build context to the agent and show the steps.
//!
//! The context directory is tarred on the fly (honouring `.dockerignore` with Docker's pattern
//! rules, see `hoist_common::dockerignore`) and streamed to the agent behind a one-line JSON
//! request; the agent answers with one JSON event per line, shown as Docker shows them.

use crate::client::{Client, ClientError};
use crate::output::{self, Format};
use hoist_common::dockerignore::IgnoreRules;
use hoist_proto::{BuildEvent, BuildRequest, NetworkMode};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Shown after `hoist build --help`.
pub const EXAMPLES: &str = "\
Every instruction is a step (`Step 3/9 : RUN ...`); a step whose inputs did not change since an
earlier build (same parent, same instruction after substitution, same copied files) comes from
the cache (` ---> CACHED`). The last line names the image id. Ctrl-C cancels the build.

Multi-stage Dockerfiles build only the stages the target needs (`--target` picks one);
`RUN --mount=type=cache` directories are kept between builds; `--secret` files reach
`RUN --mount=type=secret` only, never a layer, the cache or the history.

Examples:
  hoist build -t web:1 .
  hoist build -f deploy/Dockerfile -t app:dev --build-arg VERSION=1.2 src/
  hoist build --target test -t app:test .
  hoist build --secret id=npmrc,src=$HOME/.npmrc -t web .
  hoist build -q --no-cache -t app .
  hoist build -o json -t app . | jq -r .id";

/// `hoist build` flags.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// The build context: a directory whose files COPY and ADD can use.
    pub context: PathBuf,
    /// The Dockerfile (default: CONTEXT/Dockerfile).
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// Name the image NAME[:TAG] (repeatable).
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// Run every step again instead of using cached results.
    #[arg(long)]
    pub no_cache: bool,
    /// Set a build-time variable declared by ARG: KEY=VALUE, or KEY to take it from the environment.
    #[arg(long = "build-arg", value_name = "KEY[=VALUE]")]
    pub build_args: Vec<String>,
    /// Print only the image id.
    #[arg(short, long)]
    pub quiet: bool,
    /// Network of RUN steps.
    #[arg(long, value_enum, default_value = "none")]
    pub network: BuildNetwork,
    /// Build this stage (`FROM ... AS STAGE`) and the stages it needs, not the last one.
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// A secret for `RUN --mount=type=secret,id=ID`: id=ID,src=FILE or id=ID,env=VAR (repeatable).
    #[arg(long = "secret", value_name = "id=ID,src=FILE")]
    pub secrets: Vec<String>,
}

/// `id=ID,src=FILE` / `id=ID,env=VAR` (BuildKit's forms; `source`, `type=file|env` accepted)
/// → (id, bytes).
fn read_secret(spec: &str) -> Result<(String, Vec<u8>), String> {
    let (mut id, mut src, mut env) = (None, None, None);
    for field in spec.split(',') {
        match field.split_once('=') {
            Some(("id", v)) => id = Some(v.to_owned()),
            Some(("src" | "source", v)) => src = Some(v.to_owned()),
            Some(("env", v)) => env = Some(v.to_owned()),
            Some(("type", "file" | "env")) => {}
            _ => {
                return Err(format!(
                    "--secret {spec}: expected id=ID,src=FILE or id=ID,env=VAR"
                ))
            }
        }
    }
    let id = id
        .or_else(|| env.clone())
        .ok_or_else(|| format!("--secret {spec}: needs id=ID"))?;
    let bytes = match (src, env) {
        (Some(path), _) => {
            std::fs::read(&path).map_err(|e| format!("--secret {id}: cannot read {path}: {e}"))?
        }
        (None, Some(var)) => std::env::var(&var)
            .map_err(|_| format!("--secret {id}: environment variable {var} is not set"))?
            .into_bytes(),
        (None, None) => std::env::var(&id)
            .map_err(|_| format!("--secret {id}: give src=FILE or env=VAR"))?
            .into_bytes(),
    };
    Ok((id, bytes))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BuildNetwork {
    /// Only loopback (the default).
    None,
    /// The host's container bridge.
    Bridge,
}

pub async fn run(args: BuildArgs, client: &Client, format: Format) -> Result<i32, ClientError> {
    let fail = |m: String| ClientError::Transport(m);
    let dockerfile_path = args
        .file
        .clone()
        .unwrap_or_else(|| args.context.join("Dockerfile"));
    let size = std::fs::metadata(&dockerfile_path)
        .map_err(|e| fail(format!("cannot read {}: {e}", dockerfile_path.display())))?
        .len();
    // The agent refuses bigger ones too; saying so here avoids sending the context for nothing.
    const MAX_DOCKERFILE_BYTES: u64 = 1 << 20;
    if size > MAX_DOCKERFILE_BYTES {
        return Err(fail(format!(
            "{} is {size} bytes; a Dockerfile may have at most {MAX_DOCKERFILE_BYTES}",
            dockerfile_path.display()
        )));
    }
    let dockerfile = std::fs::read_to_string(&dockerfile_path)
        .map_err(|e| fail(format!("cannot read {}: {e}", dockerfile_path.display())))?;
    let mut secrets = BTreeMap::new();
    for spec in &args.secrets {
        use base64::Engine as _;
        let (id, bytes) = read_secret(spec).map_err(fail)?;
        secrets.insert(id, base64::engine::general_purpose::STANDARD.encode(bytes));
    }
    if !args.context.is_dir() {
        return Err(fail(format!(
            "build context {} is not a directory",
            args.context.display()
        )));
    }
    let mut build_args = BTreeMap::new();
    for a in &args.build_args {
        match a.split_once('=') {
            Some((k, v)) => build_args.insert(k.to_owned(), v.to_owned()),
            None => match std::env::var(a) {
                Ok(v) => build_args.insert(a.clone(), v),
                Err(_) => continue,
            },
        };
    }
    let req = BuildRequest {
        dockerfile,
        tags: args.tags.clone(),
        build_args,
        no_cache: args.no_cache,
        network: match args.network {
            BuildNetwork::None => NetworkMode::None,
            BuildNetwork::Bridge => NetworkMode::Bridge,
        },
        target: args.target.clone(),
        secrets,
    };
    let mut head = serde_json::to_vec(&req).map_err(|e| fail(e.to_string()))?;
    head.push(b'\n');

    // The context is tarred by a blocking thread into a pipe the request body reads from.
    let (reader, writer) = tokio::io::duplex(256 << 10);
    let context = args.context.clone();
    let tar_job = tokio::task::spawn_blocking(move || {
        let mut w = tokio_util::io::SyncIoBridge::new(writer);
        w.write_all(&head)?;
        write_context(&context, &mut w)?;
        w.shutdown()
    });

    let json = format == Format::Json;
    let quiet = args.quiet;
    let mut code = 0;
    let mut result = None;
    let sent = client
        .upload_stream("/v1/build", reader, |ev: BuildEvent| {
            show(&ev, json, quiet);
            match ev {
                BuildEvent::Result(r) => result = Some(r),
                BuildEvent::Error(e) => {
                    eprintln!("hoist: {}", e.message);
                    code = 1;
                }
                _ => {}
            }
            true
        })
        .await;
    match tar_job.await {
        Ok(Err(e)) if sent.is_ok() => return Err(fail(format!("build context: {e}"))),
        _ => {}
    }
    if let Err(ClientError::Api { error }) = &sent {
        eprintln!("hoist: {}", error.message);
        return Ok(1);
    }
    sent?;
    match result {
        Some(r) if json => output::json(&r),
        Some(r) if quiet => println!("{}", r.id),
        Some(r) => {
            println!("Successfully built {}", short(&r.id));
            for t in &r.tags {
                println!("Successfully tagged {t}");
            }
        }
        None if code == 0 => {
            return Err(fail("the agent ended the build without a result".into()));
        }
        None => {}
    }
    Ok(code)
}

fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

/// One event, Docker-style. With `-o json` progress goes to stderr, so stdout holds only the
/// result; with `-q` nothing but the id is printed.
fn show(ev: &BuildEvent, json: bool, quiet: bool) {
    if quiet {
        return;
    }
    let line = match ev {
        BuildEvent::Step {
            number,
            total,
            instruction,
        } => format!("Step {number}/{total} : {instruction}\n"),
        BuildEvent::Cached => " ---> CACHED\n".to_owned(),
        BuildEvent::Done { layer, seconds } => match layer {
            Some(l) => format!(" ---> layer {} ({seconds:.2}s)\n", short(l)),
            None => format!(" ---> done ({seconds:.2}s)\n"),
        },
        BuildEvent::Output(chunk) => chunk.data.clone().unwrap_or_default(),
        BuildEvent::Warning(w) => {
            eprintln!("warning: {w}");
            return;
        }
        BuildEvent::Result(_) | BuildEvent::Error(_) => return,
    };
    if json {
        eprint!("{line}");
    } else {
        print!("{line}");
        let _ = std::io::stdout().flush();
    }
}

/// Writes the context directory as a tar, leaving out what `.dockerignore` excludes.
pub fn write_context(root: &Path, out: &mut impl Write) -> std::io::Result<()> {
    let rules = match std::fs::read_to_string(root.join(".dockerignore")) {
        Ok(text) => IgnoreRules::parse(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => IgnoreRules::default(),
        Err(e) => return Err(e),
    };
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    tar.mode(tar::HeaderMode::Complete);
    add_dir(&mut tar, root, "", &rules)?;
    tar.finish()
}

fn add_dir<W: Write>(
    tar: &mut tar::Builder<W>,
    root: &Path,
    rel: &str,
    rules: &IgnoreRules,
) -> std::io::Result<()> {
    let dir = root.join(rel);
    let mut names: Vec<String> = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for name in names {
        let child = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let path = root.join(&child);
        let meta = std::fs::symlink_metadata(&path)?;
        let excluded = rules.is_excluded(&child);
        if meta.is_dir() {
            if excluded && !rules.has_exceptions() {
                continue;
            }
            if !excluded {
                tar.append_path_with_name(&path, &child)?;
            }
            add_dir(tar, root, &child, rules)?;
        } else if !excluded {
            tar.append_path_with_name(&path, &child)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_tar_honours_dockerignore() {
        let t = std::env::temp_dir().join(format!("hoist-ctx-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&t);
        std::fs::create_dir_all(t.join("logs/keep")).unwrap();
        std::fs::create_dir_all(t.join("src")).unwrap();
        std::fs::write(t.join(".dockerignore"), "logs\n!logs/keep/*.txt\n*.tmp\n").unwrap();
        std::fs::write(t.join("logs/a.log"), "x").unwrap();
        std::fs::write(t.join("logs/keep/b.txt"), "x").unwrap();
        std::fs::write(t.join("src/main.rs"), "x").unwrap();
        std::fs::write(t.join("x.tmp"), "x").unwrap();
        let mut buf = Vec::new();
        write_context(&t, &mut buf).unwrap();
        let mut a = tar::Archive::new(&buf[..]);
        let names: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [".dockerignore", "logs/keep/b.txt", "src", "src/main.rs"]
        );
        std::fs::remove_dir_all(&t).unwrap();
    }
}
