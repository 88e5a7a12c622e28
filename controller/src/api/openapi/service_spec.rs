//! The `ServiceSpec` schema: every key `hoist_proto::service::ServiceSpec` reads, with the limits
//! its validation keeps taken from the same constants (`MAX_REPLICAS`, the ulimit names, port
//! and label bounds), so that the document cannot drift from what the controller accepts.
//!
//! What JSON Schema cannot say is in the descriptions and answered 422 naming the field: the
//! grammar of durations, CPU amounts, sizes, constraints and signals, and the rules between
//! fields (a health check sets exactly one of `command`, `http_path` or `tcp_port`; `replicas`
//! within `autoscale`; a published port used once; mount `source` by `type`).

use hoist_proto::rules;
use hoist_proto::service::MAX_REPLICAS;
use serde_json::{json, Value};

/// A field of a spec that reads `null` as absent.
fn nullable(mut schema: Value) -> Value {
    let ty = match schema.get("type") {
        Some(Value::String(t)) => json!([t, "null"]),
        Some(Value::Array(ts)) => {
            let mut ts = ts.clone();
            ts.push(json!("null"));
            Value::Array(ts)
        }
        _ => return json!({"anyOf": [schema, {"type": "null"}]}),
    };
    schema["type"] = ty;
    schema
}

/// A duration: `<number><unit>` parts (`ms`, `s`, `m`, `h`), or `0`.
pub fn duration(description: &str) -> Value {
    json!({"type": "string", "examples": ["10s", "500ms", "1m30s", "0"],
        "description": format!("{description}; a duration: one or more <number><unit> parts with units ms, s, m, h (\"1m30s\"), or \"0\"")})
}

/// A quantity: a JSON number or a string.
fn quantity(examples: Value, description: &str) -> Value {
    json!({"type": ["string", "number"], "examples": examples, "description": description})
}

fn cpu(description: &str) -> Value {
    quantity(
        json!(["0.5", "500m", 2]),
        &format!("{description}; CPUs as a number (`0.5`) or millicores (`\"500m\"`), above 0"),
    )
}

fn size(description: &str) -> Value {
    quantity(
        json!(["512Mi", "64m", "1g"]),
        &format!(
            "{description}; bytes, or a number with k, m, g, t (any case, optional b or ib) or Ki..Ti, all binary as in Docker"
        ),
    )
}

fn replicas(description: &str) -> Value {
    json!({"type": "integer", "minimum": 0, "maximum": MAX_REPLICAS, "description": description})
}

fn port() -> Value {
    json!({"type": "integer", "minimum": 1, "maximum": 65535})
}

/// A service's name.
/// `secrets` or `configs`: references to existing ones.
fn file_refs(kind: &str, default_target: &str) -> Value {
    json!({"type": "array", "items": {"type": "object", "additionalProperties": false, "required": ["source"], "properties": {
        "source": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$", "maxLength": 64, "description": format!("the {kind}'s name; it must exist at apply")},
        "target": {"type": ["string", "null"], "pattern": "^/", "description": format!("the file's absolute path in the container (default {default_target}); one per spec")},
        "mode": {"type": ["string", "null"], "pattern": "^(0o)?[0-7]{1,4}$", "description": "permissions in octal, at most 0777 (default 0444)"},
        "uid": {"type": ["integer", "null"], "minimum": 0, "maximum": u32::MAX, "description": "owner (default 0)"},
        "gid": {"type": ["integer", "null"], "minimum": 0, "maximum": u32::MAX, "description": "group (default 0)"},
        "on_update": {"type": ["string", "null"], "examples": ["none", "signal:SIGHUP", "restart"], "description": "when a new version is created: replace the file in running replicas (none, the default), and signal them (signal:SIGNAL), or replace the replicas through the update policy (restart)"}}}})
}

pub fn name() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 63,
        "pattern": "^[a-z0-9]([a-z0-9-]*[a-z0-9])?(_[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$",
        "description": "a DNS label; a stack's services are STACK_SERVICE (labels joined by `_`, cluster format 2)"})
}

