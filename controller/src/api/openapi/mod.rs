//! The OpenAPI 3.1 document served at `/v1/openapi.json`, written by hand next to the routes it
//! describes (a generator would add a heavy dependency for a small API).

mod access;
mod answers;
#[cfg(test)]
mod check;
mod service_spec;

use super::orchestration::MAX_WATCH_MS;
use answers::{answers, answers_with, AGENT, READ, READ_ONE, WRITE, WRITE_BODY};
use axum::Json;
use serde_json::{json, Value};

fn body(schema: &str) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

fn optional_body(schema: &str) -> Value {
    json!({"required": false, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

fn name_param() -> Value {
    json!({"name": "name", "in": "path", "required": true, "schema": service_spec::name(), "description": "a service's name (any other is not found)"})
}

fn stack_param() -> Value {
    json!({"name": "name", "in": "path", "required": true, "schema": service_spec::stack_name(), "description": "a stack's name (any other is not found)"})
}

fn stale_param() -> Value {
    json!({"name": "stale", "in": "query", "required": false, "schema": {"type": "boolean"},
           "description": "true: answer from this member's applied state without confirming leadership (may be stale)"})
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn ok(schema: Value, errors: &[u16]) -> Value {
    answers(200, schema, errors)
}

fn list(item: &str) -> Value {
    json!({"type": "array", "items": schema_ref(item)})
}

/// The document.
pub fn spec() -> Value {
    let mut doc = base();
    orchestration(&mut doc);
    autoscaling(&mut doc);
    events(&mut doc);
    sessions(&mut doc);
    access::tokens(&mut doc);
    files(&mut doc);
    access::secure(&mut doc, super::routes());
    doc
}

/// `/v1/secrets`, `/v1/configs` and the agents' `/v1/agent/files`.
fn files(doc: &mut Value) {
    let file_name = json!({"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$"});
    for (kind, plural) in [("secret", "secrets"), ("config", "configs")] {
        let param = json!({"name": "name", "in": "path", "required": true, "schema": file_name.clone(), "description": format!("the {kind}'s name")});
        doc["paths"][format!("/v1/{plural}")] = json!({
            "get": {"summary": format!("every {kind}: name, version, size, times (never the content)"), "parameters": [stale_param()], "responses": ok(list("StoredFile"), READ)}});
        doc["paths"][format!("/v1/{plural}/{{name}}")] = json!({"parameters": [param],
            "get": {"summary": format!("one {kind} (never its content) and the services that use it"), "parameters": [stale_param()], "responses": ok(schema_ref("StoredFileUse"), READ_ONE)},
            "put": {"summary": format!("create the {kind} with the body as its content (201), or make a new version of it (200) that replaces the file in every running replica; at most 500 KiB"),
                "requestBody": {"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary", "minLength": 1, "maxLength": hoist_proto::files::MAX_FILE_BYTES}}}},
                "responses": {
                    "200": {"description": "a new version", "content": {"application/json": {"schema": schema_ref("StoredFile")}}},
                    "201": {"description": "created", "content": {"application/json": {"schema": schema_ref("StoredFile")}}},
                    "400": {"description": answers::describe(400), "content": {"application/json": {"schema": schema_ref("Error")}}},
                    "409": {"description": answers::describe(409), "content": {"application/json": {"schema": schema_ref("Error")}}},
                    "413": {"description": "the content is over 500 KiB", "content": {"application/json": {"schema": schema_ref("Error")}}},
                    "422": {"description": answers::describe(422), "content": {"application/json": {"schema": schema_ref("Error")}}},
                    "503": {"description": answers::describe(503), "content": {"application/json": {"schema": schema_ref("Error")}}},
                    "504": {"description": answers::describe(504), "content": {"application/json": {"schema": schema_ref("Error")}}}}},
            "delete": {"summary": format!("remove the {kind}; 409 while a service uses it; 400 for a name no {kind} can have"), "responses": ok(schema_ref("StoredFile"), &[400, 404, 409, 422, 503, 504])}});
    }
    doc["paths"]["/v1/agent/files"] = json!({"get": {"summary": "agent: the content of every secret and config a task on the node references (TaskFiles; format 2)", "parameters": [
        {"name": "node", "in": "query", "required": true, "schema": {"type": "string"}},
        {"name": "task", "in": "query", "required": true, "schema": {"type": "string"}}],
        "responses": answers_with(200, json!({"description": "TaskFiles in the agent's format", "content": {"application/x-protobuf": {"schema": {"type": "string", "format": "binary"}}}}), AGENT)}});
    doc["paths"]["/v1/cluster/ca"] = json!({"get": {"summary": "the cluster's root certificate (PEM), the digest join tokens carry, the roots trusted now and, during a rotation, who is under the new root yet (answered by the leader then)",
        "responses": ok(schema_ref("ClusterCa"), &[404, 503, 504])}});
    let digest = json!({"type": "string", "pattern": "^[0-9a-f]{64}$"});
    let count = |key: Value| {
        json!({"type": ["object", "null"], "required": ["done", "total", "waiting"], "properties": {
        "done": {"type": "integer", "minimum": 0}, "total": {"type": "integer", "minimum": 0},
        "waiting": {"type": "object", "description": "who is still waited for, and what was seen of it", "propertyNames": key, "additionalProperties": {"type": "string"}}}})
    };
    doc["components"]["schemas"]["ClusterCa"] = json!({"type": "object", "required": ["certificate", "digest", "created_ms", "trusted", "rotation"], "properties": {
        "certificate": {"type": "string"}, "digest": digest.clone(), "created_ms": {"type": "integer"},
        "trusted": {"type": "array", "items": digest.clone(), "minItems": 1, "description": "the digests of the roots members and nodes trust now, the current one first"},
        "rotation": {"description": "null unless a rotation (`POST /v1/cluster/ca/rotate`) is going on", "oneOf": [{"type": "null"}, {"type": "object", "required": ["previous_digest", "members", "nodes"], "properties": {
            "previous_digest": {"type": ["string", "null"]},
            "members": count(json!({"pattern": "^[0-9]+$"})),
            "nodes": count(json!({"type": "string"}))}}]}}});
    doc["paths"]["/v1/cluster/ca/rotate"] = json!({"post": {"summary": "rotate the cluster's root: a new root, cross-signed by the current one, both trusted until every member and live node holds a certificate under the new one (then the rotation ends by itself); 409 while a rotation is going on",
        "responses": ok(json!({"type": "object", "required": ["digest", "previous_digest"], "properties": {"digest": digest.clone(), "previous_digest": digest}}), &[404, 409, 503, 504])}});
    doc["paths"]["/v1/cluster/members/{id}/certificate"] = json!({"post": {"summary": "sign a joining member's certificate from its signing request (its key stays on the member)",
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 1}}],
        "requestBody": body("MemberCertificateRequest"), "responses": ok(schema_ref("MemberCertificate"), &[400, 413, 415, 422, 503, 504])}});
    doc["components"]["schemas"]["MemberCertificateRequest"] = json!({"type": "object", "additionalProperties": false, "required": ["address", "csr"], "properties": {"address": {"type": "string"}, "csr": {"type": "string"}}});
    doc["components"]["schemas"]["MemberCertificate"] = json!({"type": "object", "required": ["certificate", "ca_certificate"], "properties": {"certificate": {"type": "string"}, "ca_certificate": {"type": "string"}}});
    doc["paths"]["/v1/cluster/token/rotate"] = json!({"post": {"summary": "a new secret for the worker (or, role=manager, the manager) join token: the old one registers no node (adds no member) from now on",
        "parameters": [{"name": "role", "in": "query", "required": false, "schema": {"enum": ["worker", "manager"]}}],
        "responses": ok(schema_ref("JoinToken"), &[400, 503, 504])}});
    doc["paths"]["/v1/agent/certificate"] = json!({"post": {"summary": "agent: renew the node's certificate for the same key (CertificateRequest → CertificateResponse; format 2)",
        "requestBody": {"required": true, "content": {"application/x-protobuf": {"schema": {"type": "string", "format": "binary"}}}},
        "responses": answers_with(200, json!({"description": "CertificateResponse in the agent's format", "content": {"application/x-protobuf": {"schema": {"type": "string", "format": "binary"}}}}), AGENT)}});
    doc["paths"]["/v1/cluster/autolock"] = json!({"post": {"summary": "turn autolock on (answers a new unlock key, once: every member needs it after a restart) or off",
        "requestBody": body("AutolockRequest"), "responses": ok(schema_ref("AutolockAnswer"), WRITE_BODY)}});
    doc["paths"]["/v1/cluster/lock"] = json!({"get": {"summary": "whether this member is locked (autolock, after a restart), and whether the cluster has autolock on",
        "responses": ok(schema_ref("LockState"), &[])}});
    doc["paths"]["/v1/cluster/unlock"] = json!({"post": {"summary": "give this member the unlock key (the key is the credential): 401 for another key, 409 when not locked",
        "requestBody": body("UnlockRequest"), "responses": ok(schema_ref("LockState"), &[400, 401, 409, 413, 415])}});
    doc["components"]["schemas"]["AutolockRequest"] = json!({"type": "object", "additionalProperties": false, "required": ["enabled"], "properties": {"enabled": {"type": "boolean"}}});
    doc["components"]["schemas"]["AutolockAnswer"] = json!({"type": "object", "required": ["autolock"], "properties": {"autolock": {"type": "boolean"}, "unlock_key": {"type": "string", "description": "HOISTUK1-...: shown once"}}});
    doc["components"]["schemas"]["UnlockRequest"] = json!({"type": "object", "additionalProperties": false, "required": ["key"], "properties": {"key": {"type": "string", "pattern": "^HOISTUK1-[0-9a-f]{64}$"}}});
    doc["components"]["schemas"]["LockState"] = json!({"type": "object", "required": ["member", "locked", "autolock"], "properties": {"member": {"type": "integer"}, "locked": {"type": "boolean"}, "autolock": {"type": "boolean"}}});
    let stored = json!({"type": "object", "required": ["kind", "name", "version", "created_ms", "updated_ms", "size"], "properties": {
        "kind": {"enum": ["secret", "config"]}, "name": file_name, "version": {"type": "integer", "minimum": 1},
        "created_ms": {"type": "integer"}, "updated_ms": {"type": "integer"}, "size": {"type": "integer", "description": "bytes of the current version"}}});
    let mut with_use = stored.clone();
    with_use["properties"]["services"] = json!({"type": "array", "items": {"type": "string"}, "description": "services whose current spec references it"});
    doc["components"]["schemas"]["StoredFile"] = stored;
    doc["components"]["schemas"]["StoredFileUse"] = with_use;
}

