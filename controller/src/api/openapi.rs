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
                    "memory": {"type": ["string", "integer"], "examples": ["512Mi", "1G"]}}},
                "ports": {"type": "array", "items": {"type": "object", "additionalProperties": false, "required": ["target"], "properties": {
                    "target": {"type": "integer", "minimum": 1, "maximum": 65535},
                    "published": {"type": ["integer", "null"], "minimum": 1, "maximum": 65535},
                    "protocol": {"enum": ["tcp", "udp"]}}}},
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
                    "order": {"enum": ["stop-first", "start-first"]}}},
                "placement": {"type": "object", "additionalProperties": false, "properties": {
                    "constraints": {"type": "array", "items": {"type": "string", "examples": ["node.labels.zone==a"]}},
                    "max_per_node": {"type": "integer", "minimum": 0}}},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "autoscale": {"type": ["object", "null"], "additionalProperties": false, "required": ["min", "max"], "properties": {
                    "min": {"type": "integer", "minimum": 0}, "max": {"type": "integer", "minimum": 0}}}}},
            "Service": {"type": "object", "properties": {"name": {"type": "string"}, "version": {"type": "integer"}, "spec": schema_ref("ServiceSpec"), "created_ms": {"type": "integer"}, "updated_ms": {"type": "integer"}}},
            "ServiceChange": {"type": "object", "properties": {"service": schema_ref("Service"), "changed": {"type": "boolean"}}},
            "ServiceVersion": {"type": "object", "properties": {"version": {"type": "integer"}, "origin": {}, "created_ms": {"type": "integer"}, "spec": schema_ref("ServiceSpec")}},
            "ScaleRequest": {"type": "object", "additionalProperties": false, "required": ["replicas"], "properties": {"replicas": {"type": "integer", "minimum": 0}}},
            "RollbackRequest": {"type": "object", "additionalProperties": false, "properties": {"version": {"type": ["integer", "null"]}}},
            "JoinRequest": {"type": "object", "additionalProperties": false, "required": ["id", "address"], "properties": {"id": {"type": "integer"}, "address": {"type": "string"}, "learner": {"type": "boolean"}}},
            "Member": {"type": "object", "properties": {"id": {"type": "integer"}, "address": {"type": "string"}, "voter": {"type": "boolean"}}},
            "ClusterStatus": {"type": "object", "properties": {
                "id": {"type": "integer"}, "role": {"type": "string"}, "leader": {"type": ["integer", "null"]},
                "leader_address": {"type": ["string", "null"]}, "term": {"type": "integer"},
                "last_log_index": {"type": ["integer", "null"]}, "last_applied": {"type": ["integer", "null"]},
                "snapshot_index": {"type": ["integer", "null"]}, "purged_index": {"type": ["integer", "null"]}, "snapshots_installed": {"type": "integer"}, "members": {"type": "array", "items": schema_ref("Member")},
                "state_hash": {"type": "string"}, "services": {"type": "integer"}}}
        }}
    })
}

/// `GET /v1/openapi.json`
pub async fn document() -> Json<Value> {
    Json(spec())
}
