//! The service spec: what an operator asks Hoist to run, as JSON over HTTP or a TOML/YAML/JSON file.
//!
//! This is the API's type (JSON) and the controller's model; what is stored and sent between
//! processes are its twins in [`crate::format`]. A field added here needs a field there (and, if
//! it changes what runs, a format: see [`ServiceSpec::format`]). Quantities and durations are kept
//! as written so that applying the same file twice is the same version.

use crate::quantity::Quantity;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

mod validate;

pub use validate::{
    validate_constraint, validate_name, validate_name_in, validate_replicas, validate_stack_name,
    MAX_REPLICAS,
};

/// A service: `replicas` copies of one container, kept running by the controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// DNS label: lowercase letters, digits and `-`, 1–63 characters.
    pub name: String,
    /// Image reference, `NAME[:TAG]` or `NAME@sha256:...`.
    pub image: String,
    /// Replaces the image's ENTRYPOINT when not empty (`entrypoint` is accepted as its other
    /// name, as Docker and Compose call it).
    #[serde(default, alias = "entrypoint")]
    pub command: Vec<String>,
    /// Replaces the image's CMD when not empty.
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Desired number of running replicas (signed so that `-1` gets a precise error).
    #[serde(default = "default_replicas")]
    pub replicas: i64,
    #[serde(default)]
    pub resources: ResourceSpec,
    #[serde(default)]
    pub ports: Vec<ServicePort>,
    #[serde(default)]
    pub health_check: Option<HealthCheck>,
    #[serde(default)]
    pub restart: RestartPolicy,
    #[serde(default)]
    pub update: UpdatePolicy,
    #[serde(default)]
    pub placement: Placement,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub autoscale: Option<Autoscale>,
    /// `replicated` (run `replicas` copies) or `global` (one replica on every eligible node).
    #[serde(default)]
    pub mode: ServiceMode,
    /// The signal that asks a replica to stop (`"SIGTERM"`, `"SIGQUIT"`, `"15"`); default: the
    /// image's STOPSIGNAL, else SIGTERM. Format 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// How long a replica may take to stop before it is killed (`"30s"`); default 10s. Format 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<String>,
    /// `vip` (default): a stable virtual IP; `dnsrr`: DNS returns the replicas. Format 2.
    #[serde(default)]
    pub endpoint_mode: EndpointMode,
    /// `UID[:GID]` or a user name of the image's `/etc/passwd`; default: the image's USER.
    /// Format 2 (as is every field below).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The working directory (absolute); default: the image's WORKDIR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// The container's hostname; default: the container's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Run a minimal init as pid 1 that forwards signals and reaps orphans; default `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    /// Mount the root filesystem read-only.
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only: bool,
    /// Process limits by name (`nofile`, `nproc`, ...): `nofile = 1024` or
    /// `nofile = { soft = 1024, hard = 4096 }`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ulimits: BTreeMap<String, Ulimit>,
    /// Bind mounts, named volumes and tmpfs mounts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    /// The manifest digest (`sha256:...`) `image` resolved to when the spec was applied: every
    /// replica runs exactly that (`hoist service apply` pins it unless `--no-resolve-image`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    /// Credentials for the image's registry (`hoist service apply --with-registry-auth`). Never
    /// shown: the API writes no JSON of it, and `Debug` hides the password. An apply without it
    /// keeps the service's earlier credentials.
    #[serde(default, skip_serializing)]
    pub registry_auth: Option<crate::image::RegistryAuth>,
    /// Capabilities added to Docker's default set (`NET_ADMIN`, `CAP_SYS_PTRACE`; `ALL` is
    /// every one). Format 2 (as are the three below).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    /// Capabilities taken from the default set (`ALL` leaves only those added).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    /// `no_new_privs`: neither setuid binaries nor file capabilities can raise a process's
    /// privileges; default `true`. `false` lets them (an image that needs `sudo` or `su`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_new_privileges: Option<bool>,
    /// Run in a user namespace: the container's root is an unprivileged id range of the node
    /// (the agent's `--userns-range`), not the node's root.
    #[serde(default, skip_serializing_if = "is_false")]
    pub userns: bool,
    /// Secrets the replicas see as files (`[{ source = "db-pass", mode = "0400" }]`), on a
    /// tmpfs, replaced in place when a new version is created. Format 2 (as is `configs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<crate::files::FileRef>,
    /// Configs the replicas see as files, as `secrets` are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<crate::files::FileRef>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A process limit (`setrlimit`): soft and hard values; `-1` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ulimit {
    pub soft: i64,
    pub hard: i64,
}