/// A stack's name: a DNS label of at most 40 characters (its services are STACK_SERVICE).
pub fn stack_name() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 40, "pattern": "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"})
}

/// `ServiceSpec`, as a request body and as answered (answers leave out unset optional keys, and
/// `registry_auth` always: it is never shown).
pub fn schema() -> Value {
    json!({"type": "object", "additionalProperties": false, "required": ["name", "image"],
        "not": {"required": ["command", "entrypoint"]},
        "description": "A service. Besides the limits stated per field, a spec is refused with 422 (every problem listed in `errors`, by field) when: a duration, CPU amount, size, constraint or signal does not parse; `health_check` does not set exactly one of `command`, `http_path` (with `tcp_port`) or `tcp_port`; `replicas` is outside `autoscale.min..=autoscale.max`, or `autoscale.max` is above the cluster's `--autoscale-max-replicas`; a published port and protocol is used twice; a mount's `source` does not suit its `type`; `resources.reservations.memory` is above the memory limit.",
        "properties": main_properties()})
}

/// The keys of 0.1.0 and the scheduling ones.
fn main_properties() -> Value {
    let mut p = json!({
        "name": name(),
        "image": {"type": "string", "minLength": 1, "pattern": "^\\S+$", "description": "an image reference (`busybox`, `registry:5000/team/app:1.2`, `app@sha256:...`)"},
        "command": {"type": "array", "items": {"type": "string"}, "description": "replaces the image's ENTRYPOINT (alias `entrypoint`); no NUL bytes"},
        "entrypoint": {"type": "array", "items": {"type": "string"}, "description": "alias of `command` (requests only)"},
        "args": {"type": "array", "items": {"type": "string"}, "description": "replaces the image's CMD; no NUL bytes"},
        "env": {"type": "object", "additionalProperties": {"type": "string"}, "description": "names non-empty, without `=` or NUL"},
        "replicas": {"type": "integer", "minimum": 0, "maximum": MAX_REPLICAS, "default": 1},
        "resources": {"type": "object", "additionalProperties": false, "properties": {
            "cpu": nullable(cpu("limit and reservation, unless `limits`/`reservations` say otherwise")),
            "memory": nullable(size("limit and reservation (at least 6MiB as a limit), unless `limits`/`reservations` say otherwise")),
            "limits": nullable(json!({"type": "object", "additionalProperties": false, "properties": {
                "cpu": nullable(cpu("the most the container may use")),
                "memory": nullable(size("at least 6MiB")),
                "pids": nullable(json!({"type": "integer", "minimum": 1, "maximum": i64::MAX, "description": "the most processes"}))}})),
            "reservations": nullable(json!({"type": "object", "additionalProperties": false, "properties": {
                "cpu": nullable(cpu("what the scheduler sets aside")),
                "memory": nullable(size("what the scheduler sets aside"))}}))}},
        "ports": {"type": "array", "items": {"type": "object", "additionalProperties": false, "required": ["target"], "properties": {
            "target": port(),
            "published": nullable(port()),
            "protocol": {"enum": ["tcp", "udp"], "default": "tcp"},
            "mode": {"enum": ["ingress", "host"], "default": "ingress",
                "description": "ingress: on every node, balanced over every replica (the routing mesh); host: only where a replica runs (cluster format 2 for host)"}}}},
        "endpoint_mode": {"enum": ["vip", "dnsrr"], "default": "vip",
            "description": "vip: a stable virtual IP that SERVICE resolves to; dnsrr: SERVICE resolves to the replicas (cluster format 2)"},
        "health_check": nullable(json!({"type": "object", "additionalProperties": false, "properties": {
            "command": {"type": "array", "items": {"type": "string"}, "description": "run in the container; exit 0 is healthy"},
            "http_path": {"type": ["string", "null"], "pattern": "^/", "description": "a GET to this path on `tcp_port` must answer 2xx or 3xx"},
            "tcp_port": nullable(port()),
            "interval": duration("default 10s, above 0"), "timeout": duration("default 5s, above 0"),
            "retries": {"type": "integer", "minimum": 1, "maximum": i64::MAX, "default": 3}, "start_period": duration("default 0s")}})),
        "restart": {"type": "object", "additionalProperties": false, "properties": {
            "condition": {"enum": ["any", "on-failure", "none"], "default": "any"},
            "max_attempts": {"type": "integer", "minimum": 0, "maximum": i64::MAX, "description": "within `window`; 0 is unlimited"},
            "delay": duration("the first back-off, doubling up to 5 minutes; default 1s"), "window": duration("default 5m")}},
        "update": {"type": "object", "additionalProperties": false, "properties": {
            "parallelism": {"type": "integer", "minimum": 1, "maximum": i64::MAX, "default": 1},
            "delay": duration("between batches; default 0s"),
            "failure_action": {"enum": ["pause", "rollback", "continue"], "default": "pause"},
            "monitor": duration("how long a new replica must stay healthy; default 5s"),
            "order": {"enum": ["stop-first", "start-first"], "default": "stop-first"},
            "max_failure_ratio": {"type": ["number", "string", "null"], "examples": [0.2, "0.25"],
                "description": "share of new replicas that may fail before failure_action, 0 to 1; default 0"},
            "drain": nullable(duration("how long a replica out of every node's addresses keeps running before its stop signal; default 1s (cluster format 2)"))}},
        "placement": {"type": "object", "additionalProperties": false, "properties": {
            "constraints": {"type": "array", "items": {"type": "string", "examples": ["node.labels.zone==a", "node.hostname!=n1"]},
                "description": "node.id, node.hostname or node.labels.KEY, then == or !=, then a value"},
            "max_per_node": {"type": "integer", "minimum": 0, "maximum": i64::MAX, "description": "0 is no limit"},
            "spread": {"type": ["string", "null"], "minLength": 1, "maxLength": 253, "description": "node label key to spread replicas over", "examples": ["zone"]}}},
        "mode": {"enum": ["replicated", "global"], "default": "replicated"}});
    if let (Some(p), Value::Object(more)) = (p.as_object_mut(), more_properties()) {
        p.extend(more);
    }
    p
}

