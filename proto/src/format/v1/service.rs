//! Format 1's service spec, services and their versions. Tags are forever: a field is added with
//! the next free tag, never renumbered, and a removed field's tag is never used again.

use std::collections::BTreeMap;

#[derive(Clone, PartialEq, prost::Message)]
pub struct ServiceSpec {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub image: String,
    #[prost(string, repeated, tag = "3")]
    pub command: Vec<String>,
    #[prost(string, repeated, tag = "4")]
    pub args: Vec<String>,
    #[prost(btree_map = "string, string", tag = "5")]
    pub env: BTreeMap<String, String>,
    #[prost(sint64, tag = "6")]
    pub replicas: i64,
    #[prost(message, optional, tag = "7")]
    pub resources: Option<ResourceSpec>,
    #[prost(message, repeated, tag = "8")]
    pub ports: Vec<ServicePort>,
    #[prost(message, optional, tag = "9")]
    pub health_check: Option<HealthCheck>,
    #[prost(message, optional, tag = "10")]
    pub restart: Option<RestartPolicy>,
    #[prost(message, optional, tag = "11")]
    pub update: Option<UpdatePolicy>,
    #[prost(message, optional, tag = "12")]
    pub placement: Option<Placement>,
    #[prost(btree_map = "string, string", tag = "13")]
    pub labels: BTreeMap<String, String>,
    #[prost(message, optional, tag = "14")]
    pub autoscale: Option<Autoscale>,
    /// `ServiceMode`: 0 replicated, 1 global.
    #[prost(int32, tag = "15")]
    pub mode: i32,
    #[prost(string, optional, tag = "16")]
    pub stop_signal: Option<String>,
    #[prost(string, optional, tag = "17")]
    pub stop_grace_period: Option<String>,
    /// `EndpointMode`: 0 vip, 1 dnsrr. Format 2.
    #[prost(int32, tag = "18")]
    pub endpoint_mode: i32,
    /// Format 2, as every field below.
    #[prost(string, optional, tag = "19")]
    pub user: Option<String>,
    #[prost(string, optional, tag = "20")]
    pub workdir: Option<String>,
    #[prost(string, optional, tag = "21")]
    pub hostname: Option<String>,
    #[prost(bool, optional, tag = "22")]
    pub init: Option<bool>,
    #[prost(bool, tag = "23")]
    pub read_only: bool,
    #[prost(btree_map = "string, message", tag = "24")]
    pub ulimits: BTreeMap<String, Ulimit>,
    #[prost(message, repeated, tag = "25")]
    pub mounts: Vec<Mount>,
    #[prost(string, optional, tag = "26")]
    pub image_digest: Option<String>,
    #[prost(message, optional, tag = "27")]
    pub registry_auth: Option<RegistryAuth>,
    /// Container hardening, format 2.
    #[prost(string, repeated, tag = "28")]
    pub cap_add: Vec<String>,
    #[prost(string, repeated, tag = "29")]
    pub cap_drop: Vec<String>,
    #[prost(bool, optional, tag = "30")]
    pub no_new_privileges: Option<bool>,
    #[prost(bool, tag = "31")]
    pub userns: bool,
    /// Secrets and configs, format 2.
    #[prost(message, repeated, tag = "32")]
    pub secrets: Vec<FileRef>,
    #[prost(message, repeated, tag = "33")]
    pub configs: Vec<FileRef>,
}

/// A reference to a secret or config. Format 2.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FileRef {
    #[prost(string, tag = "1")]
    pub source: String,
    #[prost(string, optional, tag = "2")]
    pub target: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub mode: Option<String>,
    #[prost(uint32, optional, tag = "4")]
    pub uid: Option<u32>,
    #[prost(uint32, optional, tag = "5")]
    pub gid: Option<u32>,
    #[prost(string, optional, tag = "6")]
    pub on_update: Option<String>,
}

/// Format 2.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Ulimit {
    #[prost(sint64, tag = "1")]
    pub soft: i64,
    #[prost(sint64, tag = "2")]
    pub hard: i64,
}

/// Format 2.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Mount {
    /// `MountType`: 0 bind, 1 volume, 2 tmpfs.
    #[prost(int32, tag = "1")]
    pub kind: i32,
    #[prost(string, optional, tag = "2")]
    pub source: Option<String>,
    #[prost(string, tag = "3")]
    pub target: String,
    #[prost(bool, tag = "4")]
    pub read_only: bool,
    #[prost(string, optional, tag = "5")]
    pub size: Option<String>,
    #[prost(string, optional, tag = "6")]
    pub mode: Option<String>,
}

/// Format 2.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RegistryAuth {
    #[prost(string, tag = "1")]
    pub username: String,
    #[prost(string, tag = "2")]
    pub password: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ResourceSpec {
    #[prost(string, optional, tag = "1")]
    pub cpu: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub memory: Option<String>,
    /// Format 2.
    #[prost(message, optional, tag = "3")]
    pub limits: Option<ResourceLimits>,
    /// Format 2.
    #[prost(message, optional, tag = "4")]
    pub reservations: Option<ResourceReservations>,
}

