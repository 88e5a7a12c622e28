//! The agent's local API (`/v1/...` on the agent's unix socket): containers, images, errors.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How a container is attached to the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// Its own network namespace with a veth into the host's bridge and an address from the host subnet.
    #[default]
    Bridge,
    /// The host's network namespace.
    Host,
    /// Its own network namespace with only loopback.
    None,
    /// On a node of a cluster's overlay: a bridge attachment reachable from every node, with the
    /// cluster DNS (Swarm's attachable overlay).
    Cluster,
}

/// Transport protocol of a published port.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// `-p HOSTPORT:PORT[/proto]`: traffic to the host's port is forwarded to the container's port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortMapping {
    pub host_port: u16,
    pub container_port: u16,
    #[serde(default)]
    pub protocol: Protocol,
}

/// `-v HOSTPATH:PATH[:ro]`: a host path bind-mounted into the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeMount {
    pub host_path: String,
    pub container_path: String,
    #[serde(default)]
    pub read_only: bool,
}

/// `--tmpfs PATH[:size=64m,mode=1777]` or `--mount type=tmpfs`: a fresh tmpfs at `target`,
/// mounted `nosuid,nodev` as Docker does; gone when the container stops. Docker's engine API
/// names the same values `TmpfsOptions.SizeBytes` and `Mode` (an integer: `0o1777` is 1023).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TmpfsMount {
    /// Where it is mounted inside the container (absolute).
    pub target: String,
    /// The most bytes it may hold; default: the kernel's (half the host's memory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// Permission bits of its root; default `0o1777`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only: bool,
}

/// `-v NAME:PATH[:ro]` or `--mount type=volume`: a named volume local to the node, created on
/// first use with the content and ownership of the image's directory at `target` (as Docker
/// does), and kept when the container is removed (`hoist volume rm` removes it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedVolumeMount {
    /// The volume's name (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`, Docker's rule).
    pub name: String,
    /// Where it is mounted inside the container (absolute).
    pub target: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A process limit (`setrlimit`) of a container, by name in [`CreateContainer::ulimits`]: the
/// service spec's type, `-1` meaning unlimited.
pub use crate::service::Ulimit;

/// Resource limits of a container; `None` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Resources {
    /// Memory limit in bytes.
    pub memory_bytes: Option<u64>,
    /// CPU quota in thousandths of a CPU (`--cpus 0.5` is 500).
    pub cpu_millis: Option<u64>,
    /// Relative CPU weight, 1..=10000 (cgroup v2 scale; default 100).
    pub cpu_weight: Option<u64>,
    /// Maximum number of processes.
    pub pids_limit: Option<u64>,
}

/// What `hoist run` asks the agent to create.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateContainer {
    /// Image reference, `NAME[:TAG]` or an image id.
    pub image: String,
    #[serde(default)]
    pub name: Option<String>,
    /// Replaces the image's CMD (and, with `entrypoint`, its ENTRYPOINT).
    #[serde(default)]
    pub cmd: Vec<String>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// `KEY=VALUE` pairs, added to (and overriding) the image's.
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub workdir: Option<String>,
    /// `UID[:GID]` or a user name from the image's `/etc/passwd`.
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub resources: Resources,
    #[serde(default)]
    pub network: NetworkMode,
    #[serde(default)]
    pub ports: Vec<PortMapping>,
    #[serde(default)]
    pub volumes: Vec<VolumeMount>,
    #[serde(default)]
    pub read_only: bool,
    /// Remove the container as soon as it exits.
    #[serde(default)]
    pub auto_remove: bool,
    /// Run a minimal init as pid 1 that forwards signals to the command and reaps orphaned
    /// processes (Docker's `--init`).
    #[serde(default)]
    pub init: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The signal that asks the command to stop (Docker's `--stop-signal`); default: the image's
    /// STOPSIGNAL, else SIGTERM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// How long a stop waits after the stop signal before SIGKILL, in milliseconds (Docker's
    /// `--stop-timeout`, Swarm's `--stop-grace-period`); default 10 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_grace_ms: Option<u64>,
    /// Process limits by name (`nofile`, `nproc`, ... as `hoist_proto::rules::ULIMITS` lists
    /// them), set with `setrlimit` in the container's processes before `execve` (Docker's
    /// `--ulimit`). Unset ones keep the runtime's defaults.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ulimits: BTreeMap<String, Ulimit>,
    /// Fresh tmpfs mounts (Docker's `--tmpfs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<TmpfsMount>,
    /// Named volumes of this node (Docker's `-v NAME:PATH`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub named_volumes: Vec<NamedVolumeMount>,
    /// Capabilities added to Docker's default set (Docker's `--cap-add`; names as
    /// `hoist_proto::capabilities` reads them, `ALL` is every one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    /// Capabilities taken from the default set (Docker's `--cap-drop`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    /// `no_new_privs` for every process of the container; default `true`. `false` lets setuid
    /// binaries and file capabilities raise privileges (Docker's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_new_privileges: Option<bool>,
    /// Run in a user namespace whose root is the agent's unprivileged `--userns-range`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub userns: bool,
}

