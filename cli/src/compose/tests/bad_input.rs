//! Input that must fail clearly, quickly and without exhausting memory, never panicking.

use super::*;
use std::time::{Duration, Instant};

/// The process's peak resident memory in KiB.
fn max_rss_kib() -> i64 {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    u.ru_maxrss
}

fn bounded(what: &str, f: impl FnOnce() -> String) -> String {
    bounded_by(what, Duration::from_secs(5), f)
}

/// `f`'s answer, after checking it took less than `limit` and grew the peak memory by < 512 MiB.
fn bounded_by(what: &str, limit: Duration, f: impl FnOnce() -> String) -> String {
    let (rss, t) = (max_rss_kib(), Instant::now());
    let e = f();
    let (grew, took) = (max_rss_kib() - rss, t.elapsed());
    assert!(took < limit, "{what} took {took:?} (limit {limit:?})");
    assert!(
        grew < 512 * 1024,
        "{what} grew the peak memory by {grew} KiB"
    );
    e
}

#[test]
fn a_billion_laughs_is_refused_quickly() {
    let mut bomb = String::from(
        "x-a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for w in names.windows(2) {
        let refs = vec![format!("*{}", w[0]); 9].join(",");
        bomb.push_str(&format!("x-{}: &{} [{refs}]\n", w[1], w[1]));
    }
    bomb.push_str("services:\n  web:\n    image: x\n    command: *i\n");
    let e = bounded("the billion laughs", || Project::new(&bomb).err());
    assert!(
        e.contains("repetition limit exceeded") || e.contains("alias bomb"),
        "{e}"
    );
    assert!(e.starts_with("/p/compose.yaml"), "{e}");
}

#[test]
fn one_large_anchor_aliased_many_times_is_refused() {
    // Few aliases, each copying 200 000 values: serde_yaml_ng's jump limit allows it.
    let mut text = String::from("x-big: &big [");
    text.push_str(&vec!["1"; 200_000].join(","));
    text.push_str("]\nservices:\n  web:\n    image: x\n    command: [");
    text.push_str(&vec!["*big"; 40].join(","));
    text.push_str("]\n");
    let e = bounded("a quadratic bomb", || Project::new(&text).err());
    assert_contains(&e, "expands to more than 500000 values (an alias bomb?)");
    // Long strings copied by aliases count by their bytes.
    let long = "y".repeat(4 << 20);
    let text = format!(
        "x-s: &s \"{long}\"\nservices:\n  web:\n    image: x\n    command: [{}]\n",
        ["*s"; 12].join(",")
    );
    let e = bounded("a string bomb", || Project::new(&text).err());
    assert_contains(&e, "bytes of text (an alias bomb?)");
}

