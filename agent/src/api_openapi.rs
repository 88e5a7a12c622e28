//! The OpenAPI 3.1 document of the agent's local API, served at `GET /v1/openapi.json` on its
//! socket: every route of `api.rs`, `api_images.rs` and `api_commit.rs`, their parameters, bodies
//! and answers. Every error is `{code, message}` (`hoist_proto::ApiError`) with the status
//! `AgentError::kind` gives it: 400 invalid, 404 not found, 409 conflict, 413 too large, 415 not
//! JSON, 500 internal. `tests/tests/api_conformance.rs` runs schemathesis against it.

use axum::Json;
use serde_json::{json, Value};

fn error(status: u16) -> Value {
    let what = match status {
        400 => "bad input: malformed JSON, an unknown or repeated field, a bad query or path value, or a request the agent refuses (invalid, not executable, command not found, failed to start)",
        404 => "no such container, image or volume",
        409 => "refused by the current state (a running container, a volume in use, a name taken)",
        413 => "the body is too large",
        415 => "the body is not application/json",
        _ => "the agent failed (`internal`): the message says what it was doing",
    };
    json!({"description": what, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

/// `responses`: `status` with `success`, and each error.
fn answers(status: u16, success: Value, errors: &[u16]) -> Value {
    let mut r = json!({});
    r[status.to_string()] = success;
    for &e in errors {
        r[e.to_string()] = error(e);
    }
    r
}

fn json_ok(schema: Value) -> Value {
    json!({"description": "ok", "content": {"application/json": {"schema": schema}}})
}

fn ndjson(what: &str) -> Value {
    json!({"description": what, "content": {"application/x-ndjson": {"schema": {"type": "object"}}}})
}

fn tar(what: &str) -> Value {
    json!({"description": what, "content": {"application/x-tar": {"schema": {"type": "string", "format": "binary"}}}})
}

fn body(schema: &str) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn path(name: &str, what: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}, "description": what})
}

fn query(name: &str, schema: Value, required: bool) -> Value {
    json!({"name": name, "in": "query", "required": required, "schema": schema})
}

const READ: &[u16] = &[400, 500];
const ONE: &[u16] = &[400, 404, 500];
const CHANGE: &[u16] = &[400, 404, 409, 500];
const JSON_BODY: &[u16] = &[400, 404, 409, 413, 415, 500];