impl<'de> Deserialize<'de> for Ulimit {
    /// `1024` (soft and hard alike) or `{ soft = 1024, hard = 4096 }`.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged, expecting = "a number or { soft, hard }")]
        enum Form {
            One(i64),
            Both { soft: i64, hard: i64 },
        }
        Ok(match Form::deserialize(d)? {
            Form::One(v) => Ulimit { soft: v, hard: v },
            Form::Both { soft, hard } => Ulimit { soft, hard },
        })
    }
}

/// What a mount brings into the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    /// A path of the node (`source`), as it is.
    Bind,
    /// A named volume local to the node (`source`), created on first use with the content and
    /// ownership of the image's directory at `target`, kept across the task's restarts and
    /// updates on that node.
    #[default]
    Volume,
    /// A fresh tmpfs (`size`, `mode`).
    Tmpfs,
}

/// One mount of a replica's container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    #[serde(rename = "type", default)]
    pub kind: MountType,
    /// The node's path (`bind`) or the volume's name (`volume`); none for `tmpfs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Where it appears in the container (absolute).
    pub target: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only: bool,
    /// A tmpfs's size limit (`"64Mi"`); default: half the node's memory, as the kernel does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Quantity>,
    /// A tmpfs's permissions in octal (`"1777"`, the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

/// How many replicas a service runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceMode {
    /// `replicas` copies, spread over the eligible nodes.
    #[default]
    Replicated,
    /// One replica on every eligible node; `replicas` is ignored.
    Global,
}

fn default_replicas() -> i64 {
    1
}

/// What each replica may use and what it reserves on its node. `cpu` and `memory` at this level
/// mean both a limit and a reservation; `limits` and `reservations` set them apart and win over
/// them. Absent means unlimited and unreserved.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceSpec {
    /// CPUs: `2`, `0.5`, `"500m"`.
    #[serde(default)]
    pub cpu: Option<Quantity>,
    /// Bytes: `"512Mi"`, `"1G"`, `268435456`.
    #[serde(default)]
    pub memory: Option<Quantity>,
    /// What caps the container (cgroup limits). Format 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ResourceLimits>,
    /// What the scheduler counts against the node's capacity. Format 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservations: Option<ResourceReservations>,
}

/// `[resources.limits]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Quantity>,
    /// The most processes the container may have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<i64>,
}

/// `[resources.reservations]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceReservations {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Quantity>,
}

impl ResourceSpec {
    /// The CPU limit: `limits.cpu`, else `cpu`.
    pub fn limit_cpu(&self) -> Option<&Quantity> {
        self.limits
            .as_ref()
            .and_then(|l| l.cpu.as_ref())
            .or(self.cpu.as_ref())
    }
    /// The memory limit: `limits.memory`, else `memory`.
    pub fn limit_memory(&self) -> Option<&Quantity> {
        self.limits
            .as_ref()
            .and_then(|l| l.memory.as_ref())
            .or(self.memory.as_ref())
    }
    /// The CPU the scheduler reserves: `reservations.cpu`, else `cpu`.
    pub fn reserved_cpu(&self) -> Option<&Quantity> {
        self.reservations
            .as_ref()
            .and_then(|r| r.cpu.as_ref())
            .or(self.cpu.as_ref())
    }
    /// The memory the scheduler reserves: `reservations.memory`, else `memory`.
    pub fn reserved_memory(&self) -> Option<&Quantity> {
        self.reservations
            .as_ref()
            .and_then(|r| r.memory.as_ref())
            .or(self.memory.as_ref())
    }
}

/// Transport protocol of a service port.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum PortProtocol {
    #[default]
    Tcp,
    Udp,
}

/// A port the replicas listen on, optionally published on every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicePort {
    /// The container's port, 1–65535.
    pub target: i64,
    /// The node port that forwards to it, 1–65535.
    #[serde(default)]
    pub published: Option<i64>,
    #[serde(default)]
    pub protocol: PortProtocol,
    /// `ingress` (the default): the published port answers on every node and is balanced over
    /// every replica; `host`: only on the nodes running a replica, to that replica. Format 2.
    #[serde(default)]
    pub mode: PortMode,
}

