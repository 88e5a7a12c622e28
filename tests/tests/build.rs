//! `hoist build` end to end on one lab host: a Dockerfile with FROM, ARG, ENV, RUN, WORKDIR,
//! COPY (--chown), USER, LABEL, EXPOSE, CMD builds; the image runs with the expected files, env,
//! user and workdir; a rebuild is fully cached; a one-file change redoes only the steps from its
//! COPY on; `--no-cache` redoes everything; bad Dockerfiles fail naming the line (every
//! unsupported line at once); nothing is left behind (no build containers, no mounts).
//!
//! Then what real Dockerfiles use: multi-stage builds with `--target` (a stage the target does
//! not need never runs, and a change to its files rebuilds nothing), `COPY --from` a stage, an
//! index and an image, `RUN --mount` cache (kept between builds), tmpfs, bind (context and
//! stage) and secret (in no layer blob, cache entry or history), heredocs, SHELL, VOLUME,
//! HEALTHCHECK, ONBUILD and MAINTAINER in Docker's config fields, `ADD <URL>` with a checksum
//! from a server on the lab's loopback, `COPY --parents`/`--exclude`, and normalised base names.

use anyhow::Result;
use hoist_tests::build_lab::{assert_no_build_leftovers, build_tag, image_config, text, write};
use hoist_tests::Host;
use serde_json::Value;
use std::path::Path;

fn code(out: &std::process::Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

const DOCKERFILE: &str = r#"# syntax=docker/dockerfile:1
FROM busybox
ARG GREETING=hi
ENV APP_HOME=/srv/app \
    MODE=test
# users for --chown and USER
RUN echo 'appuser:x:1234:1234::/home/appuser:/bin/sh' >> /etc/passwd \
 && echo 'appuser:x:1234:' >> /etc/group \
 && echo "$GREETING from run" > /built.txt \
 && rm /bin/vi
WORKDIR $APP_HOME
COPY --chown=appuser:appuser app/ ./
COPY ["script.sh", "/usr/local/bin/"]
RUN cat hello.txt > copied-at-build.txt
COPY . /ctx/
USER appuser
LABEL org.example.name="demo app"
EXPOSE 8080
CMD ["sh", "-c", "echo user=$(id -u):$(id -g) pwd=$(pwd) mode=$MODE; cat hello.txt copied-at-build.txt /built.txt; stat -c '%u %n' hello.txt; ls -A /ctx; test -e /bin/vi || echo no-vi; script.sh"]
"#;

/// `(instruction, cached)` of each step in a build's output.
fn steps(out: &str) -> Vec<(String, bool)> {
    let lines: Vec<&str> = out.lines().collect();
    let mut v = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if let Some(rest) = l.strip_prefix("Step ") {
            let inst = rest
                .split_once(" : ")
                .map(|x| x.1)
                .unwrap_or("")
                .to_string();
            let cached = lines.get(i + 1).is_some_and(|n| *n == " ---> CACHED");
            v.push((inst, cached));
        }
    }
    v
}

fn build(h: &Host, ctx: &Path, extra: &[&str]) -> Result<(String, String)> {
    let mut args = vec!["build", "-t", "demo:1"];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    let out = h.hoist(&args)?;
    anyhow::ensure!(
        code(&out) == 0,
        "build failed: {}\n{}\nagent log:\n{}",
        text(&out.stdout),
        text(&out.stderr),
        hoist_tests::tail(&h.agent_log(), 30)
    );
    Ok((text(&out.stdout), text(&out.stderr)))
}