/// The lifecycle of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerStatus {
    Created,
    Running,
    Exited,
}

impl std::fmt::Display for ContainerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ContainerStatus::Created => "created",
            ContainerStatus::Running => "running",
            ContainerStatus::Exited => "exited",
        })
    }
}

/// How a container's first process ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitInfo {
    /// The shell-style exit code: the process's code, or 128 + signal.
    pub code: i32,
    /// The signal that killed it, if any.
    pub signal: Option<i32>,
    /// The kernel's OOM killer ended a process of this container.
    pub oom_killed: bool,
    /// When it ended, RFC 3339.
    pub finished_at: String,
}

/// A container as `ps` and `inspect` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    pub image: String,
    pub image_id: String,
    /// The process started: entrypoint followed by cmd, after image defaults.
    pub command: Vec<String>,
    pub status: ContainerStatus,
    pub created_at: String,
    pub started_at: Option<String>,
    /// Host pid of the container's first process while it runs.
    pub pid: Option<i32>,
    pub exit: Option<ExitInfo>,
    pub ip_address: Option<String>,
    pub spec: CreateContainer,
    /// What is mounted into the container: the requested bind mounts and the anonymous volumes
    /// made for the image's `VOLUME` paths (Docker's `Mounts`), parents before children.
    #[serde(default)]
    pub mounts: Vec<MountInfo>,
    /// The image's `HEALTHCHECK` when the container was created (Docker's `Config.Healthcheck`):
    /// a service replica whose spec has no check is checked with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<ImageHealthcheck>,
    /// The image's `SHELL` when the container was created: `CMD-SHELL` checks run in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
}

/// What a mount of a container is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    /// A host path the operator named (`-v HOSTPATH:PATH`).
    Bind,
    /// An anonymous volume the agent made for an image `VOLUME` (removed with the container), or
    /// a named volume (`name` is its name; kept).
    Volume,
    /// A tmpfs (`source` is `tmpfs`).
    Tmpfs,
}

/// One mount of a container, as `inspect` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountInfo {
    #[serde(rename = "type")]
    pub kind: MountKind,
    /// The volume's id (volumes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The host path mounted.
    pub source: String,
    /// Where it is mounted inside the container.
    pub destination: String,
    #[serde(default)]
    pub read_only: bool,
}

/// A named volume of this node, as `GET /v1/volumes` and `GET /v1/volumes/NAME` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeInfo {
    pub name: String,
    /// When it was created (first used), RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// The directory on the node that containers get mounted.
    pub mountpoint: String,
    /// Bytes its files take on disk; only `inspect` counts them (a walk of the volume).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// The containers (names) whose spec mounts it, running or not.
    #[serde(default)]
    pub used_by: Vec<String>,
}

/// Answer to a create or run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Created {
    pub id: String,
    pub name: String,
    /// Time from the request's arrival to the container's `execve`, in microseconds.
    pub create_to_exec_us: Option<u64>,
}

/// Answer to `POST /v1/containers/{id}/wait`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitResult {
    pub exit: ExitInfo,
}