/// Labels, autoscaling, stopping, and the complete spec's keys (format 2).
fn more_properties() -> Value {
    let ulimit_names: Vec<&str> = rules::ULIMITS.iter().map(|(n, _)| *n).collect();
    let ulimit_value = json!({"type": "integer", "minimum": -1, "maximum": i64::MAX, "description": "-1 is unlimited"});
    json!({
        "labels": {"type": "object", "additionalProperties": {"type": "string"}, "propertyNames": {"minLength": 1, "maxLength": 253}},
        "autoscale": nullable(json!({"type": "object", "additionalProperties": false, "required": ["min", "max"], "properties": {
            "min": replicas("the fewest replicas"),
            "max": replicas("the most replicas; at most the cluster's --autoscale-max-replicas"),
            "step": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_REPLICAS, "description": "replicas per pushed up/down; default 1"},
            "target": {"type": ["number", "null"], "exclusiveMinimum": 0, "description": "per-replica target of pushed values (proportional scaling)"},
            "cooldown_up": nullable(duration("no scale-up sooner after the last; default 30s")),
            "stabilization_down": nullable(duration("scale down only to the highest recommendation of this window; default 300s")),
            "query": {"type": ["string", "null"], "description": "PromQL answering the load per replica, pulled by the leader from --prometheus; needs target_value"},
            "target_value": {"type": ["number", "null"], "exclusiveMinimum": 0, "description": "the per-replica value the query is scaled toward"},
            "interval": nullable(duration("how often the query runs, at least 1s, only with query; default 15s"))}})),
        "stop_signal": {"type": ["string", "null"], "examples": ["SIGQUIT", "TERM", "15"],
            "description": "how a replica is asked to stop; default the image's STOPSIGNAL, else SIGTERM (cluster format 1)"},
        "stop_grace_period": nullable(duration("how long a replica may take to stop before SIGKILL; default 10s (cluster format 1)")),
        "user": {"type": ["string", "null"], "examples": ["999:999", "nobody"], "description": "NAME, UID, NAME:GROUP or UID:GID, each part 1 to 256 characters without whitespace"},
        "workdir": {"type": ["string", "null"], "pattern": "^/", "description": "an absolute path"},
        "hostname": {"type": ["string", "null"], "minLength": 1, "maxLength": 253, "description": "RFC 1123 labels separated by dots"},
        "init": {"type": ["boolean", "null"], "description": "run a minimal init as pid 1"},
        "read_only": {"type": "boolean", "default": false, "description": "a read-only root filesystem"},
        "ulimits": {"type": "object", "propertyNames": {"enum": ulimit_names},
            "additionalProperties": {"oneOf": [ulimit_value.clone(), {"type": "object", "required": ["soft", "hard"],
                "properties": {"soft": ulimit_value.clone(), "hard": ulimit_value}}]},
            "description": format!("by setrlimit name: one number for soft and hard, or {{soft, hard}} with soft ≤ hard; nofile at most {}", rules::MAX_NOFILE)},
        "mounts": {"type": "array", "items": {"type": "object", "additionalProperties": false, "required": ["target"], "properties": {
            "type": {"enum": ["volume", "bind", "tmpfs"], "default": "volume"},
            "source": {"type": ["string", "null"], "description": "bind: an absolute path of the node; volume: the volume's name (letters, digits, `_.-`, at most 128); tmpfs: none"},
            "target": {"type": "string", "pattern": "^/", "description": "an absolute path in the container, not `/`, without `..`, `.` or `//`; once per spec"},
            "read_only": {"type": "boolean", "default": false},
            "size": nullable(size("tmpfs only, above 0")),
            "mode": {"type": ["string", "null"], "pattern": "^[0-7]{1,4}$", "description": "tmpfs only: permissions in octal (default 1777)"}}}},
        "image_digest": {"type": ["string", "null"], "pattern": "^sha256:[0-9a-f]{64}$", "description": "the digest the image was pinned to at apply (not with an image that names a digest)"},
        "cap_add": {"type": "array", "items": {"type": "string"}, "examples": [["NET_ADMIN", "CAP_SYS_PTRACE"]], "description": "capabilities added to Docker's default set, with or without CAP_, any case; ALL is every one"},
        "cap_drop": {"type": "array", "items": {"type": "string"}, "description": "capabilities taken from the default set; ALL leaves only those added"},
        "no_new_privileges": {"type": ["boolean", "null"], "description": "setuid binaries and file capabilities cannot raise privileges; default true"},
        "userns": {"type": "boolean", "default": false, "description": "run in a user namespace: the container's root is an unprivileged id range of the node"},
        "secrets": file_refs("secret", "/run/secrets/SOURCE"),
        "configs": file_refs("config", "/SOURCE"),
        "registry_auth": {"type": ["object", "null"], "writeOnly": true, "required": ["username", "password"],
            "properties": {"username": {"type": "string"}, "password": {"type": "string"}},
            "description": "registry credentials for the agents' pulls (`--with-registry-auth`); never answered"}
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_proto::service::ServiceSpec;

    /// The numbers in the document are the ones validation uses.
    #[test]
    fn limits_are_the_validators() {
        let s = schema();
        assert_eq!(s["properties"]["replicas"]["maximum"], MAX_REPLICAS);
        let mut spec = ServiceSpec::new("web", "busybox");
        spec.replicas = MAX_REPLICAS;
        assert!(spec.validate().is_empty());
        spec.replicas = MAX_REPLICAS + 1;
        assert_eq!(spec.validate()[0].field, "replicas");
        let names = s["properties"]["ulimits"]["propertyNames"]["enum"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(names, rules::ULIMITS.len());
    }
}
