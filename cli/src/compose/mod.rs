//! Compose files → Hoist service specs, without contacting anyone: what `hoist stack config`
//! prints and what `hoist stack deploy` will apply.
//!
//! [`load`](fn@load) is the pure core (files come in as bytes, other files through a [`FileSource`]);
//! [`load_from_disk`] is the thin I/O wrapper reading the `-c` files, the `.env` next to the
//! first one, `env_file`s and `extends` files from the disk.
//!
//! # Pipeline
//! Each file: refused over 10 MiB before parsing, must be UTF-8; parsed by serde_yaml_ng into a
//! value whose size, aliases included, is bounded ([`yaml`]: an alias bomb stops after at most
//! 500 000 values or 32 MiB of text); YAML merge keys applied (chained ones too); every string
//! interpolated ([`interpolate`]: process environment over `.env`; top-level `x-` keys are not);
//! list forms of maps turned into maps and relative paths joined to the file's directory
//! ([`merge::normalize_service`]); `extends` resolved (same file or `file:`, recursively, cycles
//! refused). Then the files are merged in order ([`merge`]: the Compose spec's rules, `!reset`
//! and `!override` included), the top level is checked, and each service is converted key by key
//! ([`convert`], [`deploy`], [`mounts`]) and its spec checked with [`ServiceSpec::validate`]
//! (except the name: the controller decides about `_` in names).
//!
//! # Names
//! A service `web` of stack `shop` is the Hoist service `shop_web` (Swarm's convention); a named
//! volume `db` is the node volume `shop_db`, unless the top-level volume says `name:` (as is) or
//! `external: true` (its own name). Service names follow Compose's rule (`[a-zA-Z0-9._-]+`);
//! Hoist's own name rule is the controller's.
//!
//! # Key by key
//! Top level: `services`, `volumes` (entries: `name`, `external`, `driver: local`; `labels` warned
//! and ignored; another driver or `driver_opts` refused), `name` (the stack's NAME wins; a
//! different one is warned about), `version` (warned: obsolete, ignored, as Compose v2), `x-*`
//! (ignored). `networks` that only names `default` is warned about; any other network, `secrets`,
//! `configs` and `include` are refused (not supported yet). Any other key is refused.
//!
//! Supported service keys:
//! - `image`; `entrypoint` → `command` (ENTRYPOINT), `command` → `args` (CMD); a string is split
//!   as a shell would (shlex), a list is taken as is.
//! - `environment` (map or list; `NAME` alone takes the variable's value, or is left out),
//!   `env_file` (string, list, or `{path, required}`; same format as `.env`; `environment` wins).
//! - `ports`: short (`"80"`, `"8080:80"`, `"8080:80/udp"`, `"0.0.0.0:8080:80"`, ranges
//!   `"8000-8002:8000-8002"` up to 1000 ports) and long (`target`, `published`, `protocol`,
//!   `mode: ingress|host`; `name`, `app_protocol` ignored). A host IP other than 0.0.0.0/:: is
//!   refused (a published port answers on every address of every node); so is sctp.
//! - `volumes`: short (`NAME:/path[:ro]`, `/host:/path`, `./rel:/path`, `~/x:/path`) and long
//!   (`type: volume|bind|tmpfs`, `source`, `target`, `read_only`, `tmpfs.size`, `tmpfs.mode`,
//!   `bind.create_host_path` ignored). A named volume must be declared at the top level. A bind
//!   mount is warned about (the path must exist on every node). Refused: anonymous volumes (no
//!   source), `nocopy`, bind propagation other than `rprivate`, `volume.subpath`, other types.
//!   `z`/`Z` and `bind.selinux` are warned and ignored.
//! - `tmpfs` (string or list, `size=` and `mode=` options; other options refused).
//! - `user`, `working_dir` → `workdir`, `hostname`, `init`, `read_only`, `stop_signal`,
//!   `stop_grace_period`, `ulimits` (number or `{soft, hard}`), `labels` (map or list; put on
//!   containers).
//! - `cap_add`, `cap_drop`, `security_opt: [no-new-privileges[:true|false]]` (other options,
//!   such as a seccomp profile or AppArmor, refused), `userns_mode: private` (→ `userns = true`)
//!   or `host` (the default).
//! - `healthcheck`: `test` (`["CMD", ...]`, `["CMD-SHELL", "..."]` and a string run by
//!   `/bin/sh -c`), `interval`, `timeout`, `retries`, `start_period`, with Docker's defaults
//!   (30s, 30s, 3, 0s) for what is left out. `disable: true` or `["NONE"]`, and a healthcheck
//!   without `test`, are warned about: Hoist cannot yet switch off or retime an image's own
//!   HEALTHCHECK. `start_interval` is warned and ignored.
//! - `deploy`: `mode` (`replicated`, `global`; jobs refused), `replicas`, `endpoint_mode`,
//!   `resources.limits.{cpus, memory, pids}`, `resources.reservations.{cpus, memory}` (devices
//!   and generic resources refused), `restart_policy.{condition, delay, max_attempts, window}`,
//!   `update_config.{parallelism (0 = all replicas), delay, failure_action, monitor,
//!   max_failure_ratio, order}`, `placement.{constraints (node.id, node.hostname,
//!   node.labels.KEY; others refused), max_replicas_per_node, preferences (one spread over
//!   node.labels.KEY)}`. `labels` are put on the containers (Hoist has no service labels; warned).
//!   `rollback_config` is warned and ignored (Hoist rolls back to the previous version at once).
//! - Compose's older `cpus`, `mem_limit`, `mem_reservation`, `pids_limit`, `scale` fill the same
//!   fields where `deploy` is silent; a different value in both is refused.
//! - `extends` (resolved before merging), `x-*` (ignored).
//!
//! Warned and ignored (no meaning in a cluster): `container_name`, `depends_on`, `restart`
//! (`deploy.restart_policy` decides, as in Swarm), `platform`, `pull_policy`, `profiles` (every
//! service is deployed), `develop`, `attach`, `expose` (every port is reachable on the overlay),
//! `build` when `image` is given (without `image` it is refused), `logging` with the json-file or
//! local driver (another driver is refused), `networks` naming only `default`.
//!
//! Refused: `networks` naming another network, `secrets`, `configs` (not supported yet); and
//! what Hoist cannot honour: `privileged`, `devices`,
//! `device_cgroup_rules`, `gpus`, `network_mode`, `links`, `external_links`, `extra_hosts`, `dns`,
//! `dns_opt`, `dns_search`, `domainname`, `mac_address`, `pid`, `ipc`, `uts`,
//! `cgroup`, `cgroup_parent`, `sysctls`, `shm_size`, `volumes_from`, `runtime`, `isolation`,
//! `group_add`, the `cpu_*`/`cpuset`/`mem_swappiness`/`memswap_limit`/`oom_*`/`blkio_config`/
//! `storage_opt` tuning keys, `credential_spec`, `annotations`, `label_file`, `post_start`,
//! `pre_stop`, `use_api_socket`, `models`, `provider`, `tty: true`, `stdin_open: true`. An
//! unknown key is refused too.
//!
//! # Errors
//! Every problem found is reported at once, each naming where: `FILE:LINE:COLUMN` for YAML
//! errors (and the first non-UTF-8 byte), `FILE: PATH` for interpolation and merge-key errors,
//! `FILE: service NAME: KEY` for a service's keys (the file that last wrote the key). Semantic
//! errors have no line numbers: the YAML library keeps none in values.
//!
//! # The file model: our own, not a crate's
//! `docker-compose-types` 0.24 and `compose_spec` 0.3 were evaluated. Both parse with the
//! deprecated serde_yaml 0.9 (a second YAML stack next to serde_yaml_ng; docker-compose-types
//! also offers the unsound serde_yml), and neither interpolates, merges files or resolves
//! `extends`, so all of that must happen on an untyped value anyway, after which their types
//! only give serde errors without lines. docker-compose-types's `Deploy` lacks `rollback_config`
//! and `endpoint_mode` (and denies them as unknown fields), takes `deploy.labels` as a list only,
//! and keeps durations as plain strings. compose_spec covers the spec well (MPL-2.0) but its
//! strict types would refuse before we could say which key Hoist cannot honour. Converting the
//! value key by key lets every key be decided and named in the error.