/// Resource usage of a running container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerStats {
    pub id: String,
    pub name: String,
    pub memory_bytes: u64,
    pub memory_limit_bytes: Option<u64>,
    /// CPU time used since start, in nanoseconds.
    pub cpu_usage_ns: u64,
    pub pids: u64,
    pub pids_limit: Option<u64>,
}

/// `POST /v1/containers/{id}/exec`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecRequest {
    pub cmd: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub workdir: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
}

/// One line of the exec and log streams (newline-delimited JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamChunk {
    /// `stdout` or `stderr`; absent on the final record of an exec stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// The text, as written (a log line keeps its newline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// RFC 3339 time the agent or supervisor read the line (logs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// The exit code: present only on the last record of an exec stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

/// The config an image gives its containers (the `config` object of an OCI image config).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub stop_signal: Option<String>,
    #[serde(default)]
    pub exposed_ports: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `VOLUME` paths: each container gets an anonymous volume there (Docker's `Volumes`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    /// `HEALTHCHECK` (Docker's `Healthcheck`): the default check of a service whose spec has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<ImageHealthcheck>,
    /// `SHELL`: the shell of shell-form RUN, CMD and ENTRYPOINT (Docker's `Shell`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    /// `ONBUILD` instructions, run by a build that uses this image as its base (Docker's `OnBuild`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_build: Vec<String>,
}

/// An image's `HEALTHCHECK`, as Docker records it (durations in nanoseconds, 0 = the default).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ImageHealthcheck {
    /// `["NONE"]` (checks disabled), `["CMD", argv...]` or `["CMD-SHELL", command]`.
    pub test: Vec<String>,
    #[serde(default)]
    pub interval_ns: u64,
    #[serde(default)]
    pub timeout_ns: u64,
    #[serde(default)]
    pub start_period_ns: u64,
    #[serde(default)]
    pub start_interval_ns: u64,
    /// Consecutive failures that make the container unhealthy (0 = the default, 3).
    #[serde(default)]
    pub retries: u32,
}

/// An image as `image ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSummary {
    /// The image id: the digest of its config, `sha256:...`.
    pub id: String,
    /// Names pointing at it, `NAME:TAG`.
    pub references: Vec<String>,
    /// The manifest digest, `sha256:...`.
    pub manifest_digest: String,
    /// Unpacked size of all layers in bytes.
    pub size: u64,
    pub created_at: Option<String>,
    pub layers: usize,
}

/// An error body: every non-2xx answer of the agent's API carries one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// Machine-readable kind: `not_found`, `conflict`, `invalid`, `internal`.
    pub code: String,
    /// One line naming the problem and the thing it is about.
    pub message: String,
}

/// One record of the stream that `POST /v1/containers?attach=true` answers with (newline-delimited
/// JSON): first `created`, then the container's `output`, last its `exit`; or a single `error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttachEvent {
    Created(Created),
    Output(StreamChunk),
    Exit(ExitInfo),
    Error(ApiError),
}

/// What `GET /v1/info` says about an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInfo {
    pub version: String,
    pub data_dir: String,
    pub cgroup_version: String,
    pub cgroup_parent: String,
    pub bridge: String,
    pub subnet: String,
    pub containers: usize,
    pub running: usize,
    pub images: usize,
}

/// `POST /v1/build`: the first line of the request body (JSON), followed by the build context as
/// a tar stream.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildRequest {
    /// The Dockerfile's text.
    pub dockerfile: String,
    /// `NAME[:TAG]` references for the result.
    #[serde(default)]
    pub tags: Vec<String>,
    /// `--build-arg KEY=VALUE` values.
    #[serde(default)]
    pub build_args: BTreeMap<String, String>,
    /// Run every step, ignoring the cache (results are still cached).
    #[serde(default)]
    pub no_cache: bool,
    /// Network of RUN steps: `none` (default) or `bridge`.
    #[serde(default = "none_network")]
    pub network: NetworkMode,
    /// `--target STAGE`: build that stage and what it needs (default: the last stage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `--secret id=ID,src=FILE`: files for `RUN --mount=type=secret`, base64 by id. Never
    /// written to a layer, the cache or the history.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, String>,
}

