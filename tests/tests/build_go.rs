//! A real multi-stage build end to end (issue 19): a small Go module with two packages
//! (`tests/testdata/go-primes`, shared with `bench/build.sh`) compiled by `go build` in a builder
//! stage `FROM golang:1.19` with `RUN --mount=type=cache` on Go's build cache, and copied into a
//! `scratch` stage that runs it.
//!
//! No registry is reachable here, so `golang:1.19` is made from Debian's golang-go by
//! `deploy/go-toolchain-image.sh` (a docker-archive) and loaded with `hoist image load`. It
//! checks: the program runs and prints what it computed; the final image is one small layer with
//! the entrypoint; the Go build cache lives in the agent's `build/cache-mounts/` and not in any
//! layer of the builder stage; a change to `main.go` rebuilds from its COPY on, and `go build`
//! then compiles only the package that changed (the other comes from the kept cache); a rebuild
//! of unchanged sources is fully cached and gives the same image; nothing is left behind.
//!
//! Runs in the default suite: about 30 s on the 2-core lab VM (debug binaries), most of it
//! loading the 210 MB toolchain image.
//!
//! Needs golang-go (`deploy/install-deps.sh` installs it), root and built binaries:
//! `cargo build --workspace --bins && cargo test -p hoist-tests --test build_go`.

use anyhow::{Context, Result};
use hoist_tests::build_lab::{
    assert_no_build_leftovers, build_tag as build, image_config as image, text, write,
};
use hoist_tests::Host;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The Go module and its Dockerfile (shared with `bench/build.sh`).
fn sources() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/go-primes")
}

/// Copies the module into a fresh context directory.
fn context() -> Result<tempfile::TempDir> {
    let ctx = tempfile::tempdir()?;
    let src = sources();
    for rel in [
        "Dockerfile",
        ".dockerignore",
        "go.mod",
        "main.go",
        "primes/primes.go",
    ] {
        let text = std::fs::read_to_string(src.join(rel))
            .with_context(|| format!("{}", src.join(rel).display()))?;
        write(ctx.path(), rel, &text);
    }
    Ok(ctx)
}

/// Runs `deploy/go-toolchain-image.sh` into a temp dir (kept while the returned guard lives).
fn toolchain_image() -> Result<(tempfile::TempDir, PathBuf)> {
    anyhow::ensure!(
        Path::new("/usr/lib/go-1.19/bin/go").exists(),
        "Debian's golang-go is not installed: run deploy/install-deps.sh (or apt-get install -y golang-go)"
    );
    let dir = tempfile::Builder::new()
        .prefix("hoist-go-image-")
        .tempdir()?;
    let tar = dir.path().join("golang.tar");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/go-toolchain-image.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(&tar)
        .stdin(Stdio::null())
        .output()
        .context("run go-toolchain-image.sh")?;
    anyhow::ensure!(
        out.status.success(),
        "go-toolchain-image.sh failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    Ok((dir, tar))
}

/// `(instruction, cached, seconds)` of each step in a build's output.
fn steps(out: &str) -> Vec<(String, bool, f64)> {
    let mut v: Vec<(String, bool, f64)> = Vec::new();
    for l in out.lines() {
        if let Some(rest) = l.strip_prefix("Step ") {
            let inst = rest.split_once(" : ").map(|x| x.1).unwrap_or("");
            v.push((inst.to_owned(), false, 0.0));
        } else if l == " ---> CACHED" {
            if let Some(last) = v.last_mut() {
                last.1 = true;
            }
        } else if let Some(rest) = l.strip_prefix(" ---> ") {
            // " ---> layer ID (1.23s)" or " ---> done (0.01s)"
            let secs = rest
                .rsplit_once('(')
                .and_then(|(_, s)| s.strip_suffix("s)"))
                .and_then(|s| s.parse().ok());
            if let (Some(last), Some(s)) = (v.last_mut(), secs) {
                last.2 = s;
            }
        }
    }
    v
}

/// Files (not directories) below `dir`, recursively.
fn count_files(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => n += count_files(&p),
            Ok(_) => n += 1,
            Err(_) => {}
        }
    }
    n
}