#[test]
fn build_run_cache_and_partial_rebuild() -> Result<()> {
    let h = Host::start("b1")?;
    let ctx = tempfile::tempdir()?;
    let c = ctx.path();
    write(c, "Dockerfile", DOCKERFILE);
    write(c, "app/hello.txt", "hello v1\n");
    write(c, "app/data.txt", "data\n");
    write(c, "script.sh", "#!/bin/sh\necho script-ran\n");
    write(c, "secret.txt", "do not send\n");
    write(c, "debug.log", "noise\n");
    write(c, "keep.log", "wanted\n");
    write(c, ".dockerignore", "secret.txt\n*.log\n!keep.log\n");
    std::fs::set_permissions(
        c.join("script.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;

    // First build: every step runs.
    let (out, _) = build(&h, c, &[])?;
    let s = steps(&out);
    assert_eq!(s.len(), 13, "{out}");
    assert_eq!(s[0].0, "FROM busybox");
    assert!(s.iter().all(|(_, cached)| !cached), "{out}");
    assert!(out.contains("Successfully built "), "{out}");
    assert!(out.contains("Successfully tagged demo:1"), "{out}");

    // The image runs with the files, env, user and workdir the Dockerfile gave it.
    let run = h.hoist_ok(&["run", "--rm", "--network", "none", "demo:1"])?;
    assert!(
        run.contains("user=1234:1234 pwd=/srv/app mode=test"),
        "{run}"
    );
    assert!(run.contains("hello v1\nhello v1\nhi from run\n"), "{run}");
    assert!(run.contains("1234 hello.txt"), "--chown applied: {run}");
    assert!(run.contains("no-vi"), "a deleted file stays deleted: {run}");
    assert!(run.contains("script-ran"), "{run}");
    let ctx_listing: Vec<&str> = run
        .lines()
        .skip_while(|l| !l.starts_with("1234 hello.txt"))
        .skip(1)
        .take_while(|l| *l != "no-vi")
        .collect();
    assert_eq!(
        ctx_listing,
        [
            ".dockerignore",
            "Dockerfile",
            "app",
            "keep.log",
            "script.sh"
        ],
        ".dockerignore honoured: {run}"
    );

    // Layers and history: busybox's one layer + 3 COPY + 2 RUN; 13 history entries (one for the
    // imported base layer, which had none), 7 of them empty.
    let (img, config) = image_config(&h, "demo:1")?;
    assert_eq!(img["layers"], 6, "{img}");
    let history = config["history"].as_array().unwrap();
    assert_eq!(history.len(), 13, "{config}");
    assert_eq!(history[0]["comment"], "base layer without history");
    let run_entry = history[3]["created_by"].as_str().unwrap();
    assert!(
        run_entry.starts_with(r#"RUN |GREETING=hi ["/bin/sh","-c","echo 'appuser:x:1234"#),
        "build args show in RUN's history like Docker's: {run_entry}"
    );
    assert_eq!(history[2]["created_by"], "ENV APP_HOME=/srv/app MODE=test");
    let empty = history.iter().filter(|e| e["empty_layer"] == true).count();
    assert_eq!(empty, 7, "ARG ENV WORKDIR USER LABEL EXPOSE CMD: {config}");
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 6);
    let cfg = &config["config"];
    assert_eq!(cfg["User"], "appuser");
    assert_eq!(cfg["WorkingDir"], "/srv/app");
    assert!(cfg["Env"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e == "APP_HOME=/srv/app"));
    assert!(cfg["ExposedPorts"].get("8080/tcp").is_some(), "{cfg}");
    assert_eq!(cfg["Labels"]["org.example.name"], "demo app");
    let id1 = img["id"].as_str().unwrap().to_string();

    // A rebuild: every step after FROM from the cache, the same image.
    let out = h.hoist_ok(&["build", "-o", "json", "-t", "demo:1", c.to_str().unwrap()])?;
    let r: Value = serde_json::from_str(&out)?;
    assert_eq!(r["steps"], 13);
    assert_eq!(r["cached_steps"], 12, "{r}");
    assert_eq!(r["id"], id1.as_str());

    // One file changes: the steps before its COPY are cached, that COPY and all after run.
    write(c, "app/hello.txt", "hello v2\n");
    let (out, _) = build(&h, c, &[])?;
    let s = steps(&out);
    let cached: Vec<bool> = s.iter().map(|(_, c)| *c).collect();
    assert_eq!(
        cached,
        [false, true, true, true, true, false, false, false, false, false, false, false, false],
        "{out}"
    );
    assert!(
        s[5].0.starts_with("COPY --chown=appuser:appuser app/"),
        "{:?}",
        s[5]
    );
    let run = h.hoist_ok(&["run", "--rm", "--network", "none", "demo:1"])?;
    assert!(run.contains("hello v2\nhello v2\n"), "{run}");

    // --no-cache runs everything again.
    let (out, _) = build(&h, c, &["--no-cache"])?;
    assert!(steps(&out).iter().all(|(_, cached)| !cached), "{out}");

    // A build arg changes the ARG step's key, so it and every later step run again.
    let (out, _) = build(&h, c, &["--build-arg", "GREETING=yo"])?;
    let cached: Vec<bool> = steps(&out).iter().map(|(_, c)| *c).collect();
    assert_eq!(cached, [false; 13], "{out}");
    let run = h.hoist_ok(&["run", "--rm", "--network", "none", "demo:1"])?;
    assert!(run.contains("yo from run"), "{run}");

    // -q prints only the id.
    let out = h.hoist_ok(&["build", "-q", "-t", "demo:1", c.to_str().unwrap()])?;
    assert!(
        out.trim().starts_with("sha256:") && out.lines().count() == 1,
        "{out}"
    );

    // Removing the image frees its layers; the cache entries that named them are then misses,
    // and a rebuild still succeeds (steps whose state survived stay cached).
    h.hoist_ok(&["image", "rm", "demo:1"])?;
    let (out, _) = build(&h, c, &[])?;
    let cached: Vec<bool> = steps(&out).iter().map(|(_, c)| *c).collect();
    assert_eq!(
        &cached[..3],
        [false, true, true],
        "ARG and ENV states survive: {out}"
    );
    assert!(
        !cached[3],
        "the RUN layer was removed with the image: {out}"
    );
    let run = h.hoist_ok(&["run", "--rm", "--network", "none", "demo:1"])?;
    assert!(run.contains("hello v2"), "{run}");

    // Nothing left behind: no build containers, no mounts of the data dir.
    let ps: Value = serde_json::from_str(&h.hoist_ok(&["ps", "-a", "-o", "json"])?)?;
    assert_eq!(ps.as_array().unwrap().len(), 0, "{ps}");
    // The agent's own tmpfs for volatile container files (`DATA/run`) stays; nothing else.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")?;
    let data = h.data_dir();
    let left: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| Path::new(m).starts_with(&data) && Path::new(m) != data.join("run"))
        .collect();
    assert!(
        left.is_empty(),
        "mounts left under {}: {left:?}",
        data.display()
    );
    let tmp = h.data_dir().join("build/tmp");
    assert_eq!(std::fs::read_dir(&tmp)?.count(), 0, "build temp files left");
    Ok(())
}

#[test]
fn bad_dockerfiles_fail_with_the_line() -> Result<()> {
    let h = Host::start("b2")?;
    let ctx = tempfile::tempdir()?;
    let c = ctx.path();
    write(c, "a.txt", "a\n");
    let cases = [
        // A stage cycle: a stage copying from a later one.
        (
            "FROM busybox AS a\nRUN true\nCOPY --from=b /x /x\nFROM busybox AS b\n",
            "Dockerfile:3: stage cycle: \"b\" is the stage at line 4",
        ),
        // A --from naming no stage is an image, which does not exist.
        (
            "FROM busybox\nCOPY --from=127.0.0.1:9/nothing:1 /a /b\n",
            "Dockerfile:2: image \"127.0.0.1:9/nothing:1\" is not on this host and could not be pulled",
        ),
        (
            "FROM busybox AS a\nFROM scratch\nCOPY --from=5 /a /b\n",
            "Dockerfile:3: there is no stage 5 (the Dockerfile has 2)",
        ),
        (
            "FROM busybox\nWORKDIR /app\nRUN --mount=type=cache,target=../../../etc true\n",
            "Dockerfile:3: --mount target=../../../etc: outside the container's root",
        ),
        (
            "FROM busybox\nRUN <<EOF\necho never ends\n",
            "Dockerfile:2: heredoc <<EOF has no terminating EOF line",
        ),
        // Every unsupported line at once.
        (
            "FROM busybox\nRUN --mount=type=ssh true\nADD --keep-git-dir https://x/y.git /y\nRUN --network=host true\nFROBNICATE\n",
            "the Dockerfile has 4 problems:\nDockerfile:2: --mount type=ssh is not supported\nDockerfile:3: ADD --keep-git-dir is not supported (ADD of git repositories)\nDockerfile:4: RUN --network=host is not supported (steps run with none or the build's network)\nDockerfile:5: unknown instruction \"FROBNICATE\"",
        ),
        (
            "FROM busybox AS a\nFROM scratch\n",
            "--target \"nope\": no stage has that name (stages: a)",
        ),
        // Not local: the agent tries to pull it, from a registry on the test netns's loopback
        // where nothing listens, and the error names the line and the reason.
        (
            "FROM 127.0.0.1:9/not-here:1\n",
            "Dockerfile:1: image \"127.0.0.1:9/not-here:1\" is not on this host and could not be pulled",
        ),
        (
            "FROM busybox\nRUN exit 3\n",
            "Dockerfile:2: the command [\"/bin/sh\",\"-c\",\"exit 3\"] returned a non-zero code: 3",
        ),
        (
            "FROM busybox\nCOPY missing.txt /\n",
            "Dockerfile:2: source \"missing.txt\" is not in the build context",
        ),
        // A URL that does not answer (loopback of the test's namespace) fails before any step.
        (
            "FROM busybox\nRUN echo must-not-run\nADD http://127.0.0.1:9/x.tgz /\n",
            "Dockerfile:3: ADD http://127.0.0.1:9/x.tgz: ",
        ),
    ];
    for (df, want) in cases {
        write(c, "Dockerfile", df);
        let mut args = vec!["build", "-t", "bad:1"];
        if df.ends_with("FROM scratch\n") {
            args.extend(["--target", "nope"]);
        }
        args.push(c.to_str().unwrap());
        let out = h.hoist(&args)?;
        assert!(
            !text(&out.stdout).contains("must-not-run"),
            "{df}: refused before its steps: {}",
            text(&out.stdout)
        );
        assert_eq!(code(&out), 1, "{df}: {}", text(&out.stdout));
        assert!(
            text(&out.stderr).contains(want),
            "{df}: want {want:?}, got {}",
            text(&out.stderr)
        );
    }
    // A Dockerfile of 10 MB is refused naming its size, before the context is sent.
    write(
        c,
        "Dockerfile",
        &format!("FROM busybox\n{}", "# padding\n".repeat(1 << 20)),
    );
    let out = h.hoist(&["build", "-t", "bad:1", c.to_str().unwrap()])?;
    assert_eq!(code(&out), 1);
    assert!(
        text(&out.stderr).contains("a Dockerfile may have at most 1048576"),
        "{}",
        text(&out.stderr)
    );
    let ps: Value = serde_json::from_str(&h.hoist_ok(&["ps", "-a", "-o", "json"])?)?;
    assert_eq!(
        ps.as_array().unwrap().len(),
        0,
        "failed RUN removed its container"
    );
    assert_no_build_leftovers(&h);
    Ok(())
}

#[test]
fn scratch_add_archive_and_exec_form() -> Result<()> {
    let h = Host::start("b3")?;
    let ctx = tempfile::tempdir()?;
    let c = ctx.path();
    // A tar archive ADD must unpack, holding a static busybox.
    let root = tempfile::tempdir()?;
    std::fs::create_dir_all(root.path().join("bin"))?;
    std::fs::copy("/bin/busybox", root.path().join("bin/busybox"))?;
    let st = std::process::Command::new("tar")
        .args(["-czf"])
        .arg(c.join("rootfs.tar.gz"))
        .arg("-C")
        .arg(root.path())
        .arg(".")
        .status()?;
    assert!(st.success());
    write(
        c,
        "Dockerfile",
        "FROM scratch\nENV V=1.2\nARG FULL=v$V\nLABEL full=$FULL\nADD rootfs.tar.gz /\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox mkdir -p /out && echo made > /out/x\"]\nENTRYPOINT [\"/bin/busybox\"]\nCMD [\"cat\", \"/out/x\"]\nSTOPSIGNAL SIGINT\n",
    );
    let (out, _) = build(&h, c, &[])?;
    assert!(out.contains("Step 5/9 : ADD rootfs.tar.gz /"), "{out}");
    let run = h.hoist_ok(&["run", "--rm", "--network", "none", "demo:1"])?;
    assert_eq!(run, "made\n");
    let (img, config) = image_config(&h, "demo:1")?;
    assert_eq!(img["layers"], 2);
    assert_eq!(config["config"]["StopSignal"], "SIGINT");
    assert_eq!(
        config["config"]["Labels"]["full"], "v1.2",
        "an ARG default sees the ENV before it"
    );
    Ok(())
}

#[test]
fn copy_resolves_paths_inside_the_image_and_run_network_modes() -> Result<()> {
    let h = Host::start("b4")?;
    // A host directory the image's symlinks name: nothing may ever be written to it.
    let sentinel = tempfile::tempdir()?;
    let host_dir = sentinel.path().display().to_string();
    let ctx = tempfile::tempdir()?;
    let c = ctx.path();
    write(c, "payload.txt", "payload\n");
    // An archive whose entries try to climb out of the destination (raw names: the tar crate
    // itself refuses to write `..`).
    let mut evil = tar::Builder::new(std::fs::File::create(c.join("evil.tar"))?);
    for name in ["../../escape.txt", "ok.txt"] {
        let mut h = tar::Header::new_gnu();
        h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(2);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        evil.append(&h, &b"x\n"[..])?;
    }
    evil.into_inner()?.sync_all()?;
    write(
        c,
        "Dockerfile",
        &format!(
            "FROM busybox\n\
             RUN mkdir -p {host_dir} && ln -s {host_dir} /link && ln -s / /rootlink\n\
             COPY payload.txt /link/\n\
             COPY payload.txt /rootlink{host_dir}/again.txt\n\
             ADD evil.tar /link/sub/\n\
             RUN test ! -e /sys/class/net/eth0\n"
        ),
    );
    let out = h.hoist(&["build", "-t", "safe:1", c.to_str().unwrap()])?;
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    // The tar's `..` entry is refused by the unpacker, which fails the ADD; either way the host
    // directory stays empty.
    assert_eq!(
        std::fs::read_dir(sentinel.path())?.count(),
        0,
        "a build wrote through an image symlink to the host: {all}"
    );
    assert_eq!(code(&out), 1, "{all}");
    assert!(all.contains("Dockerfile:5: ADD failed"), "{all}");

    // Without the hostile archive the build succeeds and the files are inside the image.
    let df =
        std::fs::read_to_string(c.join("Dockerfile"))?.replace("ADD evil.tar /link/sub/\n", "");
    write(c, "Dockerfile", &df);
    build(&h, c, &[])?;
    assert_eq!(std::fs::read_dir(sentinel.path())?.count(), 0);
    let run = h.hoist_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "demo:1",
        "cat",
        &format!("{host_dir}/payload.txt"),
        &format!("{host_dir}/again.txt"),
    ])?;
    assert_eq!(run, "payload\npayload\n");

    // RUN steps get no network by default and the bridge when asked.
    write(
        c,
        "Dockerfile",
        "FROM busybox\nRUN test -e /sys/class/net/eth0\n",
    );
    let out = h.hoist(&[
        "build",
        "--network",
        "bridge",
        "-t",
        "net:1",
        c.to_str().unwrap(),
    ])?;
    assert_eq!(code(&out), 0, "{}{}", text(&out.stdout), text(&out.stderr));
    Ok(())
}