/// Where a published port answers.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum PortMode {
    /// On every node (the routing mesh), balanced over every ready replica, local ones first;
    /// the replica sees the client's address.
    #[default]
    Ingress,
    /// Only on nodes running a replica, to that node's replica.
    Host,
}

/// How clients find a service's replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointMode {
    /// One stable virtual IP, balanced over the ready replicas; `SERVICE` resolves to it.
    #[default]
    Vip,
    /// No virtual IP: `SERVICE` resolves to the ready replicas' addresses (DNS round robin).
    Dnsrr,
}

/// How a replica's health is checked. Exactly one of `command`, `http_path` or `tcp_port`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    /// A command run inside the container; exit 0 is healthy.
    #[serde(default)]
    pub command: Vec<String>,
    /// An HTTP GET to this path on `port` must answer 2xx or 3xx.
    #[serde(default)]
    pub http_path: Option<String>,
    /// The port for `http_path`, or a TCP connect check on its own.
    #[serde(default)]
    pub tcp_port: Option<i64>,
    #[serde(default = "default_interval")]
    pub interval: String,
    #[serde(default = "default_timeout")]
    pub timeout: String,
    /// Consecutive failures before the replica is unhealthy.
    #[serde(default = "default_retries")]
    pub retries: i64,
    /// Failures during this time after start do not count.
    #[serde(default = "zero_duration")]
    pub start_period: String,
}

fn default_interval() -> String {
    "10s".into()
}
fn default_timeout() -> String {
    "5s".into()
}
fn default_retries() -> i64 {
    3
}
fn zero_duration() -> String {
    "0s".into()
}

/// When a replica that stopped is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartCondition {
    #[default]
    Any,
    OnFailure,
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartPolicy {
    #[serde(default)]
    pub condition: RestartCondition,
    /// Restarts within `window` before giving up; 0 is unlimited.
    #[serde(default)]
    pub max_attempts: i64,
    /// First back-off delay; it doubles up to 5 minutes.
    #[serde(default = "default_restart_delay")]
    pub delay: String,
    #[serde(default = "default_window")]
    pub window: String,
}

fn default_restart_delay() -> String {
    "1s".into()
}
fn default_window() -> String {
    "5m".into()
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            condition: RestartCondition::Any,
            max_attempts: 0,
            delay: default_restart_delay(),
            window: default_window(),
        }
    }
}

/// What a rolling update does when a new replica fails its health gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureAction {
    #[default]
    Pause,
    Rollback,
    Continue,
}

/// Whether an updated replica starts before or after the old one stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateOrder {
    #[default]
    StopFirst,
    StartFirst,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdatePolicy {
    /// Replicas replaced at once, ≥ 1.
    #[serde(default = "default_parallelism")]
    pub parallelism: i64,
    /// Pause between batches.
    #[serde(default = "zero_duration")]
    pub delay: String,
    #[serde(default)]
    pub failure_action: FailureAction,
    /// How long a new replica must stay healthy before the next batch.
    #[serde(default = "default_monitor")]
    pub monitor: String,
    #[serde(default)]
    pub order: UpdateOrder,
    /// The share of an update's new replicas that may fail before `failure_action` is taken,
    /// 0 to 1 (`0.2`); absent means 0: the first failure acts.
    #[serde(default)]
    pub max_failure_ratio: Option<Quantity>,
    /// How long a replica taken out of the service's addresses keeps running before it is asked
    /// to stop, once every node has stopped sending it new connections (`"1s"`, the default;
    /// `"0s"` allowed). Format 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain: Option<String>,
}

fn default_parallelism() -> i64 {
    1
}
fn default_monitor() -> String {
    "5s".into()
}

impl Default for UpdatePolicy {
    fn default() -> Self {
        UpdatePolicy {
            parallelism: 1,
            delay: zero_duration(),
            failure_action: FailureAction::Pause,
            monitor: default_monitor(),
            order: UpdateOrder::StopFirst,
            max_failure_ratio: None,
            drain: None,
        }
    }
}