/// The document.
pub fn spec() -> Value {
    let id = path("id", "a container's id, unique id prefix or name");
    let boolean = json!({"type": "boolean"});
    let reference = json!({"type": "string", "minLength": 1, "description": "an image reference (`busybox`, `registry:5000/app:1`, `app@sha256:...`, Docker's grammar: 400 otherwise) or image id"});
    let nothing = json!({"description": "done"});
    let mut paths = json!({
            "/v1/openapi.json": {"get": {"summary": "this document", "responses": answers(200, json_ok(json!({"type": "object"})), &[])}},
            "/v1/info": {"get": {"summary": "version, data dir, cgroups, bridge, counts", "responses": answers(200, json_ok(r("AgentInfo")), &[500])}},
            "/v1/overlay": {"get": {"summary": "this node's end of the overlay and each peer's health (404 when the node is on none)", "responses": answers(200, json_ok(json!({"type": "object"})), &[404, 500])}},
            "/v1/containers": {
                "get": {"summary": "containers (running ones unless all)", "parameters": [query("all", boolean.clone(), false)], "responses": answers(200, json_ok(json!({"type": "array", "items": r("ContainerInfo")})), READ)},
                "post": {"summary": "create and start a container; with attach=true the answer is its output then its exit, as newline-delimited records", "parameters": [query("attach", boolean.clone(), false)], "requestBody": body("CreateContainer"),
                    "responses": {"201": json_ok(r("ContainerInfo")), "200": ndjson("attached: output records, then the exit"), "400": error(400), "404": error(404), "409": error(409), "413": error(413), "415": error(415), "500": error(500)}}
            },
            "/v1/containers/{id}": {"parameters": [id.clone()],
                "get": {"summary": "one container", "responses": answers(200, json_ok(r("ContainerInfo")), ONE)},
                "delete": {"summary": "remove a container (force: stop it first)", "parameters": [query("force", boolean.clone(), false)], "responses": answers(204, nothing.clone(), CHANGE)}},
            "/v1/containers/{id}/stop": {"parameters": [id.clone()], "post": {"summary": "stop signal, then SIGKILL after t seconds (default: its grace period)", "parameters": [query("t", json!({"type": "integer", "minimum": 0, "maximum": u64::MAX}), false)], "responses": answers(200, json_ok(r("ContainerInfo")), CHANGE)}},
            "/v1/containers/{id}/kill": {"parameters": [id.clone()], "post": {"summary": "send a signal (default SIGKILL)", "parameters": [query("signal", json!({"type": "string", "examples": ["SIGTERM", "HUP", "9"]}), false)], "responses": answers(204, nothing.clone(), CHANGE)}},
            "/v1/containers/{id}/wait": {"parameters": [id.clone()], "post": {"summary": "wait for the container to exit", "responses": answers(200, json_ok(json!({"type": "object", "properties": {"exit": r("ExitInfo")}})), ONE)}},
            "/v1/containers/{id}/logs": {"parameters": [id.clone()], "get": {"summary": "the container's output as newline-delimited records", "parameters": [query("follow", boolean.clone(), false), query("tail", json!({"type": "integer", "minimum": 0, "maximum": u64::MAX}), false)], "responses": answers(200, ndjson("log records"), ONE)}},
            "/v1/containers/{id}/exec": {"parameters": [id.clone()], "post": {"summary": "run a command in the running container; newline-delimited output records, the exit code last", "requestBody": body("ExecRequest"), "responses": answers(200, ndjson("output records, then the exit code"), JSON_BODY)}},
            "/v1/containers/{id}/stats": {"parameters": [id.clone()], "get": {"summary": "CPU, memory, pids, network of one running container (409 when it is not running)", "responses": answers(200, json_ok(json!({"type": "object"})), CHANGE)}},
            "/v1/containers/{id}/commit": {"parameters": [id.clone()], "post": {"summary": "a new image from the container's changes", "requestBody": body("CommitRequest"), "responses": answers(201, json_ok(json!({"type": "object"})), JSON_BODY)}},
            "/v1/containers/{id}/changes": {"parameters": [id.clone()], "get": {"summary": "files added, changed and deleted against its image", "responses": answers(200, json_ok(json!({"type": "array", "items": {"type": "object"}})), ONE)}},
            "/v1/containers/{id}/export": {"parameters": [id], "get": {"summary": "the container's filesystem as a tar", "responses": answers(200, tar("the filesystem"), ONE)}}
    });
    let more = json!({
            "/v1/stats": {"get": {"summary": "stats of every running container", "responses": answers(200, json_ok(json!({"type": "array", "items": {"type": "object"}})), &[500])}},
            "/v1/images": {"get": {"summary": "images", "responses": answers(200, json_ok(json!({"type": "array", "items": {"type": "object"}})), &[500])}},
            "/v1/images/import": {"post": {"summary": "a rootfs tarball as an image", "parameters": [query("reference", json!({"type": "string"}), true)], "requestBody": {"required": true, "content": {"application/x-tar": {"schema": {"type": "string", "format": "binary"}}}}, "responses": answers(201, json_ok(json!({"type": "object"})), &[400, 409, 500])}},
            "/v1/images/{reference}": {"parameters": [path("reference", "an image reference or id")], "delete": {"summary": "remove an image (409 while a container uses it)", "responses": answers(204, nothing.clone(), CHANGE)}},
            "/v1/images/pull": {"post": {"summary": "pull from a registry; newline-delimited progress", "requestBody": body("PullRequest"), "responses": answers(200, ndjson("progress, then the result"), JSON_BODY)}},
            "/v1/images/push": {"post": {"summary": "push to a registry; newline-delimited progress", "requestBody": body("PushRequest"), "responses": answers(200, ndjson("progress, then the result"), JSON_BODY)}},
            "/v1/images/load": {"post": {"summary": "load a docker- or oci-archive", "parameters": [query("reference", json!({"type": "string"}), false)], "requestBody": {"required": true, "content": {"application/x-tar": {"schema": {"type": "string", "format": "binary"}}}}, "responses": answers(200, json_ok(json!({"type": "object"})), &[400, 409, 500])}},
            "/v1/images/save": {"get": {"summary": "an image as a docker-archive", "parameters": [query("reference", reference.clone(), true)], "responses": answers(200, tar("the archive"), ONE)}},
            "/v1/images/inspect": {"get": {"summary": "an image's manifest, config and layers", "parameters": [query("reference", reference.clone(), true)], "responses": answers(200, json_ok(json!({"type": "object"})), ONE)}},
            "/v1/images/history": {"get": {"summary": "an image's history", "parameters": [query("reference", reference, true)], "responses": answers(200, json_ok(json!({"type": "array", "items": {"type": "object"}})), ONE)}},
            "/v1/images/tag": {"post": {"summary": "name an image again", "requestBody": body("TagRequest"), "responses": answers(204, nothing.clone(), JSON_BODY)}},
            "/v1/images/prune": {"post": {"summary": "remove images no container uses and no name points to", "responses": answers(200, json_ok(json!({"type": "object"})), &[500])}},
            "/v1/registry/login": {"post": {"summary": "check credentials against a registry (the agent keeps none)", "requestBody": body("LoginRequest"), "responses": answers(204, nothing.clone(), JSON_BODY)}},
            "/v1/build": {"post": {"summary": "build an image: a JSON request line, then the context tar; newline-delimited build events", "requestBody": {"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}, "responses": answers(200, ndjson("build events"), &[400, 413, 500])}},
            "/v1/volumes": {"get": {"summary": "named volumes", "responses": answers(200, json_ok(json!({"type": "array", "items": {"type": "object"}})), &[500])}},
            "/v1/volumes/{name}": {"parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"}, "description": "a volume's name: letters, digits, `_.-`, starting with a letter or digit, at most 128 (400 otherwise)"}],
                "get": {"summary": "one named volume", "responses": answers(200, json_ok(json!({"type": "object"})), ONE)},
                "delete": {"summary": "remove a named volume (409 while a container names it)", "responses": answers(204, nothing, CHANGE)}}
    });
    if let (Some(p), Value::Object(more)) = (paths.as_object_mut(), more) {
        p.extend(more);
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Hoist agent API", "version": "1",
            "description": "The agent's local API, on its unix socket (`--socket`). Every error is a JSON `Error` body. JSON bodies need `Content-Type: application/json`; unknown fields are refused. Query parameters a route does not know are ignored; one given twice is a 400."},
        "paths": paths,
        "components": {"schemas": schemas()}
    })
}

