//! `hoist diff`, `hoist commit` and `hoist export` on one lab host, as an operator uses them: a
//! container adds, changes and deletes files (and empties a directory, which overlayfs marks
//! opaque); `diff` lists exactly that; `commit --change ... -m ...` makes an image that runs
//! with the changes and the new CMD and whose history carries the message; `export` writes the
//! flattened filesystem; a running container can be diffed, exported and committed; unknown
//! containers and bad requests fail clearly; nothing is left mounted or staged.

use anyhow::{Context, Result};
use hoist_tests::{wait_for, Host};
use serde_json::Value;
use std::process::Output;
use std::time::Duration;

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The entries of a tar file, without a leading `./` or trailing `/`.
fn tar_listing(bytes: &[u8]) -> Result<Vec<String>> {
    let mut a = tar::Archive::new(bytes);
    let mut names = Vec::new();
    for e in a.entries()? {
        let e = e?;
        let name = e.path()?.display().to_string();
        names.push(
            name.trim_start_matches("./")
                .trim_end_matches('/')
                .to_owned(),
        );
    }
    Ok(names)
}

const WORK: &str = "echo new > /new.txt \
    && echo 'extra:x:999:999::/:/bin/false' >> /etc/passwd \
    && rm /bin/vi \
    && mkdir -p /srv/data && echo x > /srv/data/f \
    && rm -rf /var/www && mkdir /var/www && echo fresh > /var/www/new.html";

#[test]
fn diff_commit_and_export_a_container() -> Result<()> {
    let h = Host::start("c1")?;
    h.hoist_ok(&[
        "run",
        "--name",
        "work",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        WORK,
    ])?;

    // diff: exactly what the container did, sorted, parents of changes as C, the emptied
    // directory's old content as D; the runtime's mount points (/etc/hosts...) are not changes.
    let diff = h.hoist_ok(&["diff", "work"])?;
    assert_eq!(
        diff.lines().collect::<Vec<_>>(),
        [
            "C /bin",
            "D /bin/vi",
            "C /etc",
            "C /etc/passwd",
            "A /new.txt",
            "A /srv",
            "A /srv/data",
            "A /srv/data/f",
            "C /var",
            "C /var/www",
            "D /var/www/index.html",
            "A /var/www/new.html",
        ],
        "{diff}"
    );
    let json: Value = serde_json::from_str(&h.hoist_ok(&["diff", "-o", "json", "work"])?)?;
    let first = &json.as_array().context("diff -o json is an array")?[0];
    assert_eq!(first, &serde_json::json!({"kind": "C", "path": "/bin"}));

    // commit with a change and a message: the image runs the new CMD and has the changes.
    let id = h.hoist_ok(&[
        "commit",
        "--change",
        r#"CMD ["cat", "/new.txt"]"#,
        "--change",
        "ENV COMMITTED=yes",
        "-m",
        "add new.txt",
        "--author",
        "Lab <lab@example.com>",
        "work",
        "snap:1",
    ])?;
    assert!(
        id.trim().starts_with("sha256:"),
        "commit prints the id: {id}"
    );
    let out = h.hoist_ok(&["run", "--rm", "--network", "none", "snap:1"])?;
    assert_eq!(out, "new\n");
    let out = h.hoist_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "snap:1",
        "sh",
        "-c",
        "test -e /bin/vi || echo no-vi; ls /var/www; tail -1 /etc/passwd; cat /srv/data/f; echo $COMMITTED",
    ])?;
    assert_eq!(
        out,
        "no-vi\nnew.html\nextra:x:999:999::/:/bin/false\nx\nyes\n"
    );
    let images: Value = serde_json::from_str(&h.hoist_ok(&["image", "ls", "-o", "json"])?)?;
    let listed = images
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"].as_str() == Some(id.trim()))
        .context("the committed image is listed under its id")?;
    assert_eq!(listed["layers"], 2, "busybox's layer and the container's");

    // history: the commit's entry on top, with the message; the table shows it too.
    let history: Value =
        serde_json::from_str(&h.hoist_ok(&["image", "history", "-o", "json", "snap:1"])?)?;
    assert_eq!(history[0]["created_by"], "hoist commit");
    assert_eq!(history[0]["comment"], "add new.txt");
    assert_eq!(history[0]["empty_layer"], false);
    let table = h.hoist_ok(&["image", "history", "snap:1"])?;
    assert!(
        table
            .lines()
            .nth(1)
            .unwrap_or_default()
            .contains("add new.txt"),
        "{table}"
    );
    let inspect: Value = serde_json::from_str(&h.hoist_ok(&["image", "inspect", "snap:1"])?)?;
    let inspect = inspect.to_string();
    assert!(inspect.contains("COMMITTED=yes"), "{inspect}");

    // export to a file: the flattened filesystem, the deleted paths gone.
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("rootfs.tar");
    h.hoist_ok(&["export", "work", "-o", file.to_str().unwrap()])?;
    let listing = tar_listing(&std::fs::read(&file)?)?;
    for want in [
        "new.txt",
        "srv/data/f",
        "var/www/new.html",
        "bin/sh",
        "etc/passwd",
    ] {
        assert!(
            listing.iter().any(|n| n == want),
            "{want} missing: {listing:?}"
        );
    }
    for gone in [
        "bin/vi",
        "var/www/index.html",
        "etc/hosts",
        "etc/resolv.conf",
    ] {
        assert!(!listing.iter().any(|n| n == gone), "{gone} exported");
    }
    assert!(!dir.path().join("rootfs.tar.partial").exists());
    // To standard output (not a terminal here): the same archive.
    let out = h.hoist(&["export", "work"])?;
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(tar_listing(&out.stdout)?, listing);
    // The tar is a rootfs `image import` takes.
    h.hoist_ok(&["image", "import", file.to_str().unwrap(), "flat:1"])?;
    let out = h.hoist_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "flat:1",
        "cat",
        "/var/www/new.html",
    ])?;
    assert_eq!(out, "fresh\n");

    // Nothing mounted on the host, nothing left staged.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")?;
    let data = h.data_dir().display().to_string();
    assert!(
        !mounts
            .lines()
            .any(|l| l.contains(&data) && l.contains("export-")),
        "an export mount is visible on the host"
    );
    let staged: Vec<_> = std::fs::read_dir(h.data_dir().join("images/tmp"))?.collect();
    assert!(staged.is_empty(), "left in images/tmp: {staged:?}");
    Ok(())
}