/// Where replicas may run.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    /// `node.id==X`, `node.hostname!=X`, `node.labels.KEY==VALUE`.
    #[serde(default)]
    pub constraints: Vec<String>,
    /// At most this many replicas on one node; 0 is no limit.
    #[serde(default)]
    pub max_per_node: i64,
    /// Spread replicas evenly over the values of this node label (`"zone"`), then over nodes.
    #[serde(default)]
    pub spread: Option<String>,
}

/// How the controller scales the service by itself (`[autoscale]`): the bounds every decision
/// keeps to, and the policy of the hooks (pushed: Alertmanager, `scale-hook`) and of the query
/// (pulled from Prometheus). Everything but `min` and `max` is format 2.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Autoscale {
    pub min: i64,
    pub max: i64,
    /// Replicas added or removed by a pushed `up` or `down` (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<i64>,
    /// Proportional scaling of pushed values: a hook carrying a value (`{"value": V}`, or an
    /// alert's `hoist_value` annotation) scales to `ceil(replicas × V / target)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Number>,
    /// No scale-up sooner than this after the last one (a duration, default `"30s"`; `"0s"` allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown_up: Option<String>,
    /// A scale-down goes only as low as the highest recommendation of this window (default
    /// `"300s"`), as Kubernetes' HPA does: a load that dips for a moment scales nothing down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stabilization_down: Option<String>,
    /// Pull mode: a PromQL query answering one number, the load per replica, evaluated by the
    /// leader against `--prometheus` every `interval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The per-replica value the query is scaled toward: `ceil(replicas × value / target_value)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_value: Option<Number>,
    /// How often the query runs (default `"15s"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
}

impl Autoscale {
    /// Whether anything beyond format 1's bounds is set.
    pub fn uses_policy(&self) -> bool {
        self.step.is_some()
            || self.target.is_some()
            || self.cooldown_up.is_some()
            || self.stabilization_down.is_some()
            || self.query.is_some()
            || self.target_value.is_some()
            || self.interval.is_some()
    }

    /// The bounds alone (what a format-1 reader knows).
    pub fn bounds_only(&self) -> Autoscale {
        Autoscale {
            min: self.min,
            max: self.max,
            ..Autoscale::default()
        }
    }

    pub fn step_or_default(&self) -> i64 {
        self.step.unwrap_or(1)
    }

    pub fn cooldown_up_ms(&self) -> u64 {
        duration_or(&self.cooldown_up, 30_000)
    }

    pub fn stabilization_down_ms(&self) -> u64 {
        duration_or(&self.stabilization_down, 300_000)
    }

    pub fn interval_ms(&self) -> u64 {
        duration_or(&self.interval, 15_000)
    }
}

/// A duration field's milliseconds; an invalid one (refused at apply) is the default.
fn duration_or(field: &Option<String>, default_ms: u64) -> u64 {
    field
        .as_deref()
        .and_then(crate::quantity::parse_duration_ms)
        .unwrap_or(default_ms)
}

/// A number of a spec (`target_value = 0.5`, `target = 100`): an `f64` that compares by its
/// bits, so that specs stay `Eq` (a spec's NaN is refused at apply).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Number(pub f64);

impl PartialEq for Number {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Number {}

/// One problem with a spec: the dotted path of the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl ServiceSpec {
    /// A spec with defaults for everything but name and image.
    pub fn new(name: &str, image: &str) -> Self {
        ServiceSpec {
            name: name.into(),
            image: image.into(),
            command: vec![],
            args: vec![],
            env: BTreeMap::new(),
            replicas: 1,
            resources: ResourceSpec::default(),
            ports: vec![],
            health_check: None,
            restart: RestartPolicy::default(),
            update: UpdatePolicy::default(),
            placement: Placement::default(),
            labels: BTreeMap::new(),
            autoscale: None,
            mode: ServiceMode::Replicated,
            stop_signal: None,
            stop_grace_period: None,
            endpoint_mode: EndpointMode::Vip,
            user: None,
            workdir: None,
            hostname: None,
            init: None,
            read_only: false,
            ulimits: BTreeMap::new(),
            mounts: vec![],
            image_digest: None,
            registry_auth: None,
            cap_add: vec![],
            cap_drop: vec![],
            no_new_privileges: None,
            userns: false,
            secrets: vec![],
            configs: vec![],
        }
    }