fn schemas() -> Value {
    let strings = json!({"type": "array", "items": {"type": "string"}});
    let auth = json!({"type": ["object", "null"], "required": ["username", "password"], "properties": {"username": {"type": "string"}, "password": {"type": "string"}}});
    json!({
        "Error": {"type": "object", "required": ["code", "message"], "properties": {
            "code": {"type": "string", "examples": ["invalid", "not_found", "conflict", "internal"]}, "message": {"type": "string"}}},
        "AgentInfo": {"type": "object", "required": ["version", "data_dir", "running", "containers", "images"], "properties": {
            "version": {"type": "string"}, "data_dir": {"type": "string"}, "cgroup_version": {"type": "string"}, "cgroup_parent": {"type": "string"},
            "bridge": {"type": "string"}, "subnet": {"type": "string"}, "running": {"type": "integer"}, "containers": {"type": "integer"}, "images": {"type": "integer"}}},
        "ExitInfo": {"type": ["object", "null"], "properties": {"code": {"type": "integer"}, "signal": {"type": ["integer", "null"]}, "oom_killed": {"type": "boolean"}, "finished_at": {"type": "string"}}},
        "ContainerInfo": {"type": "object", "required": ["id", "name", "image", "status"], "properties": {
            "id": {"type": "string"}, "name": {"type": "string"}, "image": {"type": "string"}, "image_id": {"type": "string"},
            "command": strings, "status": {"type": "string"}, "created_at": {"type": "string"}, "started_at": {"type": ["string", "null"]},
            "pid": {"type": ["integer", "null"]}, "exit": {"$ref": "#/components/schemas/ExitInfo"}}},
        "CreateContainer": {"type": "object", "required": ["image"], "description": "`hoist_proto::CreateContainer`; the agent checks it with the controllers' rules (`proto/src/rules.rs`) and answers 400 naming the field", "properties": {
            "image": {"type": "string"}, "name": {"type": ["string", "null"]}, "cmd": strings, "entrypoint": {"type": ["array", "null"], "items": {"type": "string"}},
            "env": {"type": "array", "items": {"type": "string", "examples": ["KEY=VALUE"]}}, "workdir": {"type": ["string", "null"]}, "user": {"type": ["string", "null"]},
            "hostname": {"type": ["string", "null"]}, "resources": {"type": "object"}, "network": {}, "ports": {"type": "array", "items": {"type": "object"}},
            "volumes": {"type": "array", "items": {"type": "object"}}, "read_only": {"type": "boolean"}, "auto_remove": {"type": "boolean"}, "init": {"type": "boolean"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}}, "stop_signal": {"type": ["string", "null"]},
            "stop_grace_ms": {"type": ["integer", "null"], "minimum": 0}, "ulimits": {"type": "object"}, "tmpfs": {"type": "array", "items": {"type": "object"}},
            "named_volumes": {"type": "array", "items": {"type": "object"}}, "cap_add": strings, "cap_drop": strings,
            "no_new_privileges": {"type": ["boolean", "null"]}, "userns": {"type": "boolean"}}},
        "ExecRequest": {"type": "object", "required": ["cmd"], "properties": {"cmd": {"type": "array", "items": {"type": "string"}, "minItems": 1}, "env": strings, "workdir": {"type": ["string", "null"]}, "user": {"type": ["string", "null"]}}},
        "CommitRequest": {"type": "object", "required": ["reference"], "properties": {"reference": {"type": "string"}, "changes": strings, "message": {"type": ["string", "null"]}, "author": {"type": ["string", "null"]}}},
        "PullRequest": {"type": "object", "required": ["reference"], "properties": {"reference": {"type": "string"}, "platform": {"type": ["string", "null"], "examples": ["linux/amd64"]}, "auth": auth}},
        "PushRequest": {"type": "object", "required": ["reference"], "properties": {"reference": {"type": "string"}, "auth": auth}},
        "TagRequest": {"type": "object", "required": ["source", "target"], "description": "both image references (Docker's grammar: 400 otherwise)", "properties": {"source": {"type": "string", "minLength": 1}, "target": {"type": "string", "minLength": 1}}},
        "LoginRequest": {"type": "object", "required": ["registry", "auth"], "properties": {"registry": {"type": "string"}, "auth": {"type": "object", "required": ["username", "password"], "properties": {"username": {"type": "string"}, "password": {"type": "string"}}}}}
    })
}

/// `GET /v1/openapi.json`
pub async fn document() -> Json<Value> {
    Json(spec())
}

#[cfg(test)]
mod tests {
    /// Every route the routers declare is in the document, read from their source (axum's
    /// `Router` cannot list its routes), and nothing else is.
    #[test]
    fn the_document_lists_the_routers_routes() {
        let sources = [
            include_str!("api.rs"),
            include_str!("api_images.rs"),
            include_str!("api_commit.rs"),
        ];
        let mut routed = std::collections::BTreeSet::new();
        for src in sources {
            for part in src.split(".route(\"").skip(1) {
                let path = part.split('"').next().unwrap_or_default();
                let methods = part.split(')').next().unwrap_or_default();
                let rest: String = part.chars().take_while(|&c| c != '\n').collect();
                let _ = methods;
                for m in ["get", "post", "put", "delete"] {
                    if rest.contains(&format!("{m}(")) || rest.contains(&format!(".{m}(")) {
                        routed.insert(format!("{} {path}", m.to_uppercase()));
                    }
                }
            }
        }
        let doc = super::spec();
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
}
