//! How much a container may ask for: counts and sizes of its command, environment, labels and
//! mounts. One copy for both sides, like [`crate::rules`]: the agent refuses a create request
//! beyond them (400) and the controller a service spec (422), so nothing the controller accepts is
//! refused later by every agent.
//!
//! Why these numbers: the command and environment are what `execve` takes, and the kernel
//! refuses one string over 128 KiB (`MAX_ARG_STRLEN`) and all of them over a quarter of the stack
//! limit (2 MiB with the default 8 MiB), each string counted with its NUL and a pointer to it; a
//! request beyond that could only fail at the very end of a create, after the agent did all the
//! work. Labels and mounts have no kernel limit, so theirs are generous bounds on what every
//! listing, record and mount table carries (Kubernetes caps a pod's annotations at 256 KiB in
//! all). A path is at most `PATH_MAX`. Pure functions; each problem is answered in words with
//! the field it is about.

use crate::agent::{CreateContainer, ExecRequest};
use crate::service::{FieldError, ServiceSpec};
use std::collections::BTreeMap;

/// The longest one argument or environment entry may be: the kernel's `MAX_ARG_STRLEN`.
pub const MAX_EXEC_STRING: usize = 128 << 10;
/// The most bytes a command and its environment may take together, counted as `execve` counts
/// them ([`exec_cost`]): the 2 MiB it allows with the default 8 MiB stack, less 64 KiB left for
/// the program's path and what the agent adds (`HOSTNAME`, `HOME`, `PATH`).
pub const MAX_EXEC_BYTES: usize = (2 << 20) - (64 << 10);
/// The most environment entries.
pub const MAX_ENV: usize = 100_000;
/// The most arguments (entrypoint and command together).
pub const MAX_ARGS: usize = 10_000;
/// The most labels a container may carry.
pub const MAX_LABELS: usize = 1_000;
/// The longest label key.
pub const MAX_LABEL_KEY: usize = 1024;
/// The most bytes of all labels' keys and values together.
pub const MAX_LABEL_BYTES: usize = 256 << 10;
/// The most mounts (binds, volumes and tmpfs together).
pub const MAX_MOUNTS: usize = 1_000;
/// The longest path a mount may name: `PATH_MAX`.
pub const MAX_PATH: usize = 4096;
/// What a service spec leaves of [`MAX_LABELS`] and [`MAX_LABEL_BYTES`] for the labels the
/// agent's worker adds to each replica (`hoist.task`, `hoist.restarts`, ...).
pub const RESERVED_LABELS: usize = 16;
pub const RESERVED_LABEL_BYTES: usize = 8 << 10;

/// What `execve` counts for a string of `len` bytes: the bytes, its NUL and a pointer to it.
pub fn exec_cost(len: usize) -> usize {
    len + 1 + std::mem::size_of::<u64>()
}

/// A count against its maximum: `"12 entries, at most 10"`.
fn check_count(n: usize, max: usize, unit: &str) -> Result<(), String> {
    if n > max {
        return Err(format!("{n} {unit}, at most {max}"));
    }
    Ok(())
}

/// One argument or environment entry of `len` bytes.
pub fn check_exec_string(len: usize) -> Result<(), String> {
    if len > MAX_EXEC_STRING {
        return Err(format!(
            "{len} bytes, above the kernel's limit of {MAX_EXEC_STRING} for one argument or \
             variable"
        ));
    }
    Ok(())
}

/// A command and environment taking `total` bytes as `execve` counts them.
pub fn check_exec_bytes(total: usize) -> Result<(), String> {
    if total > MAX_EXEC_BYTES {
        return Err(format!(
            "the command and environment take {total} bytes (each string with its NUL and a \
             pointer, as execve counts them), at most {MAX_EXEC_BYTES}"
        ));
    }
    Ok(())
}

/// Checks a list of strings given to `execve`; `field` names the list (`env`, `cmd`). Answers
/// the bytes they take.
fn check_strings(strings: &[String], max: usize, field: &str) -> Result<usize, String> {
    let unit = if field == "env" {
        "entries"
    } else {
        "arguments"
    };
    check_count(strings.len(), max, unit).map_err(|e| format!("{field}: {e}"))?;
    let mut total = 0;
    for (i, s) in strings.iter().enumerate() {
        check_exec_string(s.len()).map_err(|e| format!("{field}[{i}]: {e}"))?;
        total += exec_cost(s.len());
    }
    Ok(total)
}