    /// The secrets and configs the spec references, as `(kind, name)`.
    pub fn file_sources(&self) -> impl Iterator<Item = (crate::files::FileKind, &str)> {
        use crate::files::FileKind;
        let secrets = self
            .secrets
            .iter()
            .map(|r| (FileKind::Secret, r.source.as_str()));
        let configs = self
            .configs
            .iter()
            .map(|r| (FileKind::Config, r.source.as_str()));
        secrets.chain(configs)
    }

    /// Whether the spec uses a field of container hardening, secrets or configs (format 2).
    fn uses_hardening(&self) -> bool {
        !self.cap_add.is_empty()
            || !self.cap_drop.is_empty()
            || self.no_new_privileges.is_some()
            || self.userns
            || !self.secrets.is_empty()
            || !self.configs.is_empty()
    }

    /// Whether the spec uses a field of format 2's complete spec.
    fn uses_complete_spec(&self) -> bool {
        self.user.is_some()
            || self.workdir.is_some()
            || self.hostname.is_some()
            || self.init.is_some()
            || self.read_only
            || !self.ulimits.is_empty()
            || !self.mounts.is_empty()
            || self.image_digest.is_some()
            || self.registry_auth.is_some()
            || self.resources.limits.is_some()
            || self.resources.reservations.is_some()
            || self.autoscale.as_ref().is_some_and(Autoscale::uses_policy)
    }

    /// The spec without what a reader of `format` cannot read (for an agent of an older
    /// version running a task whose spec says more; only how it runs differs).
    pub fn for_format(&self, format: u32) -> ServiceSpec {
        let mut out = self.clone();
        if format < 2 {
            let complete = ServiceSpec::new(&self.name, &self.image);
            out.user = None;
            out.workdir = None;
            out.hostname = None;
            out.init = None;
            out.read_only = false;
            out.ulimits = complete.ulimits;
            out.mounts = complete.mounts;
            out.image_digest = None;
            out.registry_auth = None;
            out.cap_add = vec![];
            out.cap_drop = vec![];
            out.no_new_privileges = None;
            out.userns = false;
            out.secrets = vec![];
            out.configs = vec![];
            out.resources.limits = None;
            out.resources.reservations = None;
            out.endpoint_mode = EndpointMode::Vip;
            out.update.drain = None;
            out.autoscale = out.autoscale.as_ref().map(Autoscale::bounds_only);
            for p in &mut out.ports {
                p.mode = PortMode::Ingress;
            }
        }
        if format < 1 {
            out.stop_signal = None;
            out.stop_grace_period = None;
        }
        out
    }

    /// The image reference a node pulls and runs: `image` pinned to `image_digest` when there is
    /// one (`NAME:TAG@sha256:...`, which names exactly those bits).
    pub fn pinned_image(&self) -> String {
        match &self.image_digest {
            Some(d) if !self.image.contains('@') => format!("{}@{d}", self.image),
            _ => self.image.clone(),
        }
    }

    /// The oldest format that can carry this spec: an agent or member reading an older one would
    /// run something else than what was asked.
    pub fn format(&self) -> u32 {
        if self.endpoint_mode != EndpointMode::Vip
            || self.update.drain.is_some()
            || self.uses_complete_spec()
            || self.uses_hardening()
            || self.ports.iter().any(|p| p.mode != PortMode::Ingress)
        {
            2
        } else if self.stop_signal.is_some() || self.stop_grace_period.is_some() {
            1
        } else {
            0
        }
    }