#[test]
fn interrupting_the_client_cancels_the_build() -> Result<()> {
    let h = Host::start("b5")?;
    let ctx = tempfile::tempdir()?;
    let c = ctx.path();
    write(c, "Dockerfile", "FROM busybox\nRUN sleep 60\nRUN true\n");
    let mut cli = std::process::Command::new(hoist_tests::bin("hoist"))
        .env("HOIST_AGENT", h.socket())
        .args(["build", "-t", "slow:1", c.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let ps = |h: &Host| -> Result<usize> {
        let v: Value = serde_json::from_str(&h.hoist_ok(&["ps", "-a", "-o", "json"])?)?;
        Ok(v.as_array().map_or(0, |a| a.len()))
    };
    hoist_tests::wait_for(
        "the RUN container",
        std::time::Duration::from_secs(20),
        || Ok((ps(&h)? == 1).then_some(())),
    )?;
    cli.kill()?;
    cli.wait()?;
    hoist_tests::wait_for(
        "the RUN container to go",
        std::time::Duration::from_secs(10),
        || Ok((ps(&h)? == 0).then_some(())),
    )?;
    let images = h.hoist_ok(&["image", "ls"])?;
    assert!(!images.contains("slow"), "{images}");

    // What a build interrupted by an agent crash leaves in build/tmp is removed at start-up.
    let tmp = h.data_dir().join("build/tmp");
    std::fs::create_dir_all(tmp.join("context-crashed/sub"))?;
    std::fs::write(tmp.join("layer-crashed.tar"), "x")?;
    let mut h = h;
    h.kill_agent()?;
    h.start_agent()?;
    assert_eq!(std::fs::read_dir(&tmp)?.count(), 0, "leftovers cleaned");

    // An agent killed during a step with host mounts (a tmpfs, a secret's tmpfs, a stage's
    // overlay) leaves them mounted; the next start unmounts and removes them.
    let secret = c.join("secret.txt");
    std::fs::write(&secret, "x")?;
    write(
        c,
        "Dockerfile",
        "FROM busybox AS a\nFROM busybox\nRUN --mount=type=tmpfs,target=/t \\\n    --mount=type=secret,id=s \\\n    --mount=type=bind,from=a,target=/a sleep 60\n",
    );
    let src = format!("id=s,src={}", secret.display());
    let mut cli = std::process::Command::new(hoist_tests::bin("hoist"))
        .env("HOIST_AGENT", h.socket())
        .args([
            "build",
            "--secret",
            &src,
            "-t",
            "slow:2",
            c.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let build_mounts = |tmp: &Path| {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(tmp.to_str().unwrap()))
            .count()
    };
    hoist_tests::wait_for(
        "the step's three host mounts",
        std::time::Duration::from_secs(20),
        || Ok((build_mounts(&tmp) == 3).then_some(())),
    )?;
    h.kill_agent()?;
    let _ = cli.kill();
    let _ = cli.wait();
    h.start_agent()?;
    assert_eq!(build_mounts(&tmp), 0, "mounts of the killed build");
    assert_eq!(
        std::fs::read_dir(&tmp)?.count(),
        0,
        "scratch of the killed build"
    );
    Ok(())
}

/// `hoist run --rm IMAGE [CMD...]`: stdout.
fn run_rm(h: &Host, image: &str, cmd: &[&str]) -> Result<String> {
    let mut args = vec!["run", "--rm", image];
    args.extend_from_slice(cmd);
    h.hoist_ok(&args)
}

const STAGES: &str = r#"ARG BASE=busybox
FROM $BASE AS base
RUN echo base > /base.txt
FROM busybox AS build
WORKDIR /src
COPY app.txt .
RUN tr a-z A-Z < app.txt > /out.txt
FROM base AS test
COPY only-test.txt /t.txt
RUN cat /t.txt > /test-ran
RUN --mount=type=bind,from=build,source=/out.txt,target=/in.txt \
    --mount=type=bind,source=only-test.txt,target=/m.txt \
    cat /in.txt /m.txt > /binds
ARG TARGETOS TARGETARCH
RUN echo "$TARGETOS/$TARGETARCH" > /platform
FROM scratch
COPY --from=build /out.txt /out.txt
COPY --from=0 /base.txt /base.txt
COPY --from=busybox /bin/busybox /bin/busybox
CMD ["/bin/busybox", "cat", "/out.txt", "/base.txt"]
"#;

#[test]
fn multi_stage_builds_what_the_target_needs() -> Result<()> {
    let h = Host::start("b6")?;
    let ctx = tempfile::tempdir()?;
    let c = ctx.path();
    write(c, "Dockerfile", STAGES);
    write(c, "app.txt", "hello\n");
    write(c, "only-test.txt", "test v1\n");

    // The last stage needs `build` and stage 0, not `test`: its steps never run.
    let out = build_tag(&h, c, "staged:1", &[])?;
    let s = steps(&out);
    assert!(!s.iter().any(|(i, _)| i.contains("only-test")), "{out}");
    assert_eq!(s.len(), 11, "{out}");
    assert_eq!(run_rm(&h, "staged:1", &[])?, "HELLO\nbase\n");
    let (img, _) = image_config(&h, "staged:1")?;
    assert_eq!(img["layers"], 3, "scratch + three COPY --from: {img}");

    // A file only the unneeded stage uses: nothing rebuilds.
    write(c, "only-test.txt", "test v2\n");
    let out = build_tag(&h, c, "staged:1", &[])?;
    assert!(
        steps(&out)
            .iter()
            .all(|(i, cached)| *cached || i.starts_with("FROM")),
        "{out}"
    );

    // --target builds `test` and the stages it uses (its base, and `build` for a bind mount).
    let out = build_tag(&h, c, "staged:test", &["--target", "test"])?;
    let s = steps(&out);
    assert_eq!(s.len(), 12, "{out}");
    assert!(s[1].1, "stage base is cached from the first build: {out}");
    assert_eq!(
        run_rm(
            &h,
            "staged:test",
            &[
                "sh",
                "-c",
                "cat /test-ran /base.txt /binds /platform; ls -d /in.txt /m.txt 2>/dev/null | wc -l"
            ]
        )?,
        "test v2\nbase\nHELLO\ntest v2\nlinux/amd64\n0\n"
    );

    // A change to a file the target copies reruns the stage that reads it and what follows.
    write(c, "app.txt", "changed\n");
    let out = build_tag(&h, c, "staged:1", &[])?;
    let rerun: Vec<String> = steps(&out)
        .into_iter()
        .filter(|(i, cached)| !cached && !i.starts_with("FROM"))
        .map(|(i, _)| i.split_whitespace().next().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        rerun,
        ["COPY", "RUN", "COPY", "COPY", "COPY", "CMD"],
        "{out}"
    );
    assert_eq!(run_rm(&h, "staged:1", &[])?, "CHANGED\nbase\n");
    assert_no_build_leftovers(&h);
    Ok(())
}

#[test]
fn cache_and_tmpfs_mounts_persist_or_vanish_and_stay_out_of_layers() -> Result<()> {
    let h = Host::start("b7")?;
    let ctx = tempfile::tempdir()?;
    let c = ctx.path();
    write(
        c,
        "Dockerfile",
        "FROM busybox\n\
         RUN --mount=type=cache,target=/var/cache/app,id=counter \\\n\
             --mount=type=tmpfs,target=/scratch,size=1Mi \\\n\
             n=$(cat /var/cache/app/n 2>/dev/null || echo 0); echo $((n+1)) > /var/cache/app/n; \\\n\
             cp /var/cache/app/n /seen; echo junk > /scratch/junk; \\\n\
             grep -q ' /scratch tmpfs' /proc/mounts && echo tmpfs > /scratch-kind\n\
         WORKDIR /src\n\
         RUN --mount=type=bind,rw echo written > new.txt && cat Dockerfile > /dev/null && ls /src > /listing\n",
    );
    build_tag(&h, c, "cached:1", &[])?;
    // A bind without a target lands in the workdir; `rw` lets the step write, and keeps nothing.
    assert_eq!(
        run_rm(
            &h,
            "cached:1",
            &["sh", "-c", "ls /src | wc -l; grep -c new.txt /listing"]
        )?,
        "0\n1\n"
    );
    assert!(!c.join("new.txt").exists(), "the context is untouched");
    build_tag(&h, c, "cached:2", &["--no-cache"])?;
    // The second build saw what the first left in the cache; neither mount is in the image.
    assert_eq!(
        run_rm(
            &h,
            "cached:2",
            &[
                "sh",
                "-c",
                "cat /seen /scratch-kind; ls -d /var/cache/app /scratch 2>/dev/null | wc -l"
            ]
        )?,
        "2\ntmpfs\n0\n"
    );
    assert_eq!(run_rm(&h, "cached:1", &["cat", "/seen"])?, "1\n");
    let caches: Vec<_> = std::fs::read_dir(h.data_dir().join("build/cache-mounts"))?
        .flatten()
        .collect();
    assert_eq!(caches.len(), 1, "one cache directory, kept between builds");
    assert_no_build_leftovers(&h);
    Ok(())
}

/// Every byte of the host's image store and build cache, layer blobs decompressed.
fn stored_bytes(h: &Host) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    fn walk(dir: &Path, out: &mut Vec<(std::path::PathBuf, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if m.is_dir() {
                walk(&p, out);
            } else if m.is_file() {
                let bytes = std::fs::read(&p).unwrap_or_default();
                if bytes.starts_with(&[0x1f, 0x8b]) {
                    let mut plain = Vec::new();
                    let _ = std::io::Read::read_to_end(
                        &mut flate2::read::GzDecoder::new(&bytes[..]),
                        &mut plain,
                    );
                    out.push((p.clone(), plain));
                }
                out.push((p, bytes));
            }
        }
    }
    let mut out = Vec::new();
    walk(&h.data_dir().join("images"), &mut out);
    walk(&h.data_dir().join("build"), &mut out);
    out
}

#[test]
fn secrets_reach_the_step_and_nothing_else() -> Result<()> {
    let h = Host::start("b8")?;
    let ctx = tempfile::tempdir()?;
    let c = ctx.path();
    let secret_dir = tempfile::tempdir()?;
    let secret = secret_dir.path().join("token");
    let value = "s3cr3t-Hoist-7f3a9c";
    std::fs::write(&secret, value)?;
    write(
        c,
        "Dockerfile",
        "FROM busybox\n\
         RUN --mount=type=secret,id=token,required \\\n\
             sha256sum < /run/secrets/token | cut -c1-64 > /sum && wc -c < /run/secrets/token > /len \\\n\
             && stat -c %a /run/secrets/token > /mode\n\
         RUN --mount=type=secret,id=absent ls /run/secrets 2>/dev/null | wc -l > /absent\n",
    );
    let src = format!("id=token,src={}", secret.display());
    let out = build_tag(&h, c, "secret:1", &["--secret", &src])?;
    assert!(!out.contains(value), "not in the output: {out}");
    let sum = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(value.as_bytes()))
    };
    assert_eq!(
        run_rm(&h, "secret:1", &["cat", "/sum", "/len", "/mode", "/absent"])?,
        format!("{sum}\n19\n400\n0\n")
    );
    let history = h
        .hoist_ok(&["image", "history", "--no-trunc", "secret:1"])
        .or_else(|_| h.hoist_ok(&["image", "history", "secret:1"]))?;
    assert!(history.contains("type=secret,id=token"), "{history}");
    assert!(!history.contains(value), "{history}");
    for (path, bytes) in stored_bytes(&h) {
        assert!(
            !bytes.windows(value.len()).any(|w| w == value.as_bytes()),
            "the secret is in {}",
            path.display()
        );
    }
    // Required and not given: the step fails naming the line and the flag to use.
    let out = h.hoist(&["build", "--no-cache", "-t", "secret:2", c.to_str().unwrap()])?;
    assert_eq!(code(&out), 1);
    assert!(
        text(&out.stderr).contains("Dockerfile:2: secret \"token\" is required: give it with hoist build --secret id=token,src=FILE"),
        "{}",
        text(&out.stderr)
    );
    assert_no_build_leftovers(&h);
    Ok(())
}

