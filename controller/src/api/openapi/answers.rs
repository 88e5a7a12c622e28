//! What an operation answers: its success, and each error status it can give, with one wording
//! per status. Every error is an `Error` JSON body (`api/error.rs`); the lists below are what
//! the handlers and the layers in front of them (leader forwarding, body limits, query parsing)
//! can answer, so that a client, and schemathesis, can rely on "any other status is a bug".

use serde_json::{json, Value};

/// A read of the replicated state: a bad `stale` or other query value (400), no leader to
/// confirm with or reach (503), a forwarded read that timed out (504).
pub const READ: &[u16] = &[400, 503, 504];
/// A read of one named thing: [`READ`] and 404.
pub const READ_ONE: &[u16] = &[400, 404, 503, 504];
/// A write without a body: refused by the state (404, 409; 422 for a name no such thing can
/// have), or by consensus (503, 504).
pub const WRITE: &[u16] = &[404, 409, 422, 503, 504];
/// The agents' protocol (`/v1/agent/...`, binary bodies): a body or query that does not decode
/// (400), a bad join token (401), a node answering for another (403), an unknown node or
/// session (404), an agent too old (426), and the forwarding statuses.
pub const AGENT: &[u16] = &[400, 401, 403, 404, 409, 413, 415, 426, 503, 504];
/// A write with a JSON body.
pub const WRITE_BODY: &[u16] = &[400, 404, 409, 413, 415, 422, 503, 504];

/// The words of an error status, the same on every operation.
pub fn describe(status: u16) -> &'static str {
    match status {
        400 => "bad input: malformed JSON, an unknown or repeated field, a bad query or path value; `field` names it",
        401 => "no credentials, or unknown ones",
        403 => "the credentials' role may not do this",
        404 => "no such service, version, stack, node, member or token",
        409 => "refused by the current state (`conflict`, `node_down`), or the cluster must be upgraded first (`needs_upgrade`)",
        413 => "the body is too large",
        415 => "the body is not application/json",
        422 => "well-formed but invalid; `field` names the first problem and `errors` lists every one",
        426 => "the joining member's Hoist cannot read what the cluster writes, or the cluster what it writes (`incompatible_version`); a member says its version in `hoist-version` and `hoist-format` headers",
        429 => "too many sessions at once (`busy`); retry later",
        502 => "the replica's agent could not run the command",
        503 => "no leader, no quorum, or the leader could not be reached; nothing was done; retry",
        504 => "outcome_unknown: a write was proposed but not seen committed (it may or may not be applied), or an agent did not answer in time",
        _ => "error",
    }
}

fn error(status: u16) -> Value {
    json!({"description": describe(status), "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

/// `responses` of an operation answering `schema` as JSON with `status`, or one of `errors`.
pub fn answers(status: u16, schema: Value, errors: &[u16]) -> Value {
    answers_with(
        status,
        json!({"description": "ok", "content": {"application/json": {"schema": schema}}}),
        errors,
    )
}

/// Like [`answers`], with the success response object given whole (another media type, none).
pub fn answers_with(status: u16, success: Value, errors: &[u16]) -> Value {
    let mut r = json!({});
    r[status.to_string()] = success;
    for &e in errors {
        r[e.to_string()] = error(e);
    }
    r
}