    /// `update.drain` in milliseconds (default 1 s); an invalid value (refused at apply) is the
    /// default.
    pub fn drain_ms(&self) -> u64 {
        self.update
            .drain
            .as_deref()
            .and_then(crate::quantity::parse_duration_ms)
            .unwrap_or(1_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(spec: &ServiceSpec) -> Vec<String> {
        spec.validate().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn minimal_spec_is_valid_and_defaults_apply() {
        let s: ServiceSpec = serde_json::from_str(r#"{"name":"web","image":"busybox"}"#).unwrap();
        assert_eq!(s, ServiceSpec::new("web", "busybox"));
        assert!(s.validate().is_empty());
    }

    #[test]
    fn precise_field_errors() {
        let mut s = ServiceSpec::new("web", "busybox");
        s.replicas = -1;
        s.resources.memory = Some("12x".into());
        s.resources.cpu = Some("lots".into());
        s.ports.push(ServicePort {
            target: 70000,
            published: Some(80),
            protocol: PortProtocol::Tcp,
            mode: Default::default(),
        });
        s.ports.push(ServicePort {
            target: 81,
            published: Some(80),
            protocol: PortProtocol::Tcp,
            mode: Default::default(),
        });
        s.update.parallelism = 0;
        s.update.max_failure_ratio = Some("1.5".into());
        s.placement.constraints.push("zone=a".into());
        assert_eq!(
            errors_of(&s),
            vec![
                "replicas: must be ≥ 0",
                "resources.cpu: \"lots\" is not a CPU amount",
                "resources.memory: \"12x\" is not a size (like 512k, 64m, 1.5g, 512Mi)",
                "ports[0].target: 70000 is not in 1..=65535",
                "ports[1].published: 80 is published twice",
                "update.parallelism: must be ≥ 1",
                "update.max_failure_ratio: \"1.5\" is not a ratio between 0 and 1",
                "placement.constraints[0]: \"zone=a\" needs == or !=",
            ]
        );
    }

    #[test]
    fn names_and_health_checks() {
        let mut s = ServiceSpec::new("Web_1", "");
        s.health_check = Some(HealthCheck {
            command: vec![],
            http_path: Some("healthz".into()),
            tcp_port: None,
            interval: "10".into(),
            timeout: "1s".into(),
            retries: 0,
            start_period: "0s".into(),
        });
        s.autoscale = Some(Autoscale {
            min: 2,
            max: 1,
            ..Autoscale::default()
        });
        let e = errors_of(&s);
        assert!(
            e[0].starts_with("name: \"Web_1\" is not a service name"),
            "{e:?}"
        );
        assert_eq!(e[1], "image: must not be empty");
        assert!(e.contains(&"health_check.http_path: \"healthz\" must start with '/'".to_string()));
        assert!(e.contains(&"health_check.tcp_port: is needed with http_path".to_string()));
        assert!(e
            .iter()
            .any(|m| m.starts_with("health_check.interval: \"10\" is not a duration")));
        assert!(e.contains(&"health_check.retries: must be ≥ 1".to_string()));
        assert!(e.contains(&"autoscale.max: must be ≥ autoscale.min (2)".to_string()));
    }

    #[test]
    fn stack_service_names_hold_an_underscore_from_format_2() {
        assert!(validate_name_in("shop_web", 2).is_ok());
        assert!(validate_name_in("shop_web-1", 2).is_ok());
        assert!(
            validate_name_in("shop_web", 1).is_err(),
            "a format-1 member refuses it"
        );
        for bad in ["_web", "shop_", "shop__web", "Shop_web"] {
            assert!(validate_name_in(bad, 2).is_err(), "{bad}");
        }
        assert!(validate_stack_name("shop").is_ok());
        assert!(validate_stack_name("my_shop").is_err());
    }

    #[test]
    fn the_complete_spec_is_checked_with_the_agents_rules() {
        let mut s: ServiceSpec = toml::from_str(
            r#"
            name = "db"
            image = "postgres:16"
            user = "999:999"
            workdir = "/var/lib/postgresql"
            ulimits = { nofile = { soft = 1024, hard = 4096 }, nproc = 512 }
            [resources.limits]
            memory = "4Mi"
            pids = 0
            [resources.reservations]
            memory = "1Gi"
            [[mounts]]
            type = "volume"
            source = "pg-data"
            target = "/var/lib/postgresql/data"
            [[mounts]]
            type = "tmpfs"
            target = "/run"
            size = "64Mi"
            mode = "1777"
            [[mounts]]
            type = "bind"
            target = "/certs"
            "#,
        )
        .unwrap();
        assert_eq!(
            s.ulimits["nproc"],
            Ulimit {
                soft: 512,
                hard: 512
            }
        );
        assert_eq!(s.format(), 2);
        assert_eq!(
            errors_of(&s),
            vec![
                "resources.limits.memory: 4MiB is below the minimum of 6MiB",
                "resources.reservations.memory: \"1Gi\" is more than the limit \"4Mi\"",
                "resources.limits.pids: 0 must be at least 1",
                "mounts[2].source: a bind mount needs a source",
            ]
        );
        // Before format 2 the cluster accepted a memory limit agents then refused; no longer.
        s = ServiceSpec::new("web", "busybox");
        s.resources.memory = Some("4Mi".into());
        assert!(s.validate_in(1).is_empty());
        assert_eq!(
            errors_of(&s),
            ["resources.memory: 4MiB is below the minimum of 6MiB"]
        );
        // `entrypoint` is the other name of `command`.
        let s: ServiceSpec =
            serde_json::from_str(r#"{"name":"a","image":"b","entrypoint":["/init"]}"#).unwrap();
        assert_eq!(s.command, ["/init"]);
    }

    #[test]
    fn registry_credentials_never_show() {
        let mut s = ServiceSpec::new("web", "registry.example/web:1");
        s.registry_auth = Some(crate::image::RegistryAuth {
            username: "u".into(),
            password: "hunter2".into(),
        });
        assert!(!serde_json::to_string(&s).unwrap().contains("hunter2"));
        assert!(!format!("{s:?}").contains("hunter2"));
        let back: ServiceSpec = serde_json::from_str(
            r#"{"name":"web","image":"i","registry_auth":{"username":"u","password":"p"}}"#,
        )
        .unwrap();
        assert_eq!(back.registry_auth.unwrap().password, "p");
        assert_eq!(
            ServiceSpec {
                image_digest: Some("sha256:ab".into()),
                ..ServiceSpec::new("web", "reg/web:1")
            }
            .pinned_image(),
            "reg/web:1@sha256:ab"
        );
    }

    #[test]
    fn hardening_fields_are_format_2_and_name_real_capabilities() {
        let s: ServiceSpec = toml::from_str(
            r#"
            name = "edge"
            image = "nginx"
            cap_add = ["NET_ADMIN", "cap_sys_ptrace"]
            cap_drop = ["ALL"]
            no_new_privileges = false
            userns = true
            "#,
        )
        .unwrap();
        assert!(s.validate().is_empty(), "{:?}", s.validate());
        assert_eq!(s.format(), 2);
        for only in [
            ServiceSpec {
                userns: true,
                ..ServiceSpec::new("a", "b")
            },
            ServiceSpec {
                no_new_privileges: Some(true),
                ..ServiceSpec::new("a", "b")
            },
            ServiceSpec {
                cap_drop: vec!["NET_RAW".into()],
                ..ServiceSpec::new("a", "b")
            },
        ] {
            assert_eq!(only.format(), 2, "{only:?}");
            let older = only.for_format(1);
            assert_eq!(older, ServiceSpec::new("a", "b"));
        }
        // Defaults are left out of the JSON, so a spec without them reads as before.
        let json = serde_json::to_value(ServiceSpec::new("a", "b")).unwrap();
        for key in ["cap_add", "cap_drop", "no_new_privileges", "userns"] {
            assert!(json.get(key).is_none(), "{key}");
        }
        let bad = ServiceSpec {
            cap_add: vec!["NET_ADMIN".into(), "NET_ADMN".into()],
            cap_drop: vec!["".into()],
            ..ServiceSpec::new("a", "b")
        };
        let e = errors_of(&bad);
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].starts_with("cap_add[1]: unknown capability \"NET_ADMN\""));
        assert!(e[1].starts_with("cap_drop[0]: unknown capability \"\""));
    }

    #[test]
    fn unknown_fields_and_bad_enums_are_rejected() {
        let e = serde_json::from_str::<ServiceSpec>(r#"{"name":"a","image":"b","replica":3}"#)
            .unwrap_err();
        assert!(e.to_string().contains("unknown field `replica`"), "{e}");
        let e = serde_json::from_str::<ServiceSpec>(
            r#"{"name":"a","image":"b","restart":{"condition":"sometimes"}}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown variant `sometimes`"), "{e}");
    }

    #[test]
    fn a_format_0_cluster_validates_sizes_as_0_1_0_did() {
        let mut s = ServiceSpec::new("web", "busybox");
        s.resources.memory = Some("1M".into());
        // 1M was 10^6 bytes, under the 1Mi minimum; it is 1 MiB now.
        assert_eq!(
            s.validate_in(0)[0].to_string(),
            "resources.memory: must be ≥ 1Mi"
        );
        assert!(s.validate_in(1).is_empty());
        s.resources.memory = Some("64mib".into());
        assert!(s.validate_in(0).is_empty() && s.validate_in(1).is_empty());
    }
}