#[test]
fn heredocs_shell_volume_healthcheck_onbuild_and_maintainer() -> Result<()> {
    let h = Host::start("b9")?;
    let ctx = tempfile::tempdir()?;
    let c = ctx.path();
    write(
        c,
        "Dockerfile",
        "# syntax=docker/dockerfile:1\n\
         FROM docker.io/library/busybox:latest\n\
         ARG GREETING=hello\n\
         SHELL [\"/bin/sh\", \"-eu\", \"-c\"]\n\
         RUN <<EOF\n\
         echo one > /h1\n\
         echo \"two $GREETING\" >> /h1\n\
         EOF\n\
         RUN <<EOF\n\
         #!/bin/sh\n\
         echo \"from a script: $0\" > /h2\n\
         EOF\n\
         COPY <<A <<\"B\" /etc/conf/\n\
         greeting=$GREETING\n\
         A\n\
         literal=$GREETING\n\
         B\n\
         VOLUME /data\n\
         HEALTHCHECK --interval=5s --retries=2 CMD test -e /h1\n\
         ONBUILD RUN echo triggered > /onbuild.txt\n\
         MAINTAINER Jo <jo@example.com>\n\
         CMD cat /h1\n",
    );
    build_tag(&h, c, "parent:1", &[])?;
    assert_eq!(run_rm(&h, "parent:1", &[])?, "one\ntwo hello\n");
    assert_eq!(
        run_rm(
            &h,
            "parent:1",
            &["cat", "/h2", "/etc/conf/A", "/etc/conf/B"]
        )?,
        "from a script: /bin/sh\ngreeting=hello\nliteral=$GREETING\n"
    );
    // Docker's field names, so other tools read them too.
    let (_, config) = image_config(&h, "parent:1")?;
    let cfg = &config["config"];
    assert_eq!(cfg["Volumes"], serde_json::json!({"/data": {}}), "{cfg}");
    assert_eq!(
        cfg["Healthcheck"]["Test"],
        serde_json::json!(["CMD-SHELL", "test -e /h1"])
    );
    assert_eq!(cfg["Healthcheck"]["Interval"], 5_000_000_000u64);
    assert_eq!(cfg["Healthcheck"]["Retries"], 2);
    assert_eq!(cfg["Shell"], serde_json::json!(["/bin/sh", "-eu", "-c"]));
    assert_eq!(
        cfg["Cmd"],
        serde_json::json!(["/bin/sh", "-eu", "-c", "cat /h1"])
    );
    assert_eq!(
        cfg["OnBuild"],
        serde_json::json!(["RUN echo triggered > /onbuild.txt"])
    );
    assert_eq!(cfg["Labels"]["maintainer"], "Jo <jo@example.com>");

    // A container of it gets an anonymous volume at /data and the image's health check.
    let id = h.hoist_ok(&["run", "-d", "parent:1", "sleep", "30"])?;
    let id = id.trim();
    let info: Value = serde_json::from_str(&h.hoist_ok(&["inspect", id])?)?;
    let info = if info.is_array() {
        info[0].clone()
    } else {
        info
    };
    let mounts = info["mounts"].as_array().cloned().unwrap_or_default();
    assert!(
        mounts
            .iter()
            .any(|m| m["type"] == "volume" && m["destination"] == "/data"),
        "{info}"
    );
    assert_eq!(
        info["healthcheck"]["test"],
        serde_json::json!(["CMD-SHELL", "test -e /h1"])
    );
    h.hoist_ok(&["rm", "-f", id])?;

    // The triggers run in a build FROM it, and are not inherited further.
    let child = tempfile::tempdir()?;
    write(
        child.path(),
        "Dockerfile",
        "FROM parent:1\nRUN cat /onbuild.txt\n",
    );
    let out = build_tag(&h, child.path(), "child:1", &[])?;
    assert!(out.contains("RUN echo triggered > /onbuild.txt"), "{out}");
    assert_eq!(
        run_rm(&h, "child:1", &["cat", "/onbuild.txt"])?,
        "triggered\n"
    );
    let (_, config) = image_config(&h, "child:1")?;
    assert!(config["config"]["OnBuild"].is_null(), "{config}");

    // A foreign platform is refused, not silently built.
    write(
        child.path(),
        "Dockerfile",
        "FROM --platform=linux/s390x busybox\nRUN true\n",
    );
    let out = h.hoist(&["build", "-t", "foreign:1", child.path().to_str().unwrap()])?;
    assert_eq!(code(&out), 1);
    assert!(
        text(&out.stderr).contains(
            "Dockerfile:1: FROM --platform=linux/s390x: this host builds and runs linux/"
        ),
        "{}",
        text(&out.stderr)
    );
    assert_no_build_leftovers(&h);
    Ok(())
}

