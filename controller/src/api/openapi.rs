//! The OpenAPI 3.1 document served at `/v1/openapi.json`, written by hand next to the routes it
//! describes (a generator would add a heavy dependency for a small API).

use axum::Json;
use serde_json::{json, Value};

fn err_responses() -> Value {
    json!({
        "400": {"description": "malformed JSON, unknown field or bad path value", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
        "404": {"description": "no such service, version or member", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
        "413": {"description": "body too large", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
        "422": {"description": "the spec is invalid; `errors` lists every field", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
        "503": {"description": "no leader or no quorum; nothing was applied; retry", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
        "504": {"description": "outcome_unknown: a write was proposed but not seen committed; it may or may not be applied", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    })
}

fn ok(schema: Value) -> Value {
    let mut r = err_responses();
    r["200"] = json!({"description": "ok", "content": {"application/json": {"schema": schema}}});
    r
}

fn body(schema: &str) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

fn name_param() -> Value {
    json!({"name": "name", "in": "path", "required": true, "schema": {"type": "string"}})
}

fn stale_param() -> Value {
    json!({"name": "stale", "in": "query", "required": false, "schema": {"type": "boolean"},
           "description": "answer from this member's applied state without confirming leadership (may be stale)"})
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// The document.
pub fn spec() -> Value {
    let mut doc = base();
    orchestration(&mut doc);
    doc
}

fn base() -> Value {
    let duration = json!({"type": "string", "examples": ["10s", "500ms", "1m30s"]});
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Hoist controller API", "version": "1"},
        "paths": {
            "/v1/services": {
                "get": {"summary": "list services", "parameters": [stale_param()], "responses": ok(json!({"type": "array", "items": schema_ref("Service")}))},
                "post": {"summary": "create or update a service (idempotent)", "requestBody": body("ServiceSpec"), "responses": ok(schema_ref("ServiceChange"))}
            },
            "/v1/services/{name}": {
                "parameters": [name_param()],
                "get": {"summary": "get a service", "parameters": [stale_param()], "responses": ok(schema_ref("Service"))},
                "put": {"summary": "create or update a service; the spec's name must match", "requestBody": body("ServiceSpec"), "responses": ok(schema_ref("ServiceChange"))},
                "delete": {"summary": "delete a service", "responses": ok(schema_ref("Service"))}
            },
            "/v1/services/{name}/scale": {
                "parameters": [name_param()],
                "post": {"summary": "set the replica count", "requestBody": body("ScaleRequest"), "responses": ok(schema_ref("ServiceChange"))}
            },
            "/v1/services/{name}/history": {
                "parameters": [name_param()],
                "get": {"summary": "kept versions, oldest first", "parameters": [stale_param()], "responses": ok(json!({"type": "array", "items": schema_ref("ServiceVersion")}))}
            },
            "/v1/services/{name}/rollback": {
                "parameters": [name_param()],
                "post": {"summary": "new version with the spec of `version` (default: the previous one)", "requestBody": {"required": false, "content": {"application/json": {"schema": schema_ref("RollbackRequest")}}}, "responses": ok(schema_ref("ServiceChange"))}
            },
            "/v1/cluster/status": {"get": {"summary": "this member's view: role, leader, term, log, state hash", "responses": ok(schema_ref("ClusterStatus"))}},
            "/v1/cluster/members": {
                "get": {"summary": "members", "responses": ok(json!({"type": "array", "items": schema_ref("Member")}))},
                "post": {"summary": "add a member (learner, then voter)", "requestBody": body("JoinRequest"), "responses": ok(json!({"type": "array", "items": schema_ref("Member")}))}
            },
            "/v1/cluster/members/{id}": {
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
                "delete": {"summary": "remove a member", "responses": ok(json!({"type": "array", "items": schema_ref("Member")}))}
            },
            "/v1/cluster/snapshot": {
                "get": {"summary": "download the replicated state", "parameters": [stale_param()], "responses": {"200": {"description": "state image", "content": {"application/octet-stream": {}}}}},
                "post": {"summary": "replace the replicated state with an image", "requestBody": {"required": true, "content": {"application/octet-stream": {}}}, "responses": ok(json!({"type": "object"}))}
            },
            "/v1/health": {"get": {"summary": "liveness", "responses": {"200": {"description": "alive"}}}}
        },
        "components": {"schemas": {
            "Error": {"type": "object", "required": ["code", "message"], "properties": {
                "code": {"type": "string", "examples": ["invalid", "not_found", "conflict", "no_quorum", "no_leader", "leader_unreachable", "outcome_unknown", "payload_too_large"]},
                "message": {"type": "string"}, "field": {"type": ["string", "null"]},
                "errors": {"type": "array", "items": {"type": "object", "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}}}},
            "ServiceSpec": {"type": "object", "additionalProperties": false, "required": ["name", "image"], "properties": {
                "name": {"type": "string", "pattern": "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"},
                "image": {"type": "string"},
                "command": {"type": "array", "items": {"type": "string"}},
                "args": {"type": "array", "items": {"type": "string"}},
                "env": {"type": "object", "additionalProperties": {"type": "string"}},
                "replicas": {"type": "integer", "minimum": 0, "default": 1},
                "resources": {"type": "object", "additionalProperties": false, "properties": {
                    "cpu": {"type": ["string", "number"], "examples": ["0.5", "500m", 2]},
                    "memory": {"type": ["string", "integer"], "examples": ["512Mi", "64m", "1g"],
                        "description": "bytes; k, m, g, t (any case, optional b or ib) and Ki..Ti are binary, as in Docker"}}},
                "ports": {"type": "array", "items": {"type": "object", "additionalProperties": false, "required": ["target"], "properties": {
                    "target": {"type": "integer", "minimum": 1, "maximum": 65535},
                    "published": {"type": ["integer", "null"], "minimum": 1, "maximum": 65535},
                    "protocol": {"enum": ["tcp", "udp"]},
                    "mode": {"enum": ["ingress", "host"], "default": "ingress",
                        "description": "ingress: on every node, balanced over every replica (the routing mesh); host: only where a replica runs (cluster format 2 for host)"}}}},
                "endpoint_mode": {"enum": ["vip", "dnsrr"], "default": "vip",
                    "description": "vip: a stable virtual IP that SERVICE resolves to; dnsrr: SERVICE resolves to the replicas (cluster format 2)"},
                "health_check": {"type": ["object", "null"], "additionalProperties": false, "properties": {
                    "command": {"type": "array", "items": {"type": "string"}}, "http_path": {"type": ["string", "null"]},
                    "tcp_port": {"type": ["integer", "null"]}, "interval": duration, "timeout": duration,
                    "retries": {"type": "integer", "minimum": 1}, "start_period": duration}},
                "restart": {"type": "object", "additionalProperties": false, "properties": {
                    "condition": {"enum": ["any", "on-failure", "none"]}, "max_attempts": {"type": "integer", "minimum": 0},
                    "delay": duration, "window": duration}},
                "update": {"type": "object", "additionalProperties": false, "properties": {
                    "parallelism": {"type": "integer", "minimum": 1}, "delay": duration,
                    "failure_action": {"enum": ["pause", "rollback", "continue"]}, "monitor": duration,
                    "order": {"enum": ["stop-first", "start-first"]},
                    "max_failure_ratio": {"type": ["number", "string", "null"], "minimum": 0, "maximum": 1,
                        "description": "share of new replicas that may fail before failure_action; default 0"},
                    "drain": {"type": ["string", "null"], "examples": ["1s", "0s"],
                        "description": "how long a replica out of every node's addresses keeps running before its stop signal; default 1s (cluster format 2)"}}},
                "placement": {"type": "object", "additionalProperties": false, "properties": {
                    "constraints": {"type": "array", "items": {"type": "string", "examples": ["node.labels.zone==a"]}},
                    "max_per_node": {"type": "integer", "minimum": 0},
                    "spread": {"type": ["string", "null"], "description": "node label key to spread replicas over", "examples": ["zone"]}}},
                "mode": {"enum": ["replicated", "global"], "default": "replicated"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "autoscale": {"type": ["object", "null"], "additionalProperties": false, "required": ["min", "max"], "properties": {
                    "min": {"type": "integer", "minimum": 0}, "max": {"type": "integer", "minimum": 0}}},
                "stop_signal": {"type": ["string", "null"], "examples": ["SIGQUIT", "TERM", "15"],
                    "description": "how a replica is asked to stop; default the image's STOPSIGNAL, else SIGTERM (cluster format 1)"},
                "stop_grace_period": {"type": ["string", "null"], "examples": ["30s"],
                    "description": "how long a replica may take to stop before SIGKILL; default 10s (cluster format 1)"}}},
            "Service": {"type": "object", "properties": {"name": {"type": "string"}, "version": {"type": "integer"}, "spec": schema_ref("ServiceSpec"), "created_ms": {"type": "integer"}, "updated_ms": {"type": "integer"}, "vip": {"type": ["string", "null"], "description": "the service's stable virtual IP"}}},
            "ServiceChange": {"type": "object", "properties": {"service": schema_ref("Service"), "changed": {"type": "boolean"}}},
            "ServiceVersion": {"type": "object", "properties": {"version": {"type": "integer"}, "origin": {}, "created_ms": {"type": "integer"}, "spec": schema_ref("ServiceSpec")}},
            "ScaleRequest": {"type": "object", "additionalProperties": false, "required": ["replicas"], "properties": {"replicas": {"type": "integer", "minimum": 0}}},
            "RollbackRequest": {"type": "object", "additionalProperties": false, "properties": {"version": {"type": ["integer", "null"]}}},
            "JoinRequest": {"type": "object", "additionalProperties": false, "required": ["id", "address"], "properties": {"id": {"type": "integer"}, "address": {"type": "string"}, "learner": {"type": "boolean"}}},
            "Member": {"type": "object", "properties": {"id": {"type": "integer"}, "address": {"type": "string"}, "voter": {"type": "boolean"},
                "version": {"type": "string", "description": "as the answering member last heard; absent if not heard"},
                "format": {"type": "integer"}}},
            "ClusterStatus": {"type": "object", "properties": {
                "id": {"type": "integer"}, "role": {"type": "string"}, "leader": {"type": ["integer", "null"]},
                "leader_address": {"type": ["string", "null"]}, "term": {"type": "integer"},
                "last_log_index": {"type": ["integer", "null"]}, "last_applied": {"type": ["integer", "null"]},
                "snapshot_index": {"type": ["integer", "null"]}, "purged_index": {"type": ["integer", "null"]}, "snapshots_installed": {"type": "integer"}, "members": {"type": "array", "items": schema_ref("Member")},
                "state_hash": {"type": "string"}, "services": {"type": "integer"},
                "version": {"type": "string", "description": "the answering member's Hoist version"},
                "format": {"type": "integer", "description": "the newest format the answering member reads and writes"},
                "cluster_format": {"type": "integer", "description": "the format the cluster writes: the newest every member reads"}}}
        }}
    })
}

/// Paths and schemas of nodes, replicas, rollouts, endpoints and the join token. The agents'
/// `/v1/agent/...` routes carry binary bodies (postcard or protobuf, see `hoist_proto::node`) and
/// are listed for completeness.
fn orchestration(doc: &mut Value) {
    let node_param = json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}, "description": "node id or hostname"});
    let postcard = json!({"content": {"application/x-protobuf": {}, "application/x-postcard": {}}});
    let paths = [
        (
            "/v1/cluster/token",
            json!({"get": {"summary": "the join token (made once through Raft): HOIST1-<cluster id>-<secret>", "responses": ok(schema_ref("JoinToken"))}}),
        ),
        (
            "/v1/nodes",
            json!({"get": {"summary": "nodes with liveness, availability, reservations, last heartbeat", "responses": ok(json!({"type": "array", "items": schema_ref("NodeView")}))}}),
        ),
        (
            "/v1/nodes/{id}",
            json!({"parameters": [node_param.clone()],
            "get": {"summary": "one node", "responses": ok(schema_ref("NodeView"))},
            "delete": {"summary": "forget a node", "responses": ok(schema_ref("Node"))}}),
        ),
        (
            "/v1/nodes/{id}/labels",
            json!({"parameters": [node_param.clone()],
            "post": {"summary": "set and remove labels", "requestBody": body("LabelRequest"), "responses": ok(schema_ref("Node"))}}),
        ),
        (
            "/v1/nodes/{id}/volumes",
            json!({"parameters": [node_param.clone()],
            "get": {"summary": "the node's named volumes as its agent last reported them to the leader (in memory; every 30 s and on change); empty with a note when it never reported (an older agent)", "responses": ok(schema_ref("NodeVolumes"))}}),
        ),
        (
            "/v1/nodes/{id}/availability",
            json!({"parameters": [node_param],
            "post": {"summary": "active, paused (no new replicas) or drained (replicas move off)", "requestBody": body("AvailabilityRequest"), "responses": ok(schema_ref("Node"))}}),
        ),
        (
            "/v1/services/{name}/ps",
            json!({"parameters": [name_param()],
            "get": {"summary": "every replica slot: current task, why it is pending, recent tasks with reasons", "responses": ok(schema_ref("ServiceTasks"))}}),
        ),
        (
            "/v1/services/{name}/rollout",
            json!({"parameters": [name_param(),
                {"name": "If-None-Match", "in": "header", "required": false, "schema": {"type": "string"}, "description": "an ETag from an earlier answer: answer when the rollout differs from it (or at the timeout)"},
                {"name": "timeout_ms", "in": "query", "required": false, "schema": {"type": "integer", "default": 30000, "maximum": 60000}}],
            "get": {"summary": "the rolling update of the current version, with an ETag (blocking watch with If-None-Match)", "responses": ok(schema_ref("Rollout"))}}),
        ),
        (
            "/v1/services/{name}/endpoints",
            json!({"parameters": [name_param(),
                {"name": "index", "in": "query", "required": false, "schema": {"type": "integer"}, "description": "answer when the endpoints change after this index"},
                {"name": "timeout_ms", "in": "query", "required": false, "schema": {"type": "integer", "default": 30000, "maximum": 60000}}],
            "get": {"summary": "healthy running replicas (blocking watch with index)", "responses": ok(schema_ref("Endpoints"))}}),
        ),
        (
            "/v1/stacks",
            json!({"get": {"summary": "list stacks", "parameters": [stale_param()], "responses": ok(json!({"type": "array", "items": schema_ref("Stack")}))},
            "post": {"summary": "deploy a stack: every service (named STACK_SERVICE) as one release, all or nothing; a release with no change makes none", "requestBody": body("StackDeploy"), "responses": ok(schema_ref("StackChange"))}}),
        ),
        (
            "/v1/stacks/{name}",
            json!({"parameters": [name_param()],
            "get": {"summary": "a stack and its releases, the current one last", "parameters": [stale_param()], "responses": ok(schema_ref("Stack"))},
            "delete": {"summary": "remove a stack and every service of it", "responses": ok(schema_ref("StackChange"))}}),
        ),
        (
            "/v1/agent/register",
            json!({"post": {"summary": "agent: join with a token (RegisterRequest → RegisterResponse)", "requestBody": postcard.clone(), "responses": {"200": postcard.clone()}}}),
        ),
        (
            "/v1/agent/heartbeat",
            json!({"post": {"summary": "agent: still alive (Heartbeat → HeartbeatAck)", "requestBody": postcard.clone(), "responses": {"200": postcard.clone()}}}),
        ),
        (
            "/v1/agent/assignments",
            json!({"get": {"summary": "agent: long poll of the node's assignments (?node=ID&index=N&wait_ms=M, Assignments)", "responses": {"200": postcard.clone()}}}),
        ),
        (
            "/v1/agent/endpoints",
            json!({"get": {"summary": "agent: long poll of every service's ready replicas for the agent's DNS (?index=N&wait_ms=M, ServiceEndpoints; format 2)", "responses": {"200": postcard.clone()}}}),
        ),
        (
            "/v1/agent/overlay",
            json!({"post": {"summary": "agent: its view of its overlay peers, for node inspect (OverlayReport → StatusAck; format 2)", "requestBody": postcard.clone(), "responses": {"200": postcard.clone()}}}),
        ),
        (
            "/v1/agent/volumes",
            json!({"post": {"summary": "agent: its named volumes, for node volumes (VolumeReport → StatusAck; format 2)", "requestBody": postcard.clone(), "responses": {"200": postcard.clone()}}}),
        ),
        (
            "/v1/agent/status",
            json!({"post": {"summary": "agent: batched task status (StatusReport → StatusAck)", "requestBody": postcard.clone(), "responses": {"200": postcard}}}),
        ),
    ];
    for (path, item) in paths {
        doc["paths"][path] = item;
    }
    let resources = json!({"type": "object", "properties": {"cpu_millis": {"type": "integer"}, "memory_bytes": {"type": "integer"}}});
    let task = json!({"type": "object", "properties": {
        "id": {"type": "string"}, "service": {"type": "string"}, "service_version": {"type": "integer"},
        "slot": {"type": "integer"}, "node": {"type": "string"},
        "desired": {"enum": ["running", "shutdown"]},
        "state": {"enum": ["pending", "running", "shutdown", "failed", "complete"]},
        "health": {"enum": ["none", "starting", "healthy", "unhealthy"]},
        "address": {"type": ["string", "null"]}, "container_id": {"type": ["string", "null"]},
        "exit_code": {"type": ["integer", "null"]}, "message": {"type": "string"}, "restarts": {"type": "integer"},
        "created_ms": {"type": "integer"}, "updated_ms": {"type": "integer"}, "ready_since_ms": {"type": ["integer", "null"]},
        "drain_index": {"type": ["integer", "null"], "description": "the Raft index at which it left its service's addresses, before stopping"}}});
    let schemas = [
        (
            "JoinToken",
            json!({"type": "object", "properties": {"token": {"type": "string"}, "cluster_id": {"type": "string"}}}),
        ),
        (
            "Node",
            json!({"type": "object", "properties": {
            "id": {"type": "string"}, "hostname": {"type": "string"}, "address": {"type": "string"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}}, "agent_labels": {"type": "object", "additionalProperties": {"type": "string"}}, "capacity": resources.clone(),
            "status": {"enum": ["ready", "down"]}, "availability": {"enum": ["active", "paused", "drained"]},
            "agent_version": {"type": "string"}, "registered_ms": {"type": "integer"}, "updated_ms": {"type": "integer"}}}),
        ),
        (
            "NodeView",
            json!({"type": "object", "properties": {"node": schema_ref("Node"), "tasks": {"type": "integer"}, "reserved": resources, "last_heartbeat_ms_ago": {"type": ["integer", "null"]}}}),
        ),
        (
            "NodeVolumes",
            json!({"type": "object", "properties": {
            "node": {"type": "string"}, "hostname": {"type": "string"},
            "reported_ms_ago": {"type": ["integer", "null"], "description": "age of the report; null when the node never reported to this leader"},
            "volumes": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"},
                "size_bytes": {"type": ["integer", "null"], "description": "bytes on disk as the agent last measured them (every volume at most once a minute, a new one at once; up to a minute old); null: not measured"},
                "used_by": {"type": "array", "items": {"type": "string"}, "description": "names of the containers whose spec mounts it, running or not"},
                "created_ms": {"type": ["integer", "null"]}}}},
            "note": {"type": "string", "description": "why the list is empty or may be out of date"}}}),
        ),
        (
            "LabelRequest",
            json!({"type": "object", "additionalProperties": false, "properties": {"set": {"type": "object", "additionalProperties": {"type": "string"}}, "remove": {"type": "array", "items": {"type": "string"}}}}),
        ),
        (
            "AvailabilityRequest",
            json!({"type": "object", "additionalProperties": false, "required": ["availability"], "properties": {"availability": {"enum": ["active", "paused", "drained"]}}}),
        ),
        ("Task", task),
        (
            "ServiceTasks",
            json!({"type": "object", "properties": {"service": {"type": "string"}, "version": {"type": "integer"}, "replicas": {"type": "array", "items": {"type": "object", "properties": {
            "slot": {"type": "integer"}, "task": {"oneOf": [schema_ref("Task"), {"type": "null"}]}, "pending": {"type": ["string", "null"], "examples": ["n2: needs 512 MiB, 300 MiB free; n3: constraint zone == a"]},
            "history": {"type": "array", "items": schema_ref("Task")}}}}}}),
        ),
        (
            "Rollout",
            json!({"type": "object", "properties": {
            "version": {"type": "integer"}, "from_version": {"type": "integer"},
            "state": {"enum": ["updating", "completed", "paused", "rolling_back", "rolled_back", "failed"]},
            "updated": {"type": "integer"}, "total": {"type": "integer"}, "failures": {"type": "integer"}, "message": {"type": "string"},
            "started_ms": {"type": "integer"}, "updated_ms": {"type": "integer"}, "batch_started_ms": {"type": "integer"},
            "rollback_of": {"type": ["integer", "null"], "description": "set on an automatic rollback: the version that failed"}}}),
        ),
        (
            "StackDeploy",
            json!({"type": "object", "required": ["name", "services"], "properties": {"name": {"type": "string"}, "services": {"type": "array", "items": schema_ref("ServiceSpec")}, "prune": {"type": "boolean", "description": "remove the stack's services the deploy no longer names"}}}),
        ),
        (
            "Stack",
            json!({"type": "object", "properties": {"name": {"type": "string"}, "created_ms": {"type": "integer"}, "services": {"type": "array", "items": {"type": "string"}},
            "releases": {"type": "array", "items": {"type": "object", "properties": {
                "release": {"type": "integer"}, "created_ms": {"type": "integer"}, "updated_ms": {"type": "integer"},
                "state": {"enum": ["deploying", "completed", "rolled-back", "superseded"]}, "message": {"type": "string"},
                "members": {"type": "array", "items": {"type": "object", "properties": {"service": {"type": "string"}, "version": {"type": "integer"}, "previous": {"type": "integer", "description": "0: created by this release"}, "changed": {"type": "boolean"}}}},
                "removed": {"type": "array", "items": {"type": "string"}}}}}}}),
        ),
        (
            "StackChange",
            json!({"type": "object", "properties": {"stack": schema_ref("Stack"), "changed": {"type": "boolean"}, "services": {"type": "array", "items": schema_ref("ServiceChange")}}}),
        ),
        (
            "Endpoints",
            json!({"type": "object", "properties": {"index": {"type": "integer"}, "endpoints": {"type": "array", "items": {"type": "object", "properties": {
            "address": {"type": "string"}, "port": {"type": ["integer", "null"]}, "ports": {"type": "array", "items": {"type": "object", "properties": {"target": {"type": "integer"}, "published": {"type": ["integer", "null"]}, "protocol": {"type": "string"}, "mode": {"type": "string"}}}}, "node": {"type": "string"}, "node_address": {"type": "string"}, "task": {"type": "string"}}}}}}),
        ),
    ];
    for (name, schema) in schemas {
        doc["components"]["schemas"][name] = schema;
    }
}

/// `GET /v1/openapi.json`
pub async fn document() -> Json<Value> {
    Json(spec())
}

#[cfg(test)]
mod tests {
    #[test]
    fn orchestration_routes_are_documented() {
        let doc = super::spec();
        for p in [
            "/v1/nodes/{id}/availability",
            "/v1/nodes/{id}/volumes",
            "/v1/agent/volumes",
            "/v1/services/{name}/endpoints",
            "/v1/services/{name}/rollout",
            "/v1/agent/assignments",
            "/v1/cluster/token",
        ] {
            assert!(doc["paths"][p].is_object(), "{p}");
        }
        assert!(doc["components"]["schemas"]["Rollout"].is_object());
        assert!(doc["components"]["schemas"]["NodeVolumes"].is_object());
        assert!(doc["components"]["schemas"]["ServiceSpec"]["properties"]["mode"].is_object());
    }
}