/// Secrets' values never reach a log through `{:?}`: only their ids are shown.
impl std::fmt::Debug for BuildRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildRequest")
            .field(
                "dockerfile",
                &format_args!("<{} bytes>", self.dockerfile.len()),
            )
            .field("tags", &self.tags)
            .field("build_args", &self.build_args)
            .field("no_cache", &self.no_cache)
            .field("network", &self.network)
            .field("target", &self.target)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn none_network() -> NetworkMode {
    NetworkMode::None
}

/// One record of the `POST /v1/build` answer (newline-delimited JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BuildEvent {
    /// A step begins: `Step 3/9 : RUN ...`.
    Step {
        number: usize,
        total: usize,
        instruction: String,
    },
    /// The step's result came from the cache.
    Cached,
    /// Output of a RUN step.
    Output(StreamChunk),
    /// The step finished; `layer` is the diff id of the layer it made, if any.
    Done { layer: Option<String>, seconds: f64 },
    /// Something worth telling that does not fail the build.
    Warning(String),
    /// The build succeeded: always the last record.
    Result(BuildResult),
    /// The build failed: always the last record.
    Error(ApiError),
}

/// What a successful build made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildResult {
    /// The image id (`sha256:` of its config).
    pub id: String,
    pub manifest_digest: String,
    pub tags: Vec<String>,
    pub steps: usize,
    pub cached_steps: usize,
    /// Layers of the image, the base image's included.
    pub layers: usize,
    pub seconds: f64,
}

#[cfg(test)]
mod build_wire_tests {
    use super::*;