/// Checks labels with room for `reserved` labels and `reserved_bytes` more; the error names
/// the field.
fn check_labels(
    labels: &BTreeMap<String, String>,
    reserved: usize,
    reserved_bytes: usize,
) -> Result<(), FieldError> {
    let bad = |message: String| FieldError {
        field: "labels".into(),
        message,
    };
    check_count(labels.len(), MAX_LABELS - reserved, "labels").map_err(bad)?;
    let mut total = 0usize;
    for (k, v) in labels {
        if k.len() > MAX_LABEL_KEY {
            return Err(bad(format!(
                "a key of {} bytes, at most {MAX_LABEL_KEY}",
                k.len()
            )));
        }
        total += k.len() + v.len();
    }
    let max = MAX_LABEL_BYTES - reserved_bytes;
    if total > max {
        return Err(bad(format!(
            "keys and values take {total} bytes, at most {max}"
        )));
    }
    Ok(())
}

/// A path a mount names.
fn check_path(path: &str) -> Result<(), String> {
    if path.len() > MAX_PATH {
        return Err(format!(
            "a path of {} bytes, at most {MAX_PATH}",
            path.len()
        ));
    }
    Ok(())
}

/// Checks a create request's sizes; the message starts with the field.
pub fn check_create(req: &CreateContainer) -> Result<(), String> {
    let mut total = check_strings(&req.env, MAX_ENV, "env")?;
    let entrypoint = req.entrypoint.as_deref().unwrap_or_default();
    check_count(entrypoint.len() + req.cmd.len(), MAX_ARGS, "arguments")
        .map_err(|e| format!("cmd: {e} with the entrypoint"))?;
    total += check_strings(entrypoint, MAX_ARGS, "entrypoint")?;
    total += check_strings(&req.cmd, MAX_ARGS, "cmd")?;
    check_exec_bytes(total).map_err(|e| format!("env: {e}"))?;
    check_labels(&req.labels, 0, 0).map_err(|e| e.to_string())?;
    let mounts = req.volumes.len() + req.named_volumes.len() + req.tmpfs.len();
    check_count(mounts, MAX_MOUNTS, "mounts").map_err(|e| format!("mounts: {e}"))?;
    let binds = req
        .volumes
        .iter()
        .flat_map(|v| [&v.host_path, &v.container_path]);
    let named = req.named_volumes.iter().map(|v| &v.target);
    for p in binds.chain(named) {
        check_path(p).map_err(|e| format!("volumes: {e}"))?;
    }
    for t in &req.tmpfs {
        check_path(&t.target).map_err(|e| format!("tmpfs: {e}"))?;
    }
    Ok(())
}

/// Checks an exec request's sizes; the message starts with the field.
pub fn check_exec(req: &ExecRequest) -> Result<(), String> {
    let total =
        check_strings(&req.cmd, MAX_ARGS, "cmd")? + check_strings(&req.env, MAX_ENV, "env")?;
    check_exec_bytes(total).map_err(|e| format!("env: {e}"))
}

/// The process the agent prepared (the image's command and environment merged with the
/// request's): whether `execve` will take it.
pub fn check_process(args: &[String], env: &[String]) -> Result<(), String> {
    let total: usize = args.iter().chain(env).map(|s| exec_cost(s.len())).sum();
    check_exec_bytes(total)
        .map_err(|e| format!("the image's command and environment with the request's: {e}"))
}