mod convert;
mod deploy;
mod dotenv;
mod error;
mod interpolate;
mod load;
mod merge;
mod mounts;
mod syntax;
mod value;
mod yaml;

pub mod command;

#[cfg(test)]
mod tests;

pub use error::ComposeError;
pub use yaml::MAX_FILE_BYTES;

use hoist_proto::service::ServiceSpec;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// What a stack's Compose files become.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// One spec per service, in the order the files name them, named `STACK_SERVICE`.
    pub services: Vec<ServiceSpec>,
    /// The named volumes the stack makes (`STACK_NAME`, or the `name:` given), sorted as in the
    /// file; external volumes are not listed.
    pub volumes: Vec<String>,
    /// What was ignored or may surprise, one line each, naming the file and key.
    pub warnings: Vec<String>,
}

/// Where the loader reads files the Compose files name (`env_file`, `extends: {file}`, `.env`).
pub trait FileSource {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>>;
}

/// Files on the disk, at most [`MAX_FILE_BYTES`] each.
#[derive(Debug, Clone, Copy, Default)]
pub struct Disk;

impl FileSource for Disk {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        let f = std::fs::File::open(path)?;
        let mut out = Vec::new();
        f.take(MAX_FILE_BYTES as u64 + 1).read_to_end(&mut out)?;
        if out.len() > MAX_FILE_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("more than {MAX_FILE_BYTES} bytes"),
            ));
        }
        Ok(out)
    }
}