#[test]
fn a_file_over_10_mb_is_refused_before_parsing() {
    let file = |comment: usize| {
        let mut text = String::from("services:\n  web:\n    image: x\n# ");
        text.push_str(&"z".repeat(comment));
        text
    };
    // A file just under the limit is parsed, timed beside the refusal: refused before parsing,
    // the larger file takes a small part of that time however loaded the machine is (about
    // 5 ms against 570 ms in a debug build).
    let under = Project::new(&file(MAX_FILE_BYTES - 100));
    let t = Instant::now();
    under.ok();
    let parsed = t.elapsed();
    let text = file(MAX_FILE_BYTES);
    let over = Project::new(&text);
    let t = Instant::now();
    let e = over.err();
    let refused = t.elapsed();
    assert!(
        refused * 10 < parsed,
        "refused in {refused:?}, parsed in {parsed:?}"
    );
    assert_contains(
        &e,
        "/p/compose.yaml: the file is 10485792 bytes, more than the 10485760",
    );
    // From the disk too, without reading it all.
    let dir = std::env::temp_dir().join(format!("hoist-compose-big-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("compose.yaml");
    std::fs::write(&path, text.as_bytes()).unwrap();
    let e = load_from_disk("shop", &[path], &BTreeMap::new()).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_contains(&e.to_string(), "more than 10485760 bytes");
}

#[test]
fn a_large_plain_file_under_the_limit_stays_bounded() {
    // 9.5 MB of environment entries: over the value budget, refused without a blow-up. A
    // tenth of it is timed first: linear work takes about 10 times as long for the whole, a
    // blow-up 100 times or more. (A fixed limit failed a debug build on a busy 2-core CI
    // machine, at 6.0 s for what takes 4.5 s there alone.)
    let entries = |bytes: usize| {
        let mut text = String::from("services:\n  web:\n    image: x\n    environment:\n");
        let mut i = 0;
        while text.len() < bytes {
            text.push_str(&format!("      V{i}: v\n"));
            i += 1;
        }
        text
    };
    let tenth = Project::new(&entries(950_000));
    let t = Instant::now();
    tenth.ok(); // under every budget
    let limit = t.elapsed() * 30 + Duration::from_millis(500);
    let text = entries(9_500_000);
    let e = bounded_by("a 9.5 MB file", limit, || Project::new(&text).err());
    assert_contains(&e, "expands to more than 500000 values");
}

#[test]
fn syntax_errors_name_the_line_and_column() {
    let e = Project::new("services:\n  web:\n    image: nginx\n    ports: [\"80:80\"\n").err();
    assert!(e.starts_with("/p/compose.yaml:5:"), "{e}");
    let e = Project::new("services:\n  web:\n\timage: nginx\n").err();
    assert!(e.starts_with("/p/compose.yaml:3:1: "), "{e}");
    assert_contains(&e, "(a tab? YAML indents with spaces only)");
    // libyaml reports a duplicate key at the mapping that holds it.
    let e = Project::new("services:\n  web:\n    image: a\n    image: b\n").err();
    assert!(e.starts_with("/p/compose.yaml:3:5: services.web: "), "{e}");
    assert_contains(&e, "duplicate key \"image\"");
    let e = Project::new("services:\n  web:\n    image: *nothing\n").err();
    assert!(e.starts_with("/p/compose.yaml:3:"), "{e}");
}

#[test]
fn not_utf8_names_the_first_bad_byte() {
    let p = Project::default();
    let mut bytes = b"services:\n  web:\n    image: caf".to_vec();
    bytes.extend([0xE9, b'\n']);
    let p = Project {
        files: vec![("/p/compose.yaml".into(), bytes)],
        ..p
    };
    assert_eq!(
        p.err(),
        "/p/compose.yaml:3:15: the file is not UTF-8 text (a Compose file must be UTF-8)"
    );
    // A UTF-16 file (with its byte order mark) is not UTF-8 either.
    let p = Project {
        files: vec![("/p/compose.yaml".into(), vec![0xFF, 0xFE, b's', 0])],
        ..Project::default()
    };
    assert_contains(&p.err(), "not UTF-8");
    // A UTF-8 byte order mark is fine.
    let p = Project {
        files: vec![(
            "/p/compose.yaml".into(),
            b"\xEF\xBB\xBFservices:\n  a:\n    image: x\n".to_vec(),
        )],
        ..Project::default()
    };
    p.ok();
}

#[test]
fn wrong_shapes() {
    for (text, msg) in [
        (
            "- services\n",
            "/p/compose.yaml: a Compose file is a mapping (services:, volumes:, ...), not a list",
        ),
        ("", "/p/compose.yaml: the file is empty"),
        ("# only a comment\n", "/p/compose.yaml: the file is empty"),
        ("just a string\n", "not a string"),
        (
            "services: [web]\n",
            "/p/compose.yaml: services: expected a mapping of services, found a list",
        ),
        (
            "services:\n  web: nginx\n",
            "/p/compose.yaml: services.\"web\": a service is a mapping, not a string",
        ),
        ("services: {}\n", "/p/compose.yaml: no services"),
        (
            "services:\n  web:\n    image: x\n---\nservices: {}\n",
            "more than one document",
        ),
        (
            "services:\n  web:\n    image: [x]\n",
            "service web: image: expected a string, found a list",
        ),
        (
            "services:\n  web:\n    image: x\n    ports: \"80\"\n",
            "service web: ports: expected a list, found a string",
        ),
        (
            "services:\n  web:\n    image: x\n    1: y\n",
            "service web: : the key 1 is not a string",
        ),
        (
            "services:\n  web:\n    <<: 5\n",
            "services.web.<<: a merge key takes a mapping or a list of mappings",
        ),
        (
            "services:\n  web:\n    image: x\n    environment: [1, 2]\n",
            "service web: environment: expected a mapping, found a list",
        ),
    ] {
        let e = Project::new(text).err();
        assert_contains(&e, msg);
    }
}

#[test]
fn deep_nesting_is_refused() {
    let text = format!(
        "services:\n  web:\n    image: x\n    labels: {}{}\n",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let e = bounded("deep nesting", || Project::new(&text).err());
    assert_contains(&e, "recursion limit exceeded");
}

#[test]
fn every_problem_is_reported_at_once() {
    let e = Project::new("services:\n  a:\n    image: x\n    privileged: true\n    ports: [\"x\"]\n  b:\n    image: x\n    pid: host\n").err();
    assert_eq!(e.lines().count(), 3, "{e}");
}

#[test]
fn variables_that_repeat_each_other_are_refused_quickly() {
    // Ten `.env` lines, each ten copies of the one before: 10^11 bytes from 1 KB.
    let mut env = String::from("A=xxxxxxxxxx\n");
    let names = ["A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K"];
    for w in names.windows(2) {
        env.push_str(&format!(
            "{}={}\n",
            w[1],
            format!("${{{}}}", w[0]).repeat(10)
        ));
    }
    let p = Project::new("services:\n  web:\n    image: x\n    command: [\"$K\"]\n")
        .other(".env", &env);
    let e = bounded("a .env bomb", || p.err());
    assert_contains(&e, "interpolation makes more than 32 MiB of text");
    // One large variable repeated in the file itself.
    let p = Project::new(&format!(
        "services:\n  web:\n    image: x\n    command: [{}]\n",
        vec!["\"$BIG\""; 40].join(",")
    ))
    .env("BIG", &"y".repeat(1 << 20));
    let e = bounded("a repeated large variable", || p.err());
    assert_contains(&e, "interpolation makes more than 32 MiB of text");
}

#[test]
fn deeply_nested_defaults_are_refused() {
    let deep = format!("{}x{}", "${A:-".repeat(50_000), "}".repeat(50_000));
    let p = Project::new(&format!("services:\n  web:\n    image: \"{deep}\"\n"));
    let e = bounded("nested defaults", || p.err());
    assert_contains(&e, "variables nest more than 32 levels deep");
    // A few levels are fine.
    let p = Project::new("services:\n  web:\n    image: \"${A:-${B:-${C:-busybox}}}\"\n");
    assert_eq!(svc(&p.ok(), "web").image, "busybox");
}