/// A service spec's sizes, every problem with its field. Checked by the controller before it
/// accepts a spec, not in the state machine's `apply` (which must keep deciding committed
/// entries as it always did).
pub fn check_service(spec: &ServiceSpec) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut bad = |field: &str, message: String| {
        errors.push(FieldError {
            field: field.into(),
            message,
        })
    };
    let mut total = 0usize;
    if let Err(e) = check_count(spec.env.len(), MAX_ENV, "entries") {
        bad("env", e);
    }
    for (k, v) in &spec.env {
        let len = k.len() + 1 + v.len();
        if let Err(e) = check_exec_string(len) {
            bad(&format!("env.{k}"), e);
        }
        total += exec_cost(len);
    }
    if let Err(e) = check_count(spec.command.len() + spec.args.len(), MAX_ARGS, "arguments") {
        bad("args", format!("{e} with the command"));
    }
    for (field, list) in [("command", &spec.command), ("args", &spec.args)] {
        for (i, a) in list.iter().enumerate() {
            if let Err(e) = check_exec_string(a.len()) {
                bad(&format!("{field}[{i}]"), e);
            }
            total += exec_cost(a.len());
        }
    }
    if let Err(e) = check_exec_bytes(total) {
        bad("env", e);
    }
    if let Err(e) = check_labels(&spec.labels, RESERVED_LABELS, RESERVED_LABEL_BYTES) {
        bad(&e.field, e.message);
    }
    if let Err(e) = check_count(spec.mounts.len(), MAX_MOUNTS, "mounts") {
        bad("mounts", e);
    }
    for (i, m) in spec.mounts.iter().enumerate() {
        for p in m.source.iter().chain([&m.target]) {
            if let Err(e) = check_path(p) {
                bad(&format!("mounts[{i}]"), e);
            }
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(env: Vec<String>) -> CreateContainer {
        CreateContainer {
            image: "busybox".into(),
            env,
            ..CreateContainer::default()
        }
    }

    #[test]
    fn exec_strings_are_counted_as_the_kernel_counts_them() {
        assert_eq!(exec_cost(3), 12);
        // 100,000 short variables fit; 100,000 of 13 bytes do not (22 bytes each with NUL and
        // pointer: 2.2 MB), and neither do more than 100,000.
        let short: Vec<String> = (0..100_000).map(|i| format!("E{i}=1")).collect();
        assert!(check_create(&create(short)).is_ok());
        let long: Vec<String> = (0..100_000).map(|i| format!("E{i:05}=v{i:05}")).collect();
        let e = check_create(&create(long)).unwrap_err();
        assert!(
            e.starts_with("env: the command and environment take 2200000 bytes"),
            "{e}"
        );
        let many: Vec<String> = (0..100_001).map(|i| format!("{i}=")).collect();
        assert_eq!(
            check_create(&create(many)).unwrap_err(),
            "env: 100001 entries, at most 100000"
        );
        let big = "A=".to_string() + &"x".repeat(MAX_EXEC_STRING);
        assert_eq!(
            check_create(&create(vec!["B=1".into(), big])).unwrap_err(),
            "env[1]: 131074 bytes, above the kernel's limit of 131072 for one argument or variable"
        );
        let mut req = create(vec![]);
        req.entrypoint = Some(vec!["sh".into(); 6_000]);
        req.cmd = vec!["x".into(); 5_000];
        assert_eq!(
            check_create(&req).unwrap_err(),
            "cmd: 11000 arguments, at most 10000 with the entrypoint"
        );
        assert!(check_process(&["sh".into()], &vec!["A=1".to_string(); 10]).is_ok());
        assert!(
            check_process(&["sh".into()], &vec!["A".repeat(100); 20_000])
                .unwrap_err()
                .starts_with("the image's command and environment with the request's: ")
        );
        let exec = ExecRequest {
            cmd: vec!["x".repeat(MAX_EXEC_STRING + 1)],
            env: vec![],
            workdir: None,
            user: None,
        };
        assert!(check_exec(&exec).unwrap_err().starts_with("cmd[0]: "));
    }

    fn tmpfs(target: &str) -> crate::TmpfsMount {
        serde_json::from_value(serde_json::json!({ "target": target })).unwrap()
    }

    #[test]
    fn labels_and_mounts() {
        let mut req = create(vec![]);
        req.labels = (0..1_001)
            .map(|i| (format!("l{i}"), String::new()))
            .collect();
        assert_eq!(
            check_create(&req).unwrap_err(),
            "labels: 1001 labels, at most 1000"
        );
        req.labels = [("k".repeat(MAX_LABEL_KEY + 1), String::new())].into();
        assert_eq!(
            check_create(&req).unwrap_err(),
            "labels: a key of 1025 bytes, at most 1024"
        );
        req.labels = (0..5)
            .map(|i| (format!("l{i}"), "v".repeat(60_000)))
            .collect();
        assert_eq!(
            check_create(&req).unwrap_err(),
            "labels: keys and values take 300010 bytes, at most 262144"
        );
        req.labels.clear();
        req.tmpfs = (0..1_001).map(|i| tmpfs(&format!("/t{i}"))).collect();
        assert_eq!(
            check_create(&req).unwrap_err(),
            "mounts: 1001 mounts, at most 1000"
        );
        req.tmpfs = vec![tmpfs(&format!("/{}", "a".repeat(MAX_PATH)))];
        assert_eq!(
            check_create(&req).unwrap_err(),
            "tmpfs: a path of 4097 bytes, at most 4096"
        );
    }

    #[test]
    fn service_specs_leave_room_for_the_workers_labels() {
        let mut spec: ServiceSpec =
            serde_json::from_str(r#"{"name": "web", "image": "busybox"}"#).unwrap();
        assert!(check_service(&spec).is_empty());
        spec.labels = (0..MAX_LABELS - RESERVED_LABELS + 1)
            .map(|i| (format!("l{i}"), String::new()))
            .collect();
        spec.env = [("BIG".to_string(), "x".repeat(MAX_EXEC_STRING))].into();
        spec.args = vec!["a".into(); MAX_ARGS + 1];
        spec.mounts = vec![crate::service::Mount {
            kind: crate::service::MountType::Tmpfs,
            source: None,
            target: format!("/{}", "a".repeat(MAX_PATH)),
            read_only: false,
            size: None,
            mode: None,
        }];
        let fields: Vec<String> = check_service(&spec)
            .into_iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            fields,
            [
                "env.BIG: 131076 bytes, above the kernel's limit of 131072 for one argument or variable",
                "args: 10001 arguments, at most 10000 with the command",
                "labels: 985 labels, at most 984",
                "mounts[0]: a path of 4097 bytes, at most 4096",
            ]
        );
    }
}