/// The cache-mount directories of the builder: `(path, files inside)`.
fn cache_mounts(h: &Host) -> Vec<(PathBuf, usize)> {
    let mut v: Vec<(PathBuf, usize)> = std::fs::read_dir(h.data_dir().join("build/cache-mounts"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let n = count_files(&e.path());
            (e.path(), n)
        })
        .collect();
    v.sort();
    v
}

/// The steps of a build that ran (not from the cache), FROM lines left out; RUN shortened.
fn rerun(out: &str) -> Vec<String> {
    steps(out)
        .into_iter()
        .filter(|(i, cached, _)| !cached && !i.starts_with("FROM "))
        .map(|(i, _, _)| {
            if i.starts_with("RUN ") {
                "RUN".to_owned()
            } else {
                i
            }
        })
        .collect()
}

/// What `go build -v` printed in a build's output: the packages it compiled (not cached).
fn compiled(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| l.starts_with("example.com/hoistdemo"))
        .collect()
}

#[test]
fn go_program_multi_stage_with_build_cache_mount() -> Result<()> {
    let t0 = Instant::now();
    let (_image_dir, tar) = toolchain_image()?;
    let h = Host::start("go1")?;
    let loaded = h.hoist_ok(&["image", "load", "-i", tar.to_str().unwrap()])?;
    assert!(loaded.contains("golang:1.19"), "{loaded}");
    let (_, base) = image(&h, "golang:1.19")?;
    let env = base["config"]["Env"].to_string();
    assert!(
        env.contains("CGO_ENABLED=0") && env.contains("GOROOT="),
        "{env}"
    );
    let t_loaded = t0.elapsed();

    let ctx = context()?;
    let c = ctx.path();

    // First build: every step runs; go compiles both packages of the module.
    let out = build(&h, c, "godemo:1", &[])?;
    let s = steps(&out);
    let names: Vec<&str> = s
        .iter()
        .map(|(i, _, _)| i.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(
        names,
        [
            "FROM",
            "WORKDIR",
            "COPY",
            "COPY",
            "RUN",
            "FROM",
            "COPY",
            "ENTRYPOINT"
        ],
        "{out}"
    );
    assert!(s.iter().all(|(_, cached, _)| !cached), "{out}");
    assert_eq!(
        compiled(&out),
        ["example.com/hoistdemo/primes", "example.com/hoistdemo"],
        "{out}"
    );
    let run1 = s[4].2;

    // It runs, from scratch, with only its entrypoint.
    let run = h.hoist_ok(&["run", "--rm", "--network", "none", "godemo:1"])?;
    assert!(
        run.starts_with(
            "hello from go: 168 primes below 1000, sum 76127, last 997\nLINUX/amd64 go1.19"
        ),
        "{run}"
    );

    // The final image: one layer (the binary), small, with the entrypoint; nothing of the builder.
    let (img, config) = image(&h, "godemo:1")?;
    assert_eq!(img["layers"], 1, "{img}");
    assert_eq!(
        config["rootfs"]["diff_ids"].as_array().map(Vec::len),
        Some(1)
    );
    let size = img["size"].as_u64().context("size")?;
    assert!(size < 4 << 20, "final image is {size} bytes: {img}");
    assert_eq!(config["config"]["Entrypoint"], serde_json::json!(["/app"]));
    let id1 = img["id"].as_str().unwrap().to_owned();
    // Its flattened filesystem holds the binary and nothing from /src, /root or the toolchain.
    let exported = tempfile::tempdir()?;
    let rootfs = exported.path().join("rootfs.tar");
    h.hoist_ok(&["run", "--name", "godemo-x", "--network", "none", "godemo:1"])?;
    h.hoist_ok(&["export", "godemo-x", "-o", rootfs.to_str().unwrap()])?;
    h.hoist_ok(&["rm", "godemo-x"])?;
    let mut files = Vec::new();
    for e in tar::Archive::new(std::fs::File::open(&rootfs)?).entries()? {
        let e = e?;
        if e.header().entry_type().is_file() {
            files.push(
                e.path()?
                    .to_string_lossy()
                    .trim_start_matches("./")
                    .to_owned(),
            );
        }
    }
    assert_eq!(files, ["app"], "the exported filesystem's files");

    // Go's build cache is in the builder's cache mount, kept by the agent...
    let caches = cache_mounts(&h);
    assert_eq!(caches.len(), 1, "{caches:?}");
    let cached_files = caches[0].1;
    assert!(cached_files > 10, "the go build cache is empty: {caches:?}");
    // ...and in no layer of the builder stage (it is cached: the same steps, from the cache).
    let out = build(&h, c, "godemo:build", &["--target", "build"])?;
    assert!(rerun(&out).is_empty(), "{out}");
    let seen = h.hoist_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "godemo:build",
        "sh",
        "-c",
        "test -x /out/app && echo app; ls -A /root; test -e /root/.cache || echo no-cache; go version",
    ])?;
    assert!(
        seen.starts_with("app\nno-cache\ngo version go1.19"),
        "{seen}"
    );

    // Unchanged sources: fully cached, the same image.
    let out = build(&h, c, "godemo:1", &[])?;
    assert!(rerun(&out).is_empty(), "{out}");
    let (img, _) = image(&h, "godemo:1")?;
    assert_eq!(img["id"], id1.as_str());

    // main.go changes: from `COPY . .` on the steps run again; `go build` compiles only main,
    // primes comes from the kept build cache.
    let main_go = std::fs::read_to_string(c.join("main.go"))?;
    assert!(main_go.contains("const greeting = \"hello\""));
    write(c, "main.go", &main_go.replace("\"hello\"", "\"hi again\""));
    let out = build(&h, c, "godemo:2", &[])?;
    assert_eq!(
        rerun(&out),
        [
            "COPY . .",
            "RUN",
            "COPY --from=build /out/app /app",
            "ENTRYPOINT [\"/app\"]"
        ],
        "{out}"
    );
    assert_eq!(compiled(&out), ["example.com/hoistdemo"], "{out}");
    let run2 = steps(&out)[4].2;
    let run = h.hoist_ok(&["run", "--rm", "--network", "none", "godemo:2"])?;
    assert!(run.starts_with("hi again from go: 168 primes"), "{run}");
    let (img2, _) = image(&h, "godemo:2")?;
    assert_ne!(img2["id"], id1.as_str());
    assert_eq!(img2["layers"], 1);
    let caches2 = cache_mounts(&h);
    assert_eq!(caches2.len(), 1, "the same cache directory: {caches2:?}");
    assert!(caches2[0].1 > cached_files, "{caches2:?}");

    assert_no_build_leftovers(&h);
    eprintln!(
        "build_go: image loaded after {:.1}s; go build step {run1:.2}s cold, {run2:.2}s with the cache; total {:.1}s",
        t_loaded.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Docker and podman (through runc/crun) give a process whose env has no HOME the home directory
/// of its user from the image's /etc/passwd (Go's build cache defaults to `$HOME/.cache/go-build`);
/// so does Hoist, in RUN steps and in `hoist run`.
#[test]
fn home_comes_from_passwd_as_with_runc() -> Result<()> {
    let h = Host::start("go2")?;
    let ctx = tempfile::tempdir()?;
    let c = ctx.path();
    write(
        c,
        "Dockerfile",
        "FROM busybox\nRUN echo \"home=$HOME\" > /home.txt\nCMD [\"cat\", \"/home.txt\"]\n",
    );
    build(&h, c, "home:1", &[])?;
    let at_build = h.hoist_ok(&["run", "--rm", "--network", "none", "home:1"])?;
    let at_run = h.hoist_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo home=$HOME",
    ])?;
    assert_eq!(
        (at_build.as_str(), at_run.as_str()),
        ("home=/root\n", "home=/root\n"),
        "(RUN, hoist run)"
    );
    Ok(())
}