    /// The build API is JSON: pin the request line and the event records a CLI of another version
    /// must understand.
    #[test]
    fn build_json_golden_and_round_trip() {
        let req = BuildRequest {
            dockerfile: "FROM scratch\n".into(),
            tags: vec!["a:1".into()],
            build_args: BTreeMap::from([("K".into(), "v".into())]),
            no_cache: true,
            network: NetworkMode::None,
            ..Default::default()
        };
        let json = serde_json::to_string(&req).unwrap();
        assert_eq!(
            json,
            r#"{"dockerfile":"FROM scratch\n","tags":["a:1"],"build_args":{"K":"v"},"no_cache":true,"network":"none"}"#
        );
        assert_eq!(serde_json::from_str::<BuildRequest>(&json).unwrap(), req);
        // Only the Dockerfile is required; RUN steps default to no network.
        let min: BuildRequest = serde_json::from_str(r#"{"dockerfile":"FROM x"}"#).unwrap();
        assert_eq!(min.network, NetworkMode::None);
        assert!(serde_json::from_str::<BuildRequest>(r#"{"dockerfile":"","bogus":1}"#).is_err());
        // Added fields are omitted when unused (an older agent reads the line) and read back.
        let staged = BuildRequest {
            target: Some("build".into()),
            secrets: BTreeMap::from([("token".into(), "c2VjcmV0".into())]),
            ..req.clone()
        };
        let json = serde_json::to_string(&staged).unwrap();
        assert!(
            json.ends_with(r#""target":"build","secrets":{"token":"c2VjcmV0"}}"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<BuildRequest>(&json).unwrap(), staged);
        let shown = format!("{staged:?}");
        assert!(
            shown.contains("\"token\"") && !shown.contains("c2VjcmV0"),
            "{shown}"
        );

        let events = [
            (
                BuildEvent::Step {
                    number: 3,
                    total: 9,
                    instruction: "RUN true".into(),
                },
                r#"{"step":{"number":3,"total":9,"instruction":"RUN true"}}"#,
            ),
            (BuildEvent::Cached, r#""cached""#),
            (
                BuildEvent::Done {
                    layer: None,
                    seconds: 0.5,
                },
                r#"{"done":{"layer":null,"seconds":0.5}}"#,
            ),
            (
                BuildEvent::Result(BuildResult {
                    id: "sha256:1".into(),
                    manifest_digest: "sha256:2".into(),
                    tags: vec![],
                    steps: 2,
                    cached_steps: 1,
                    layers: 1,
                    seconds: 0.25,
                }),
                r#"{"result":{"id":"sha256:1","manifest_digest":"sha256:2","tags":[],"steps":2,"cached_steps":1,"layers":1,"seconds":0.25}}"#,
            ),
        ];
        for (ev, golden) in events {
            let json = serde_json::to_string(&ev).unwrap();
            assert_eq!(json, golden);
            assert_eq!(serde_json::from_str::<BuildEvent>(&json).unwrap(), ev);
        }
    }
}

/// `GET /v1/overlay` on an agent of the overlay: its end of the mesh and how each peer is doing
/// (what `hoist net doctor` judges).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverlayStatus {
    pub interface: String,
    pub public_key: String,
    pub listen_port: u16,
    /// This node's subnet and the cluster CIDR, as the controller last said.
    pub subnet: Option<String>,
    pub cluster_cidr: Option<String>,
    /// Why the overlay is not wired, if it is not (the device does not answer, no subnet...).
    pub problem: Option<String>,
    pub peers: Vec<PeerStatus>,
    /// The routing mesh: service VIPs and ingress ports in this node's nftables.
    #[serde(default)]
    pub mesh: Option<MeshReport>,
}

/// What this node's routing mesh holds and whether its last change applied.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MeshReport {
    pub services: usize,
    pub endpoints: usize,
    /// The index of the controller's endpoints it holds (what it acknowledged).
    pub endpoints_index: u64,
    /// When the last change was applied, ms since the Unix epoch.
    pub applied_ms: u64,
    /// Why the last change failed (it is retried every second); `None` when it applied.
    pub last_error: Option<String>,
}

/// One peer as this node sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerStatus {
    pub node: String,
    pub endpoint: String,
    pub subnet: String,
    /// Seconds since the last WireGuard handshake with it; `None`: never.
    pub handshake_age_s: Option<u64>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Probes through the tunnel (a DNS query to its gateway) in the recent window.
    pub probes_sent: u32,
    pub probes_lost: u32,
    /// How many of the latest probes in a row went unanswered.
    #[serde(default)]
    pub probes_lost_in_a_row: u32,
    /// Round trip of the last answered probe, milliseconds.
    pub probe_rtt_ms: Option<f64>,
}

/// After this long without a handshake a peer with traffic is not talking to us (WireGuard
/// re-handshakes every 2 minutes on a live session; keepalives keep sessions live).
pub const HANDSHAKE_STALE_S: u64 = 180;

impl OverlayStatus {
    /// What is wrong, in words, one line per problem; empty when every check passes.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(p) = &self.problem {
            out.push(format!("this node: {p}"));
        }
        if let Some(e) = self.mesh.as_ref().and_then(|m| m.last_error.as_ref()) {
            out.push(format!(
                "this node's service addresses (nftables) are not applied, retrying: {e}"
            ));
        }
        out.extend(peer_problems(&self.peers));
        out
    }
}

/// What is wrong with each peer, in words (`hoist net doctor`, `hoist node inspect`).
pub fn peer_problems(peers: &[PeerStatus]) -> Vec<String> {
    let mut out = Vec::new();
    for p in peers {
        let handshake = match p.handshake_age_s {
            None => Some("no handshake yet".to_string()),
            Some(age) if age > HANDSHAKE_STALE_S => Some(format!("no handshake for {age} s")),
            Some(_) => None,
        };
        let all_lost = p.probes_lost_in_a_row >= 3;
        match (handshake, all_lost) {
            (Some(h), _) if p.rx_bytes == 0 || all_lost => out.push(format!(
                "{}: {h}; its endpoint {} does not answer UDP (is port {} open between the hosts?)",
                p.node,
                p.endpoint,
                p.endpoint.rsplit(':').next().unwrap_or("?")
            )),
            (_, true) => out.push(format!(
                "{}: the tunnel is up but the last {} probes to its gateway went unanswered (is its agent running?)",
                p.node, p.probes_lost_in_a_row
            )),
            _ if p.probes_lost > 0 => out.push(format!(
                "{}: {} of {} probes through the tunnel lost",
                p.node, p.probes_lost, p.probes_sent
            )),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod overlay_status_tests {
    use super::*;

    fn peer(handshake: Option<u64>, rx: u64, sent: u32, lost: u32) -> PeerStatus {
        PeerStatus {
            node: "n3".into(),
            endpoint: "10.0.0.3:51820".into(),
            subnet: "10.200.2.0/24".into(),
            handshake_age_s: handshake,
            rx_bytes: rx,
            tx_bytes: 100,
            probes_sent: sent,
            probes_lost: lost,
            probes_lost_in_a_row: lost.min(3),
            probe_rtt_ms: None,
        }
    }

    fn status(peers: Vec<PeerStatus>) -> OverlayStatus {
        OverlayStatus {
            interface: "hoist-wg0".into(),
            public_key: "k".into(),
            listen_port: 51820,
            subnet: Some("10.200.0.0/24".into()),
            cluster_cidr: Some("10.200.0.0/16".into()),
            problem: None,
            peers,
            mesh: None,
        }
    }

    #[test]
    fn a_mesh_that_does_not_apply_is_a_problem() {
        let mut s = status(vec![]);
        s.mesh = Some(MeshReport {
            last_error: Some("nft: Error: No such file or directory".into()),
            ..MeshReport::default()
        });
        assert_eq!(s.problems().len(), 1);
        assert!(s.problems()[0].contains("not applied, retrying: nft: Error"));
    }

    #[test]
    fn healthy_says_nothing() {
        assert!(status(vec![peer(Some(5), 1000, 10, 0)])
            .problems()
            .is_empty());
    }

    #[test]
    fn problems_are_said_in_words() {
        let p = status(vec![peer(Some(400), 0, 10, 10)]).problems();
        assert_eq!(
            p,
            ["n3: no handshake for 400 s; its endpoint 10.0.0.3:51820 does not answer UDP (is port 51820 open between the hosts?)"]
        );
        let p = status(vec![peer(Some(3), 5000, 10, 10)]).problems();
        assert!(p[0].contains("the last 3 probes"), "{p:?}");
        let mut one = peer(Some(3), 5000, 10, 2);
        one.probes_lost_in_a_row = 0;
        let p = status(vec![one]).problems();
        assert_eq!(p, ["n3: 2 of 10 probes through the tunnel lost"]);
        let mut s = status(vec![]);
        s.problem = Some("no subnet".into());
        assert_eq!(s.problems(), ["this node: no subnet"]);
    }
}

/// `POST /v1/containers/{id}/commit` (`hoist commit`): a container's writable layer becomes a new
/// layer on top of its image, named `reference`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitRequest {
    /// `NAME[:TAG]` of the new image (tag defaults to latest).
    pub reference: String,
    /// Dockerfile instructions applied to the config, as `docker commit --change`: CMD,
    /// ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR, STOPSIGNAL.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
    /// The commit message: the comment of the new history entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The image's author (`-a "Jane <jane@example.com>"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
}

/// What a commit made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitResult {
    /// The new image's id (`sha256:` of its config).
    pub id: String,
    /// The reference it was named, normalised (`NAME:TAG`).
    pub reference: String,
    /// Whether the container had changes, i.e. whether a layer was added (`false`: only the config
    /// and history changed, as Docker does for an empty diff).
    pub layer_added: bool,
}

/// How a path differs from the container's image (`docker diff`'s letters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ChangeKind {
    /// Added: not in the image.
    A,
    /// Changed: in the image, but modified (or a directory whose contents changed).
    C,
    /// Deleted: in the image, removed in the container.
    D,
}

impl std::fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ChangeKind::A => "A",
            ChangeKind::C => "C",
            ChangeKind::D => "D",
        })
    }
}

/// One line of `hoist diff` (`GET /v1/containers/{id}/changes`): `{"kind":"A","path":"/x"}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FileChange {
    pub kind: ChangeKind,
    /// Absolute path inside the container.
    pub path: String,
}