fn base() -> Value {
    let members = list("Member");
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Hoist controller API", "version": "1",
            "description": "Every error is a JSON `Error` body. Request bodies are JSON (`Content-Type: application/json`) unless said otherwise; unknown fields are refused. Query parameters a route does not know are ignored; one given twice is a 400."},
        "paths": {
            "/v1/services": {
                "get": {"summary": "list services", "parameters": [stale_param()], "responses": ok(list("Service"), READ)},
                "post": {"summary": "create or update a service (idempotent)", "requestBody": body("ServiceSpec"), "responses": ok(schema_ref("ServiceChange"), WRITE_BODY)}
            },
            "/v1/services/{name}": {
                "parameters": [name_param()],
                "get": {"summary": "get a service", "parameters": [stale_param()], "responses": ok(schema_ref("Service"), READ_ONE)},
                "put": {"summary": "create or update a service; the spec's name must match the path's (400 otherwise)", "requestBody": body("ServiceSpec"), "responses": ok(schema_ref("ServiceChange"), WRITE_BODY)},
                "delete": {"summary": "delete a service", "responses": ok(schema_ref("Service"), WRITE)}
            },
            "/v1/services/{name}/scale": {
                "parameters": [name_param()],
                "post": {"summary": "set the replica count (within the service's autoscale bounds, if it has some: 422 otherwise)", "requestBody": body("ScaleRequest"), "responses": ok(schema_ref("ServiceChange"), WRITE_BODY)}
            },
            "/v1/services/{name}/history": {
                "parameters": [name_param()],
                "get": {"summary": "kept versions, oldest first", "parameters": [stale_param()], "responses": ok(list("ServiceVersion"), READ_ONE)}
            },
            "/v1/services/{name}/rollback": {
                "parameters": [name_param()],
                "post": {"summary": "new version with the spec of `version` (default: the previous one); 409 when there is no earlier version to go back to", "requestBody": optional_body("RollbackRequest"), "responses": ok(schema_ref("ServiceChange"), WRITE_BODY)}
            },
            "/v1/cluster/status": {"get": {"summary": "this member's view: role, leader, term, log, state hash (answered by the member itself)", "responses": ok(schema_ref("ClusterStatus"), &[])}},
            "/v1/cluster/members": {
                "get": {"summary": "members, as this member knows them", "responses": ok(members.clone(), &[])},
                "post": {"summary": "add a member (learner, then voter); the joining member's Hoist says its version and format in headers (without them, from an operator's member-add, the leader asks the member; one that does not answer counts as 0.1.0); 409 for another member's id or address", "requestBody": body("JoinRequest"), "responses": ok(members.clone(), &[400, 409, 413, 415, 422, 426, 503, 504])}
            },
            "/v1/cluster/members/{id}": {
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 0, "maximum": u64::MAX}}],
                "delete": {"summary": "remove a member; 409 for the last voter", "responses": ok(members, &[400, 404, 409, 503, 504])}
            },
            "/v1/cluster/snapshot": {
                "get": {"summary": "download the replicated state (a checksummed image in the cluster's format)", "parameters": [stale_param()], "responses": answers_with(200, json!({"description": "state image", "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}), READ)},
                "post": {"summary": "replace the replicated state with an image from `GET /v1/cluster/snapshot`; anything else is a 400", "requestBody": {"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}, "responses": ok(schema_ref("Restored"), &[400, 409, 413, 503, 504])}
            },
            "/v1/health": {"get": {"summary": "liveness", "responses": ok(json!({"type": "object", "required": ["ok", "id"], "properties": {"ok": {"const": true}, "id": {"type": "integer", "description": "this member's id"}}}), &[])}},
            "/v1/openapi.json": {"get": {"summary": "this document", "responses": ok(json!({"type": "object"}), &[])}}
        },
        "components": {"schemas": {
            "Error": {"type": "object", "required": ["code", "message"], "properties": {
                "code": {"type": "string", "examples": ["invalid", "not_found", "conflict", "no_quorum", "no_leader", "leader_unreachable", "outcome_unknown", "payload_too_large"]},
                "message": {"type": "string"}, "field": {"type": ["string", "null"]},
                "errors": {"type": "array", "items": {"type": "object", "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}}}},
            "ServiceSpec": service_spec::schema(),
            "Restored": {"type": "object", "required": ["restored", "services"], "properties": {"restored": {"const": true}, "services": {"type": "integer", "minimum": 0}}},
            "Service": {"type": "object", "properties": {"name": {"type": "string"}, "version": {"type": "integer"}, "spec": schema_ref("ServiceSpec"), "created_ms": {"type": "integer"}, "updated_ms": {"type": "integer"}, "vip": {"type": ["string", "null"], "description": "the service's stable virtual IP"}}},
            "ServiceChange": {"type": "object", "properties": {"service": schema_ref("Service"), "changed": {"type": "boolean"}}},
            "ServiceVersion": {"type": "object", "properties": {"version": {"type": "integer"}, "origin": {}, "created_ms": {"type": "integer"}, "spec": schema_ref("ServiceSpec")}},
            "ScaleRequest": {"type": "object", "additionalProperties": false, "required": ["replicas"], "properties": {"replicas": {"type": "integer", "minimum": 0, "maximum": hoist_proto::service::MAX_REPLICAS}}},
            "RollbackRequest": {"type": "object", "additionalProperties": false, "properties": {"version": {"type": ["integer", "null"], "minimum": 0, "maximum": u64::MAX, "description": "a kept version (404 otherwise); default the one before the current"}}},
            "JoinRequest": {"type": "object", "additionalProperties": false, "required": ["id", "address"], "properties": {"id": {"type": "integer", "minimum": 1, "maximum": u64::MAX}, "address": {"type": "string", "examples": ["10.0.0.2:7070", "[fd00::2]:7070"], "description": "IP:PORT where the member serves (422 otherwise)"}, "learner": {"type": "boolean", "default": false}}},
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
    let binary = json!({"type": "string", "format": "binary"});
    let content = json!({"application/x-protobuf": {"schema": binary}, "application/x-postcard": {"schema": binary}});
    let request = json!({"required": true, "content": content});
    let answer = json!({"description": "the answer, in the request's format", "content": content});
    let q = |name: &str, required: bool| json!({"name": name, "in": "query", "required": required, "schema": if name == "node" { json!({"type": "string"}) } else { json!({"type": "integer", "minimum": 0, "maximum": u64::MAX}) }});
    let paths = [
        (
            "/v1/cluster/token",
            json!({"get": {"summary": "a join token (made once through Raft): HOIST2-<cluster id>-<root CA digest>-<secret> (HOIST1-<cluster id>-<secret> below format 2); role=manager: the members' token", "parameters": [{"name": "role", "in": "query", "required": false, "schema": {"enum": ["worker", "manager"]}}], "responses": ok(schema_ref("JoinToken"), &[400, 503, 504])}}),
        ),
        (
            "/v1/nodes",
            json!({"get": {"summary": "nodes with liveness, availability, reservations, last heartbeat", "parameters": [stale_param()], "responses": ok(list("NodeView"), READ)}}),
        ),
        (
            "/v1/nodes/{id}",
            json!({"parameters": [node_param.clone()],
            "get": {"summary": "one node", "parameters": [stale_param()], "responses": ok(schema_ref("NodeView"), READ_ONE)},
            "delete": {"summary": "forget a node", "responses": ok(schema_ref("Node"), WRITE)}}),
        ),
        (
            "/v1/nodes/{id}/labels",
            json!({"parameters": [node_param.clone()],
            "post": {"summary": "set and remove labels", "requestBody": body("LabelRequest"), "responses": ok(schema_ref("Node"), WRITE_BODY)}}),
        ),
        (
            "/v1/nodes/{id}/volumes",
            json!({"parameters": [node_param.clone()],
            "get": {"summary": "the node's named volumes as its agent last reported them to the leader (in memory; every 30 s and on change); empty with a note when it never reported (an older agent)", "parameters": [stale_param()], "responses": ok(schema_ref("NodeVolumes"), READ_ONE)}}),
        ),
        (
            "/v1/nodes/{id}/availability",
            json!({"parameters": [node_param],
            "post": {"summary": "active, paused (no new replicas) or drained (replicas move off)", "requestBody": body("AvailabilityRequest"), "responses": ok(schema_ref("Node"), WRITE_BODY)}}),
        ),
        (
            "/v1/services/{name}/ps",
            json!({"parameters": [name_param()],
            "get": {"summary": "every replica slot: current task, why it is pending, recent tasks with reasons", "parameters": [stale_param()], "responses": ok(schema_ref("ServiceTasks"), READ_ONE)}}),
        ),
        (
            "/v1/services/{name}/rollout",
            json!({"parameters": [name_param(),
                {"name": "If-None-Match", "in": "header", "required": false, "schema": {"type": "string"}, "description": "an ETag from an earlier answer: answer when the rollout differs from it (or at the timeout)"},
                {"name": "timeout_ms", "in": "query", "required": false, "schema": {"type": "integer", "default": 30000, "minimum": 0, "maximum": MAX_WATCH_MS}, "description": "with If-None-Match: how long to wait for a change"}, stale_param()],
            "get": {"summary": "the rolling update of the current version, with an ETag (blocking watch with If-None-Match)", "responses": ok(schema_ref("Rollout"), READ_ONE)}}),
        ),
        (
            "/v1/services/{name}/endpoints",
            json!({"parameters": [name_param(),
                {"name": "index", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 0, "maximum": u64::MAX}, "description": "answer when the endpoints change after this index"},
                {"name": "timeout_ms", "in": "query", "required": false, "schema": {"type": "integer", "default": 30000, "minimum": 0, "maximum": MAX_WATCH_MS}, "description": "with index: how long to wait for a change"}, stale_param()],
            "get": {"summary": "healthy running replicas (blocking watch with index)", "responses": ok(schema_ref("Endpoints"), READ_ONE)}}),
        ),
        (
            "/v1/stacks",
            json!({"get": {"summary": "list stacks", "parameters": [stale_param()], "responses": ok(list("Stack"), READ)},
            "post": {"summary": "deploy a stack: every service (named STACK_SERVICE) as one release, all or nothing; a release with no change makes none", "requestBody": body("StackDeploy"), "responses": ok(schema_ref("StackChange"), WRITE_BODY)}}),
        ),
        (
            "/v1/stacks/{name}",
            json!({"parameters": [stack_param()],
            "get": {"summary": "a stack and its releases, the current one last", "parameters": [stale_param()], "responses": ok(schema_ref("Stack"), READ_ONE)},
            "delete": {"summary": "remove a stack and every service of it", "responses": ok(schema_ref("StackChange"), WRITE)}}),
        ),
        (
            "/v1/agent/register",
            json!({"post": {"summary": "agent: join with a token (RegisterRequest → RegisterResponse)", "requestBody": request.clone(), "responses": answers_with(200, answer.clone(), AGENT)}}),
        ),
        (
            "/v1/agent/heartbeat",
            json!({"post": {"summary": "agent: still alive (Heartbeat → HeartbeatAck)", "requestBody": request.clone(), "responses": answers_with(200, answer.clone(), AGENT)}}),
        ),
        (
            "/v1/agent/assignments",
            json!({"get": {"summary": "agent: long poll of the node's assignments (Assignments)", "parameters": [q("node", true), q("index", false), q("wait_ms", false), q("overlay_index", false), q("specs", false), q("specs_term", false)], "responses": answers_with(200, answer.clone(), AGENT)}}),
        ),
        (
            "/v1/agent/endpoints",
            json!({"get": {"summary": "agent: long poll of every service's ready replicas for the agent's DNS (ServiceEndpoints; format 2)", "parameters": [q("index", false), q("wait_ms", false)], "responses": answers_with(200, answer.clone(), AGENT)}}),
        ),
        (
            "/v1/agent/overlay",
            json!({"post": {"summary": "agent: its view of its overlay peers, for node inspect (OverlayReport → StatusAck; format 2)", "requestBody": request.clone(), "responses": answers_with(200, answer.clone(), AGENT)}}),
        ),
        (
            "/v1/agent/volumes",
            json!({"post": {"summary": "agent: its named volumes, for node volumes (VolumeReport → StatusAck; format 2)", "requestBody": request.clone(), "responses": answers_with(200, answer.clone(), AGENT)}}),
        ),
        (
            "/v1/agent/status",
            json!({"post": {"summary": "agent: batched task status (StatusReport → StatusAck)", "requestBody": request, "responses": answers_with(200, answer, AGENT)}}),
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
            "agent_version": {"type": "string"}, "agent_format": {"type": "integer", "description": "the newest format its agent reads"},
            "registered_ms": {"type": "integer"}, "updated_ms": {"type": "integer"},
            "subnet": {"type": ["string", "null"], "description": "its overlay subnet"},
            "wg_public_key": {"type": ["string", "null"]}, "wg_endpoint": {"type": ["string", "null"], "description": "where its WireGuard listens, IP:PORT"},
            "overlay_generation": {"type": "integer"}, "overlay_problem": {"type": ["string", "null"], "description": "why its overlay could not be set up"}}}),
        ),
        (
            "NodeView",
            json!({"type": "object", "properties": {"node": schema_ref("Node"), "tasks": {"type": "integer"}, "reserved": resources, "last_heartbeat_ms_ago": {"type": ["integer", "null"]},
            "subnet": {"type": ["string", "null"]},
            "peers": {"type": "array", "items": {"type": "object", "description": "an overlay peer as the node's agent last reported it: handshake, bytes, probes through the tunnel"}},
            "peers_reported_ms_ago": {"type": ["integer", "null"]}, "peer_problems": {"type": "array", "items": {"type": "string"}},
            "mesh_error": {"type": ["string", "null"], "description": "why the node's service addresses could not be applied"}}}),
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
            json!({"type": "object", "required": ["name", "services"], "description": "the services' names must be STACK_SERVICE (422 otherwise)", "properties": {"name": service_spec::stack_name(), "services": {"type": "array", "items": schema_ref("ServiceSpec")}, "prune": {"type": "boolean", "description": "remove the stack's services the deploy no longer names"}}}),
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

/// Autoscaling: the hooks monitors call (with hook tokens, `Authorization: Bearer`), their
/// tokens, a service's decisions, and the `[autoscale]` policy keys.
fn autoscaling(doc: &mut Value) {
    let bearer = json!([{"hookToken": []}]);
    // 401: no valid hook token (or none created yet); 403: the token is for another service;
    // 409: the service has no [autoscale] bounds.
    let errors: &[u16] = &[400, 401, 403, 404, 409, 413, 415, 422, 503, 504];
    let paths = [
        (
            "/v1/hooks/alertmanager",
            json!({"post": {"summary": "Alertmanager's webhook (version 4): each firing alert labelled hoist_service and hoist_scale=up|down scales its service once (dedup by group key, fingerprint and startsAt); resolved alerts do nothing; an hoist_value annotation scales proportionally toward [autoscale] target", "security": bearer.clone(), "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "description": "Alertmanager's webhook payload (version 4)"}}}}, "responses": ok(schema_ref("HookAnswer"), errors)}}),
        ),
        (
            "/v1/services/{name}/scale-hook",
            json!({"parameters": [name_param()], "post": {"summary": "any monitor: {\"direction\": \"up\"|\"down\"}, {\"replicas\": N} or {\"value\": V}, optional \"reason\"; clamped to the bounds, held by cooldown_up and stabilization_down (the decision says so)", "security": bearer, "requestBody": body("ScaleHook"), "responses": ok(schema_ref("HookAnswer"), errors)}}),
        ),
        (
            "/v1/services/{name}/autoscale",
            json!({"parameters": [name_param()], "get": {"summary": "the service's replicas, bounds and policy, and its last 100 scaling decisions (oldest first) with their reasons", "parameters": [stale_param()], "responses": ok(schema_ref("AutoscaleStatus"), READ_ONE)}}),
        ),
        (
            "/v1/hooks/tokens",
            json!({"get": {"summary": "hook tokens: id, scope, creation time (never the secret)", "parameters": [stale_param()], "responses": ok(list("HookToken"), READ)},
            "post": {"summary": "make a hook token, answered once: HOISTHOOK-<id>-<secret> (only the secret's SHA-256 is kept)", "requestBody": optional_body("NewHookToken"), "responses": answers(201, schema_ref("CreatedHookToken"), WRITE_BODY)}}),
        ),
        (
            "/v1/hooks/tokens/{id}",
            json!({"parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}], "delete": {"summary": "revoke a hook token", "responses": answers_with(204, json!({"description": "revoked"}), WRITE)}}),
        ),
    ];
    for (path, item) in paths {
        doc["paths"][path] = item;
    }
    let decision = json!({"type": "object", "properties": {
        "service": {"type": "string"}, "source": {"enum": ["alertmanager", "hook", "query", "operator"]},
        "from": {"type": "integer"}, "to": {"type": "integer"}, "reason": {"type": "string", "description": "what asked"},
        "detail": {"type": "string", "description": "what limited it (bounds, cooldown_up, stabilization_down) or why a query failed"},
        "dedup": {"type": ["string", "null"]}, "index": {"type": "integer", "description": "Raft index it was committed at"}, "time_ms": {"type": "integer"}}});
    let schemas = [
        ("AutoscaleDecision", decision),
        (
            "AutoscaleStatus",
            json!({"type": "object", "properties": {"service": {"type": "string"}, "replicas": {"type": "integer"}, "autoscale": {"type": ["object", "null"]}, "decisions": {"type": "array", "items": schema_ref("AutoscaleDecision")}, "total": {"type": "integer"}}}),
        ),
        (
            "HookAnswer",
            json!({"type": "object", "properties": {"decisions": {"type": "array", "items": {"type": "object", "properties": {"decision": schema_ref("AutoscaleDecision"), "applied": {"type": "boolean", "description": "false: this alert was applied before"}}}}, "ignored": {"type": "integer", "description": "resolved alerts"}}}),
        ),
        (
            "ScaleHook",
            json!({"type": "object", "additionalProperties": false, "properties": {"direction": {"enum": ["up", "down"]}, "replicas": {"type": "integer"}, "value": {"type": "number", "minimum": 0}, "reason": {"type": "string"}}}),
        ),
        (
            "HookToken",
            json!({"type": "object", "properties": {"id": {"type": "string"}, "service": {"type": ["string", "null"]}, "created_ms": {"type": "integer"}}}),
        ),
        (
            "NewHookToken",
            json!({"type": "object", "additionalProperties": false, "properties": {"service": {"anyOf": [service_spec::name(), {"type": "null"}], "description": "only this service may be scaled with it"}}}),
        ),
        (
            "CreatedHookToken",
            json!({"type": "object", "properties": {"id": {"type": "string"}, "token": {"type": "string"}, "service": {"type": ["string", "null"]}}}),
        ),
    ];
    for (name, schema) in schemas {
        doc["components"]["schemas"][name] = schema;
    }
    doc["components"]["securitySchemes"]["hookToken"] = json!({"type": "http", "scheme": "bearer", "description": "a hook token from `hoist hook token create`"});
}

/// `GET /v1/events` (server-sent events, `api/events.rs`) and its `Event` JSON.
fn events(doc: &mut Value) {
    let types: Vec<&str> = hoist_proto::events::TYPES.to_vec();
    let q = |name: &str, description: &str| json!({"name": name, "in": "query", "required": false, "schema": {"type": "string"}, "description": description});
    doc["paths"]["/v1/events"] = json!({"get": {
        "summary": "the cluster's events as server-sent events, from the answering member (never forwarded: every member tells the same events with the same ids)",
        "description": "Each message is `id: INDEX.SEQ` and `data: <Event JSON>` (no `event:` line). The stream starts after `Last-Event-ID` (INDEX.SEQ, or INDEX for after a whole entry), else after `index`, else with the first kept event at or after `since_ms`, else with the next event. A start older than what the member keeps (the last 10000 events, since its snapshot at start) is answered first with an `events.lost` event whose `to` is the last entry not held; the stream goes on after it. A stream started without an id first sends an id-only message (its position). `: keep-alive` comments every 15 s; a filtered stream sends an id-only message after 10 quiet seconds. The stream ends when the member stops: resume on another with the last id.",
        "parameters": [
            {"name": "Last-Event-ID", "in": "header", "required": false, "schema": {"type": "string", "examples": ["1234.0"]}, "description": "resume after this event (what EventSource sends when it reconnects); wins over the query"},
            q("index", "resume after this entry index (`1234`) or event id (`1234.0`)"),
            q("since_ms", "start with the kept events at or after this leader time (ms since the Unix epoch)"),
            q("type", "comma list of types or groups (`service` is every `service.*`)"),
            q("service", "comma list of service names"),
            q("node", "comma list of node ids")
        ],
        "responses": {
            "200": {"description": "the stream", "content": {"text/event-stream": {"schema": schema_ref("Event")}}},
            "400": {"description": "a bad id, time or filter; `field` names it", "content": {"application/json": {"schema": schema_ref("Error")}}}
        }
    }});
    let text = json!({"type": "string"});
    doc["components"]["schemas"]["Event"] = json!({"type": "object", "required": ["id", "index", "time_ms", "type", "message"],
        "description": "One thing that happened, told alike by every member from the Raft entry `index`. Fields that do not apply to a type are left out; fields are only ever added.",
        "properties": {
        "id": {"type": "string", "examples": ["1234.0"], "description": "INDEX.SEQ: the entry and the event's place among its events"},
        "index": {"type": "integer"},
        "time_ms": {"type": "integer", "description": "the leader's clock when the entry was proposed"},
        "type": {"enum": types},
        "service": text.clone(), "node": text.clone(), "task": text.clone(),
        "slot": {"type": "integer"}, "version": {"type": "integer", "description": "the service version the event is about"},
        "stack": text.clone(), "release": {"type": "integer"},
        "from": {"type": "string", "description": "before, as text: a task state, a replica count, a version, `2/5` for rollout progress"},
        "to": {"type": "string", "description": "after, likewise; for `events.lost`, the last entry not held"},
        "message": {"type": "string", "description": "one line for people"}}});
}

/// Logs and exec of replicas through the controllers (`api/sessions.rs`), and the agents' side.
fn sessions(doc: &mut Value) {
    let ndjson = |schema: &str, what: &str, errors: &[u16]| {
        answers_with(
            200,
            json!({"description": what, "content": {"application/x-ndjson": {"schema": schema_ref(schema)}}}),
            errors,
        )
    };
    let q = |name: &str, description: &str| json!({"name": name, "in": "query", "required": false, "schema": {"type": "string"}, "description": description});
    doc["paths"]["/v1/services/{name}/logs"] = json!({"get": {
        "summary": "every running replica's output, merged by whole lines (newline-delimited LogRecords, streamed; any member, the leader answers)",
        "description": "Lines of different replicas never mix; each replica's lines come in order, replicas as their lines arrive. A replica whose output cannot be had gets one record with `error` (its node is down, did not answer within 5 s). Following, replicas that start later are streamed from their first line; the answer ends when the client closes it or the service is removed. Blank lines are not records.",
        "parameters": [name_param(),
            q("follow", "true: keep streaming new lines"),
            q("tail", "the last N lines of each replica (`all` by default)"),
            q("since", "only lines written since: a duration back from now (`10m`), an RFC 3339 time or Unix seconds")],
        "responses": ndjson("LogRecord", "the lines", READ_ONE)
    }});
    doc["paths"]["/v1/services/{name}/exec"] = json!({"post": {
        "summary": "run a command in one replica wherever it runs (newline-delimited ExecRecords, streamed; the exit code last)",
        "description": "The answer begins once the replica's agent has taken the command: 404 for an unknown service or a slot without a running replica, 409 `node_down`, 504 `agent_timeout` when the node does not answer within 5 s. Closing the answer stops the output (the command itself runs on to its end).",
        "parameters": [name_param()],
        "requestBody": body("ExecBody"),
        "responses": ndjson("ExecRecord", "the command's output, then its exit code (or an error)", &[400, 404, 409, 413, 415, 429, 502, 503, 504])
    }});
    let protobuf = json!({"description": "protobuf (format 2)", "content": {"application/x-protobuf": {"schema": {"type": "string", "format": "binary"}}}});
    let node = json!({"name": "node", "in": "query", "required": true, "schema": {"type": "string"}, "description": "the asking agent's node id"});
    let wait = json!({"name": "wait_ms", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 0, "maximum": u64::MAX, "default": 0}});
    doc["paths"]["/v1/agent/sessions"] = json!({"get": {"summary": "agent: long poll of the sessions asked of the node (?node=ID&wait_ms=M, SessionRequests; format 2)", "parameters": [node.clone(), wait], "responses": answers_with(200, protobuf.clone(), AGENT)}});
    doc["paths"]["/v1/agent/sessions/{id}"] = json!({"parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}, node], "post": {"summary": "agent: a session's output, a stream of length-delimited SessionFrames (?node=ID; only the node asked; → StatusAck when the output ended or is no longer wanted; format 2)", "requestBody": {"required": true, "content": protobuf["content"].clone()}, "responses": answers_with(200, protobuf, AGENT)}});
    let text = json!({"type": "string"});
    doc["components"]["schemas"]["LogRecord"] = json!({"type": "object", "required": ["slot", "node", "task"], "properties": {
        "slot": {"type": "integer"}, "node": text.clone(), "task": text.clone(),
        "stream": {"enum": ["stdout", "stderr"]}, "time": {"type": "string", "description": "RFC 3339, when the line was written"},
        "line": {"type": "string", "description": "the line, without its newline"},
        "error": {"type": "string", "description": "why this replica's output stops here"}}});
    doc["components"]["schemas"]["ExecBody"] = json!({"type": "object", "required": ["cmd"], "additionalProperties": false, "properties": {
        "slot": {"type": ["integer", "null"], "minimum": 0, "maximum": u64::MAX, "description": "default: the running replica of the lowest slot"},
        "cmd": {"type": "array", "items": text.clone(), "minItems": 1},
        "env": {"type": "array", "items": {"type": "string", "examples": ["KEY=VALUE"]}},
        "workdir": text.clone(), "user": {"type": "string", "examples": ["1000:1000", "nobody"]}}});
    doc["components"]["schemas"]["ExecRecord"] = json!({"type": "object", "properties": {
        "replica": {"type": "object", "description": "the first record: where the command runs", "properties": {"slot": {"type": "integer"}, "node": text.clone(), "task": text.clone()}},
        "stream": {"enum": ["stdout", "stderr"]}, "data": text.clone(),
        "exit_code": {"type": "integer", "description": "the last record"},
        "error": {"type": "object", "description": "the last record when the command did not run or its output stopped", "properties": {"code": text.clone(), "message": text}}}});
}

/// `GET /v1/openapi.json`
pub async fn document() -> Json<Value> {
    Json(spec())
}

#[cfg(test)]
mod tests {
    use super::check::problems;
    use hoist_proto::cluster::{ServiceChange, ServiceVersion, VersionOrigin};
    use hoist_proto::format::samples;
    use serde_json::{json, Value};
    use std::sync::Arc;

    fn fits(schema: &str, value: impl serde::Serialize) {
        let doc = super::spec();
        let value = serde_json::to_value(value).unwrap();
        let found = problems(&doc, &super::schema_ref(schema), &value);
        assert!(found.is_empty(), "{schema}: {found:#?}\n{value:#}");
    }

    /// What the API answers is what the document says, for every sample of the golden files:
    /// every key documented, no `null` where the document has none, within its limits.
    #[test]
    fn answers_fit_the_document() {
        let specs = [
            hoist_proto::service::ServiceSpec::new("web", "busybox"),
            samples::spec_full(hoist_proto::format::CURRENT),
            samples::spec_complete(),
            samples::spec_autoscale(),
            samples::spec_mesh(),
        ];
        for spec in specs {
            let service = samples::service(spec.clone());
            fits("ServiceSpec", &spec);
            fits("Service", &service);
            fits(
                "ServiceChange",
                ServiceChange {
                    service: service.clone(),
                    changed: true,
                },
            );
            for origin in [VersionOrigin::Apply, VersionOrigin::Rollback { from: 1 }] {
                let v = ServiceVersion {
                    version: 2,
                    origin,
                    created_ms: 1,
                    spec: Arc::new(spec.clone()),
                };
                fits("ServiceVersion", v);
            }
        }
        fits("Task", samples::task());
        fits("Task", samples::task_draining());
        fits("Rollout", samples::rollout());
        fits("Stack", samples::stack());
        fits("Node", samples::node(hoist_proto::format::CURRENT));
        fits("AutoscaleDecision", samples::autoscale_decision());
        fits("HookToken", samples::hook_token());
        fits(
            "OperatorCertificate",
            crate::api::operator_certs::OperatorCertificate {
                certificate: "-----BEGIN CERTIFICATE-----".into(),
                ca_certificate: "-----BEGIN CERTIFICATE-----".into(),
                name: "ci".into(),
                role: hoist_proto::cluster::Role::Deployer,
                not_after_ms: 1,
            },
        );
    }

    /// Requests the document allows are read by the types the handlers decode.
    #[test]
    fn documented_requests_decode() {
        let spec: hoist_proto::service::ServiceSpec = serde_json::from_value(json!({
            "name": "db", "image": "busybox", "resources": {"cpu": null, "memory": null, "limits": null},
            "health_check": null, "autoscale": null, "user": null, "registry_auth": {"username": "u", "password": "p"}
        })).unwrap();
        assert_eq!(spec.name, "db");
        let doc = super::spec();
        let found = problems(
            &doc,
            &super::schema_ref("ServiceSpec"),
            &json!({"name": "db", "image": "busybox", "resources": {"cpu": null}}),
        );
        assert!(found.is_empty(), "{found:?}");
        let found = problems(
            &doc,
            &super::schema_ref("ServiceSpec"),
            &json!({"name": "db", "image": "busybox", "replicas": 100_001}),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        for body in [
            json!({"csr": "PEM"}),
            json!({"csr": "PEM", "lifetime_s": null}),
            json!({"csr": "PEM", "lifetime_s": 7_776_000}),
        ] {
            let found = problems(
                &doc,
                &super::schema_ref("OperatorCertificateRequest"),
                &body,
            );
            assert!(found.is_empty(), "{body}: {found:?}");
            let _: crate::api::operator_certs::CertificateRequest =
                serde_json::from_value(body).unwrap();
        }
    }

    /// Every operation names its success and error answers, every error as an `Error` body.
    #[test]
    fn every_operation_says_what_it_answers() {
        let doc = super::spec();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if method == "parameters" {
                    continue;
                }
                let responses = op["responses"]
                    .as_object()
                    .unwrap_or_else(|| panic!("{method} {path}"));
                assert!(
                    responses.keys().any(|k| k.starts_with('2')),
                    "{method} {path}"
                );
                for (status, r) in responses {
                    if status.starts_with('4') || status.starts_with('5') {
                        assert_eq!(
                            r["content"]["application/json"]["schema"]["$ref"],
                            "#/components/schemas/Error",
                            "{method} {path} {status}"
                        );
                    }
                }
                let text = serde_json::to_string(item).unwrap();
                for name in path
                    .split('{')
                    .skip(1)
                    .map(|p| p.split('}').next().unwrap())
                {
                    assert!(
                        text.contains(&format!("\"name\":\"{name}\"")),
                        "{method} {path}: path parameter {name}"
                    );
                }
            }
        }
    }

    /// The document has exactly the router's routes (the route table), each with the access
    /// the table gives it; only the peers' RPCs, `/metrics` and the dashboard's files are left out.
    #[test]
    fn the_document_has_exactly_the_routers_routes() {
        use crate::api::auth::Access;
        let doc = super::spec();
        let mut routed = std::collections::BTreeSet::new();
        for r in crate::api::routes() {
            if r.access == Access::Peer || r.path == "/metrics" || r.path.starts_with("/ui") {
                continue;
            }
            routed.insert(format!("{} {}", r.method, r.path));
            let op = &doc["paths"][r.path][r.method.to_lowercase()];
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            assert_eq!(secured, r.access != Access::Open, "{} {}", r.method, r.path);
            if r.access != Access::Open {
                for status in ["401", "403"] {
                    assert!(
                        op["responses"][status].is_object(),
                        "{} {}: {status}",
                        r.method,
                        r.path
                    );
                }
            }
        }
        let mut documented = std::collections::BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item
                .as_object()
                .unwrap()
                .keys()
                .filter(|m| *m != "parameters")
            {
                documented.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
        assert_eq!(routed, documented);
    }

    #[test]
    fn events_are_documented() {
        let doc = super::spec();
        assert!(doc["paths"]["/v1/events"]["get"].is_object());
        let kinds = &doc["components"]["schemas"]["Event"]["properties"]["type"]["enum"];
        assert_eq!(
            kinds.as_array().map(Vec::len),
            Some(hoist_proto::events::TYPES.len())
        );
    }

    #[test]
    fn every_schema_reference_resolves() {
        let doc = super::spec();
        let text = doc.to_string();
        for r in text.split("\"$ref\":\"#").skip(1) {
            let pointer = r.split('"').next().unwrap();
            assert!(doc.pointer(pointer).is_some(), "{pointer}");
        }
        let _: Value = doc;
    }
}