/// Format 2.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ResourceLimits {
    #[prost(string, optional, tag = "1")]
    pub cpu: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub memory: Option<String>,
    #[prost(sint64, optional, tag = "3")]
    pub pids: Option<i64>,
}

/// Format 2.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ResourceReservations {
    #[prost(string, optional, tag = "1")]
    pub cpu: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub memory: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ServicePort {
    #[prost(sint64, tag = "1")]
    pub target: i64,
    #[prost(sint64, optional, tag = "2")]
    pub published: Option<i64>,
    /// `PortProtocol`: 0 tcp, 1 udp.
    #[prost(int32, tag = "3")]
    pub protocol: i32,
    /// `PortMode`: 0 ingress, 1 host. Format 2.
    #[prost(int32, tag = "4")]
    pub mode: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheck {
    #[prost(string, repeated, tag = "1")]
    pub command: Vec<String>,
    #[prost(string, optional, tag = "2")]
    pub http_path: Option<String>,
    #[prost(sint64, optional, tag = "3")]
    pub tcp_port: Option<i64>,
    #[prost(string, tag = "4")]
    pub interval: String,
    #[prost(string, tag = "5")]
    pub timeout: String,
    #[prost(sint64, tag = "6")]
    pub retries: i64,
    #[prost(string, tag = "7")]
    pub start_period: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RestartPolicy {
    /// `RestartCondition`: 0 any, 1 on-failure, 2 none.
    #[prost(int32, tag = "1")]
    pub condition: i32,
    #[prost(sint64, tag = "2")]
    pub max_attempts: i64,
    #[prost(string, tag = "3")]
    pub delay: String,
    #[prost(string, tag = "4")]
    pub window: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct UpdatePolicy {
    #[prost(sint64, tag = "1")]
    pub parallelism: i64,
    #[prost(string, tag = "2")]
    pub delay: String,
    /// `FailureAction`: 0 pause, 1 rollback, 2 continue.
    #[prost(int32, tag = "3")]
    pub failure_action: i32,
    #[prost(string, tag = "4")]
    pub monitor: String,
    /// `UpdateOrder`: 0 stop-first, 1 start-first.
    #[prost(int32, tag = "5")]
    pub order: i32,
    #[prost(string, optional, tag = "6")]
    pub max_failure_ratio: Option<String>,
    /// Format 2.
    #[prost(string, optional, tag = "7")]
    pub drain: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Placement {
    #[prost(string, repeated, tag = "1")]
    pub constraints: Vec<String>,
    #[prost(sint64, tag = "2")]
    pub max_per_node: i64,
    #[prost(string, optional, tag = "3")]
    pub spread: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Autoscale {
    #[prost(sint64, tag = "1")]
    pub min: i64,
    #[prost(sint64, tag = "2")]
    pub max: i64,
    /// Format 2, as every field below.
    #[prost(sint64, optional, tag = "3")]
    pub step: Option<i64>,
    #[prost(double, optional, tag = "4")]
    pub target: Option<f64>,
    #[prost(string, optional, tag = "5")]
    pub cooldown_up: Option<String>,
    #[prost(string, optional, tag = "6")]
    pub stabilization_down: Option<String>,
    #[prost(string, optional, tag = "7")]
    pub query: Option<String>,
    #[prost(double, optional, tag = "8")]
    pub target_value: Option<f64>,
    #[prost(string, optional, tag = "9")]
    pub interval: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Service {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(uint64, tag = "2")]
    pub version: u64,
    #[prost(message, optional, tag = "3")]
    pub spec: Option<ServiceSpec>,
    #[prost(uint64, tag = "4")]
    pub created_ms: u64,
    #[prost(uint64, tag = "5")]
    pub updated_ms: u64,
    /// Format 2.
    #[prost(string, optional, tag = "6")]
    pub vip: Option<String>,
}

/// Why a version was made: `kind` 0 apply, 1 scale, 2 rollback (from version `from`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct VersionOrigin {
    #[prost(int32, tag = "1")]
    pub kind: i32,
    #[prost(uint64, tag = "2")]
    pub from: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ServiceVersion {
    #[prost(uint64, tag = "1")]
    pub version: u64,
    #[prost(message, optional, tag = "2")]
    pub origin: Option<VersionOrigin>,
    #[prost(uint64, tag = "3")]
    pub created_ms: u64,
    #[prost(message, optional, tag = "4")]
    pub spec: Option<ServiceSpec>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ServiceChange {
    #[prost(message, optional, tag = "1")]
    pub service: Option<Service>,
    #[prost(bool, tag = "2")]
    pub changed: bool,
}
