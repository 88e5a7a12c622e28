//! Who may call what, in the document: each operation's `security` and its 401/403 answers come
//! from the route table the router is made from (`api::routes()`, `auth::Access`), so the
//! document and the router cannot disagree; and the operator-token routes (`/v1/tokens`,
//! `/v1/tokens/certificate`, `/v1/whoami`, `/v1/cluster/audit`).

use super::answers::{answers, answers_with, describe, READ, WRITE, WRITE_BODY};
use super::schema_ref;
use crate::api::auth::{Access, Route};
use serde_json::{json, Value};

/// The operator-token routes and their schemas.
pub fn tokens(doc: &mut Value) {
    let name = json!({"type": "string", "minLength": 1, "maxLength": 63, "pattern": "^[a-z0-9][a-z0-9._-]*$"});
    let role = json!({"enum": ["viewer", "deployer", "admin"]});
    doc["paths"]["/v1/tokens"] = json!({
        "get": {"summary": "operator tokens: name, role, id, creation, last use (never the secret)", "parameters": [super::stale_param()], "responses": answers(200, json!({"type": "array", "items": schema_ref("OperatorToken")}), READ)},
        "post": {"summary": "make an operator token, answered once (only its hash is kept); 409 for a name in use", "requestBody": super::body("NewOperatorToken"), "responses": answers(201, schema_ref("CreatedOperatorToken"), WRITE_BODY)}});
    doc["paths"]["/v1/tokens/{name}"] = json!({"parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}],
        "delete": {"summary": "revoke an operator token (409 for the last admin's)", "responses": answers_with(204, json!({"description": "revoked"}), WRITE)}});
    let max_life = crate::api::operator_certs::MAX_LIFETIME.as_secs();
    doc["paths"]["/v1/tokens/certificate"] = json!({
        "post": {"summary": "sign a client certificate for the caller's operator token (authenticated by the token, or by a current certificate of it, to renew): over mutual TLS, without a bearer token, it acts as that token (role, name in the audit log) until it ends or the token is removed. Signed by the member that answers (no write); 400 for a signing request that does not parse or verify (`field`: csr) or a lifetime over 90 days, 503 while this member cannot open the cluster's CA",
            "requestBody": super::body("OperatorCertificateRequest"),
            "responses": answers(200, schema_ref("OperatorCertificate"), &[400, 413, 415, 503, 504])},
        "delete": {"summary": "revoke the operator token named `certificate` (as `DELETE /v1/tokens/{name}` does any other: the path of this route would hide it)", "responses": answers_with(204, json!({"description": "revoked"}), WRITE)}});
    doc["paths"]["/v1/whoami"] = json!({"get": {"summary": "the caller's token name and role, and the cluster's id", "responses": answers(200, schema_ref("WhoAmI"), &[])}});
    doc["paths"]["/v1/cluster/audit"] = json!({"get": {"summary": "the newest operator writes (who, when, what), oldest first",
        "parameters": [{"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 0, "maximum": u64::MAX}}, super::stale_param()],
        "responses": answers(200, json!({"type": "array", "items": schema_ref("AuditEntry")}), READ)}});
    let schemas = [
        (
            "NewOperatorToken",
            json!({"type": "object", "additionalProperties": false, "required": ["name", "role"], "properties": {"name": name.clone(), "role": role.clone()}}),
        ),
        (
            "CreatedOperatorToken",
            json!({"type": "object", "required": ["name", "role", "token"], "properties": {"name": name.clone(), "role": role.clone(), "token": {"type": "string", "description": "HOISTOP2-... (HOISTOP1-... when made before the cluster had its CA): send as `Authorization: Bearer`"}}}),
        ),
        (
            "OperatorToken",
            json!({"type": "object", "properties": {"name": {"type": "string"}, "role": role.clone(), "id": {"type": "string"}, "created_ms": {"type": "integer"}, "created_by": {"type": "string"}, "last_used_ms": {"type": "integer", "description": "0: never used"}}}),
        ),
        (
            "OperatorCertificateRequest",
            json!({"type": "object", "additionalProperties": false, "required": ["csr"], "properties": {
                "csr": {"type": "string", "description": "a PEM certificate signing request (PKCS#10) for the operator's key; only its key is used"},
                "lifetime_s": {"type": ["integer", "null"], "minimum": 1, "maximum": max_life, "description": "seconds (default: the cluster's --cert-lifetime, at most 90 days)"}}}),
        ),
        (
            "OperatorCertificate",
            json!({"type": "object", "required": ["certificate", "ca_certificate", "name", "role", "not_after_ms"], "properties": {
                "certificate": {"type": "string", "description": "PEM; names urn:hoist:operator:<token id>"},
                "ca_certificate": {"type": "string", "description": "the cluster's root (PEM): members are verified under it"},
                "name": name.clone(), "role": role.clone(),
                "not_after_ms": {"type": "integer", "minimum": 0, "description": "when it ends (ms since the epoch)"}}}),
        ),
        (
            "WhoAmI",
            json!({"type": "object", "properties": {"name": {"type": ["string", "null"]}, "role": {"anyOf": [role, {"type": "null"}]}, "cluster_id": {"type": ["string", "null"]}}}),
        ),
        (
            "AuditEntry",
            json!({"type": "object", "properties": {"index": {"type": "integer"}, "time_ms": {"type": "integer"}, "actor": {"type": "string"}, "action": {"type": "string"}, "error": {"type": ["string", "null"]}}}),
        ),
    ];
    for (n, s) in schemas {
        doc["components"]["schemas"][n] = s;
    }
}

/// Sets every documented operation's `security` and adds 401/403 from the route table.
pub fn secure(doc: &mut Value, routes: &[Route]) {
    doc["components"]["securitySchemes"]["operatorToken"] = json!({"type": "http", "scheme": "bearer",
        "description": "an operator token (`hoist token create`, or DATA_DIR/admin.token of the first member): viewer < deployer < admin"});
    doc["components"]["securitySchemes"]["operatorCertificate"] = json!({"type": "mutualTLS",
        "description": "instead of the token: a client certificate of it (`POST /v1/tokens/certificate`, `hoist token cert`) over TLS to a member; it acts as the token it names, with its role, while the token exists. A bearer token sent as well wins"});
    doc["components"]["securitySchemes"]["agentToken"] =
        json!({"type": "http", "scheme": "bearer", "description": "the cluster's join token"});
    for route in routes {
        let method = route.method.to_lowercase();
        let Some(op) = doc["paths"]
            .get_mut(route.path)
            .and_then(|item| item.get_mut(&method))
        else {
            continue;
        };
        let (security, errors): (Value, &[u16]) = match route.access {
            Access::Open => (json!([]), &[]),
            Access::Role(role) => {
                op["x-hoist-role"] = json!(role.to_string());
                (
                    json!([{"operatorToken": []}, {"operatorCertificate": []}]),
                    &[401, 403],
                )
            }
            Access::Agent => (json!([{"agentToken": []}]), &[401, 403]),
            Access::Hook => (json!([{"hookToken": []}]), &[401, 403]),
            Access::Peer => continue,
        };
        op["security"] = security;
        for &e in errors {
            op["responses"][e.to_string()] = json!({"description": describe(e), "content": {"application/json": {"schema": schema_ref("Error")}}});
        }
    }
}