/// Checks a stack name: Compose's project name rule (lowercase letters, digits, `_`, `-`,
/// starting with a letter or digit).
pub fn check_stack_name(stack: &str) -> Result<(), String> {
    let ok = stack
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && stack
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{stack:?} is not a stack name (lowercase letters, digits, '_' and '-', starting \
             with a letter or digit)"
        ))
    }
}

/// Loads stack `stack` from `files` (path and content, in `-c` order). `env` is the process
/// environment; `dotenv_dir/.env`, read through `source` when it exists, fills in what `env`
/// does not set. `source` also reads `env_file`s and `extends` files.
// The pure entry point (the tests' and a future caller's); the CLI goes through load_from_disk.
#[allow(dead_code)]
pub fn load(
    stack: &str,
    files: &[(PathBuf, Vec<u8>)],
    env: &BTreeMap<String, String>,
    dotenv_dir: &Path,
    source: &dyn FileSource,
) -> Result<Loaded, ComposeError> {
    load_shown(stack, files, env, dotenv_dir, source, None)
}

/// [`load`](fn@load), naming files in errors relative to `shown_from` when they are below it.
pub fn load_shown(
    stack: &str,
    files: &[(PathBuf, Vec<u8>)],
    env: &BTreeMap<String, String>,
    dotenv_dir: &Path,
    source: &dyn FileSource,
    shown_from: Option<PathBuf>,
) -> Result<Loaded, ComposeError> {
    check_stack_name(stack).map_err(|m| ComposeError::one("stack", m))?;
    if files.is_empty() {
        return Err(ComposeError::one("stack", "no Compose file given"));
    }
    let mut warnings = Vec::new();
    let mut vars = BTreeMap::new();
    let dotenv = dotenv_dir.join(".env");
    match source.read(&dotenv) {
        Ok(bytes) => {
            let at = dotenv.display().to_string();
            let text = String::from_utf8(bytes)
                .map_err(|_| ComposeError::one(&at, "the file is not UTF-8 text"))?;
            let (pairs, unset) = dotenv::parse(&text, env)
                .map_err(|(line, m)| ComposeError::one(format!("{at}:{line}"), m))?;
            for u in unset {
                warnings.push(format!(
                    "{at}: the variable {u} is not set: it is an empty string"
                ));
            }
            vars.extend(pairs);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(ComposeError::one(
                dotenv.display().to_string(),
                format!("reading: {e}"),
            ))
        }
    }
    // The process environment wins over `.env`, as in docker compose.
    vars.extend(env.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mut loader = load::Loader::new(source, vars, warnings);
    loader.show_paths_from(shown_from);
    let mut roots = Vec::new();
    let mut problems = Vec::new();
    for (path, bytes) in files {
        match loader.file(path, bytes) {
            Ok(root) => roots.push((path.clone(), root)),
            Err(e) => problems.extend(e.problems),
        }
    }
    if !problems.is_empty() {
        return Err(ComposeError { problems });
    }
    loader.finish(stack, roots)
}

/// [`load`](fn@load) from the disk: reads `paths` (made absolute, so relative bind mounts become absolute
/// paths), with `.env` from the first file's directory.
pub fn load_from_disk(
    stack: &str,
    paths: &[PathBuf],
    env: &BTreeMap<String, String>,
) -> Result<Loaded, ComposeError> {
    let mut files = Vec::new();
    for p in paths {
        let abs = std::path::absolute(p).unwrap_or_else(|_| p.clone());
        let bytes = Disk
            .read(&abs)
            .map_err(|e| ComposeError::one(p.display().to_string(), format!("reading: {e}")))?;
        files.push((abs, bytes));
    }
    let dir = files
        .first()
        .and_then(|(p, _)| p.parent())
        .map(Path::to_path_buf)
        .unwrap_or_default();
    load_shown(
        stack,
        &files,
        env,
        &dir,
        &Disk,
        std::env::current_dir().ok(),
    )
}