#[test]
fn add_urls_with_checksums_and_copy_parents_and_exclude() -> Result<()> {
    let h = Host::start("b10")?;
    let www = tempfile::tempdir()?;
    std::fs::write(www.path().join("tool.txt"), "remote tool\n")?;
    // A web server on the loopback of the host's own network namespace.
    /// Stops the server even when an assertion fails.
    struct Server(std::process::Child);
    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Server(
        h.command(Path::new("/bin/busybox"))
            .args(["httpd", "-f", "-p", "127.0.0.1:18080", "-h"])
            .arg(www.path())
            .spawn()?,
    );
    {
        let mut up = false;
        for _ in 0..100 {
            let probe = h
                .command(Path::new("/bin/busybox"))
                .args([
                    "wget",
                    "-q",
                    "-O",
                    "/dev/null",
                    "http://127.0.0.1:18080/tool.txt",
                ])
                .status()?;
            if probe.success() {
                up = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        anyhow::ensure!(up, "busybox httpd did not answer");
        let sum = "sha256:2b1d5b7c0e2de4a9c6e2f9b4e6e5d1ab6a7a0b7b8f4b6cf3e1e1a2b3c4d5e6f7";
        let real = {
            use sha2::Digest;
            format!(
                "sha256:{}",
                hex::encode(sha2::Sha256::digest(b"remote tool\n"))
            )
        };
        let ctx = tempfile::tempdir()?;
        let c = ctx.path();
        write(c, "src/a/x.txt", "x\n");
        write(c, "src/b/y.txt", "y\n");
        write(c, "docs/guide.txt", "guide\n");
        write(c, "docs/README.md", "skip me\n");
        write(c, "docs/drafts/wip.txt", "skip me too\n");
        write(
            c,
            "Dockerfile",
            &format!(
                "FROM scratch AS nothing\n\
                 FROM library/busybox\n\
                 COPY --from=nothing / /empty/\n\
                 ADD --checksum={real} http://127.0.0.1:18080/tool.txt /opt/\n\
                 COPY --parents src/a/x.txt src/b/y.txt /out/\n\
                 COPY --exclude=*.md --exclude=drafts docs/ /docs/\n"
            ),
        );
        build_tag(&h, c, "fetched:1", &[])?;
        assert_eq!(
            run_rm(
                &h,
                "fetched:1",
                &[
                    "sh",
                    "-c",
                    "cat /opt/tool.txt; stat -c %a /opt/tool.txt; find /out /docs /empty -type f | sort"
                ]
            )?,
            "remote tool\n600\n/docs/guide.txt\n/out/src/a/x.txt\n/out/src/b/y.txt\n"
        );
        // A wrong checksum fails before any step runs.
        write(
            c,
            "Dockerfile",
            &format!("FROM busybox\nRUN echo must-not-run\nADD --checksum={sum} http://127.0.0.1:18080/tool.txt /opt/\n"),
        );
        let out = h.hoist(&["build", "-t", "fetched:2", c.to_str().unwrap()])?;
        assert_eq!(code(&out), 1);
        assert!(
            !text(&out.stdout).contains("must-not-run"),
            "{}",
            text(&out.stdout)
        );
        assert!(
            text(&out.stderr).contains(&format!("Dockerfile:3: ADD http://127.0.0.1:18080/tool.txt: --checksum={sum} does not match the downloaded file ({real})")),
            "{}",
            text(&out.stderr)
        );
        assert_no_build_leftovers(&h);
    }
    Ok(())
}