#[test]
fn a_running_container_and_an_unchanged_one() -> Result<()> {
    let h = Host::start("c2")?;
    h.hoist_ok(&[
        "run",
        "-d",
        "--name",
        "live",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo hi > /live.txt; sleep 1000",
    ])?;
    wait_for(
        "the running container's file",
        Duration::from_secs(10),
        || {
            Ok(h.hoist_ok(&["diff", "live"])?
                .lines()
                .any(|l| l == "A /live.txt")
                .then_some(()))
        },
    )?;
    let out = h.hoist(&["export", "live"])?;
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(tar_listing(&out.stdout)?.contains(&"live.txt".to_owned()));
    h.hoist_ok(&["commit", "live", "live:snap"])?;
    // Without --change, the image keeps what the container ran with (Docker's rule).
    let inspect = h.hoist_ok(&["image", "inspect", "live:snap"])?;
    assert!(inspect.contains("sleep 1000"), "{inspect}");
    let out = h.hoist_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "live:snap",
        "cat",
        "/live.txt",
    ])?;
    assert_eq!(out, "hi\n");
    h.hoist_ok(&["rm", "-f", "live"])?;

    // A container that changed nothing: no diff; its commit adds no layer, only history.
    h.hoist_ok(&[
        "run",
        "--name",
        "same",
        "--network",
        "none",
        "busybox",
        "true",
    ])?;
    assert_eq!(h.hoist_ok(&["diff", "same"])?, "");
    let result: Value = serde_json::from_str(
        &h.hoist_ok(&["commit", "-o", "json", "-m", "nothing", "same", "same:1"])?,
    )?;
    assert_eq!(result["layer_added"], false, "{result}");
    assert_eq!(result["reference"], "same:1");
    let history: Value =
        serde_json::from_str(&h.hoist_ok(&["image", "history", "-o", "json", "same:1"])?)?;
    assert_eq!(history[0]["empty_layer"], true);
    assert_eq!(history[0]["comment"], "nothing");
    Ok(())
}

#[test]
fn errors_are_clear() -> Result<()> {
    let h = Host::start("c3")?;
    for args in [
        vec!["diff", "nope"],
        vec!["commit", "nope", "x:1"],
        vec!["export", "nope", "-o", "/dev/null"],
    ] {
        let out = h.hoist(&args)?;
        assert_ne!(code(&out), 0, "{args:?} succeeded");
        assert!(
            text(&out.stderr).contains("no such container: nope"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    h.hoist_ok(&[
        "run",
        "--name",
        "w",
        "--network",
        "none",
        "busybox",
        "touch",
        "/x",
    ])?;
    let out = h.hoist(&["commit", "--change", "RUN rm -rf /", "w", "x:1"])?;
    assert_ne!(code(&out), 0);
    assert!(
        text(&out.stderr).contains("RUN cannot be changed by a commit"),
        "{}",
        text(&out.stderr)
    );
    let out = h.hoist(&["commit", "--change", "EXPOSE http", "w", "x:1"])?;
    assert!(
        text(&out.stderr).contains("invalid port"),
        "{}",
        text(&out.stderr)
    );
    let out = h.hoist(&["commit", "w", "Bad Name"])?;
    assert_ne!(code(&out), 0);
    // A refused commit makes no image.
    let images: Value = serde_json::from_str(&h.hoist_ok(&["image", "ls", "-o", "json"])?)?;
    let names: Vec<&Value> = images
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["references"].as_array().unwrap())
        .collect();
    assert!(!names.iter().any(|r| *r == "x:1"), "{names:?}");
    Ok(())
}
