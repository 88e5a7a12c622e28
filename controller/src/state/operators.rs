//! Operators' tokens and the audit log of their writes (format 2).
//!
//! A token is kept as the SHA-256 of its secret, so neither a snapshot nor the Raft log holds a
//! usable credential. Every write an operator makes through the API travels wrapped in
//! [`Command::Audited`]: applying it records who asked what, and whether it was refused, in the
//! same entry as the write itself, so the log can never disagree with the state.

use super::State;
use hoist_proto::cluster::{AuditEntry, OperatorToken, Role};
use hoist_proto::raft::{Command, CommandError, ErrorCode, Response};

/// How many audit entries the state keeps (the oldest go first).
pub const AUDIT_KEEP: usize = 1000;

fn invalid(field: &str, message: impl Into<String>) -> CommandError {
    CommandError {
        code: ErrorCode::Invalid,
        message: format!("{field}: {}", message.into()),
        field: Some(field.into()),
    }
}

/// Whether `name` may name a token: 1 to 63 lowercase letters, digits, `-`, `_` or `.`,
/// starting with a letter or digit.
pub fn valid_token_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a token name: 1 to 63 lowercase letters, digits, '-', '_' or '.', \
             starting with a letter or digit"
        ))
    }
}

impl State {
    pub(super) fn create_operator_token(
        &mut self,
        token: &OperatorToken,
    ) -> Result<Response, CommandError> {
        valid_token_name(&token.name).map_err(|m| invalid("name", m))?;
        if token.id.len() < 8
            || token.id.len() > 64
            || !token.id.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(invalid("id", "must be 8 to 64 hex digits"));
        }
        if token.secret_sha256.len() != 64
            || !token.secret_sha256.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(invalid("secret_sha256", "must be 64 hex digits"));
        }
        let taken = self.operator_tokens.contains_key(&token.name)
            || self.operator_tokens.values().any(|t| t.id == token.id);
        if taken {
            return Err(CommandError {
                code: ErrorCode::Conflict,
                message: format!(
                    "a token named {:?} exists: remove it first (hoist token rm {})",
                    token.name, token.name
                ),
                field: Some("name".into()),
            });
        }
        self.operator_tokens
            .insert(token.name.clone(), token.clone());
        Ok(Response::Ok)
    }

    pub(super) fn remove_operator_token(&mut self, name: &str) -> Result<Response, CommandError> {
        let Some(token) = self.operator_tokens.get(name) else {
            return Err(CommandError {
                code: ErrorCode::NotFound,
                message: format!("no token named {name:?}"),
                field: None,
            });
        };
        let admins = self
            .operator_tokens
            .values()
            .filter(|t| t.role == Role::Admin)
            .count();
        if token.role == Role::Admin && admins == 1 {
            return Err(CommandError {
                code: ErrorCode::Conflict,
                message: format!(
                    "{name:?} is the last admin token: create another admin token first, \
                     or nobody could manage the cluster"
                ),
                field: None,
            });
        }
        self.operator_tokens.remove(name);
        Ok(Response::Ok)
    }

    pub(super) fn touch_operator_tokens(&mut self, names: &[String], now: u64) -> Response {
        for name in names {
            if let Some(t) = self.operator_tokens.get_mut(name) {
                t.last_used_ms = t.last_used_ms.max(now);
            }
        }
        Response::Ok
    }

    /// Appends to the audit log, dropping the oldest entries past [`AUDIT_KEEP`].
    pub(super) fn record_audit(
        &mut self,
        actor: &str,
        command: &Command,
        response: &Response,
        now: u64,
    ) {
        let error = match response {
            Response::Error(e) => Some(e.message.clone()),
            _ => None,
        };
        self.audit.push_back(AuditEntry {
            index: self.index,
            time_ms: now,
            actor: actor.to_string(),
            action: describe(command),
            error,
        });
        while self.audit.len() > AUDIT_KEEP {
            self.audit.pop_front();
        }
    }
}

/// What an operator's command asks, in a few words, for the audit log. Never a secret: a
/// registry password, a token's hash or a snapshot's bytes are not described.
pub fn describe(command: &Command) -> String {
    match command {
        Command::ApplyService(spec) => format!("apply service {}", spec.name),
        Command::DeleteService { name } => format!("delete service {name}"),
        Command::ScaleService { name, replicas } => format!("scale service {name} to {replicas}"),
        Command::RollbackService { name, version } => match version {
            Some(v) => format!("roll back service {name} to version {v}"),
            None => format!("roll back service {name}"),
        },
        Command::RemoveNode { id } => format!("remove node {id}"),
        Command::SetNodeAvailability { id, availability } => {
            format!("set node {id} availability {availability:?}").to_lowercase()
        }
        Command::SetNodeLabels { id, set, remove } => {
            let mut parts: Vec<String> = set.iter().map(|(k, v)| format!("{k}={v}")).collect();
            parts.extend(remove.iter().map(|k| format!("{k}-")));
            format!("label node {id} {}", parts.join(" "))
        }
        Command::Restore(bytes) => format!("restore a snapshot of {} bytes", bytes.len()),
        Command::InitCluster { .. } => "make the cluster's join token".into(),
        Command::DeployStack(d) => format!(
            "deploy stack {} ({} services{})",
            d.name,
            d.services.len(),
            if d.prune { ", prune" } else { "" }
        ),
        Command::RemoveStack { name } => format!("remove stack {name}"),
        Command::Autoscale(d) => format!("scale service {} to {} ({})", d.service, d.to, d.reason),
        Command::CreateHookToken(t) => match &t.service {
            Some(s) => format!("create hook token {} for service {s}", t.id),
            None => format!("create hook token {}", t.id),
        },
        Command::RemoveHookToken { id } => format!("remove hook token {id}"),
        Command::CreateOperatorToken(t) => format!("create token {} ({})", t.name, t.role),
        Command::RemoveOperatorToken { name } => format!("remove token {name}"),
        // The name and size only: never the content.
        Command::PutFile(w) => format!("create {} {} ({} bytes)", w.kind, w.name, w.size),
        Command::RemoveFile { kind, name } => format!("remove {kind} {name}"),
        Command::SetAutolock { sealed_unlock_key } if sealed_unlock_key.is_empty() => {
            "turn autolock off".into()
        }
        Command::SetAutolock { .. } => "turn autolock on (a new unlock key)".into(),
        // Never the key, nor the secret.
        Command::SetClusterCa(_) => "make the cluster CA".into(),
        Command::RotateClusterCa(ca) => format!("rotate the cluster CA to sha256 {}", ca.digest),
        Command::RotateJoinSecret { manager: false, .. } => "rotate the worker join token".into(),
        Command::RotateJoinSecret { manager: true, .. } => "rotate the manager join token".into(),
        Command::Batch(commands) => commands.iter().map(describe).collect::<Vec<_>>().join("; "),
        Command::Audited { command, .. } => describe(command),
        // Not an operator's: the leader's and agents' own commands are not audited.
        other => {
            let debug = format!("{other:?}");
            let kind = debug
                .split(|c: char| !c.is_alphanumeric())
                .next()
                .unwrap_or("command");
            format!("{kind} (internal)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::req;

    fn token(name: &str, role: Role, id: &str) -> OperatorToken {
        OperatorToken {
            name: name.into(),
            role,
            id: id.into(),
            secret_sha256: "ab".repeat(32),
            created_ms: 1,
            created_by: "bootstrap".into(),
            last_used_ms: 0,
        }
    }

    fn format2() -> State {
        let mut st = State::default();
        st.apply(&req(1, Command::SetClusterFormat { format: 2 }));
        st
    }

    #[test]
    fn tokens_are_unique_and_the_last_admin_stays() {
        let mut st = format2();
        let ok = |r: Response| assert_eq!(r, Response::Ok);
        ok(st.apply(&req(
            2,
            Command::CreateOperatorToken(token("root", Role::Admin, "0000aaaa")),
        )));
        let again = st.apply(&req(
            3,
            Command::CreateOperatorToken(token("root", Role::Viewer, "0000bbbb")),
        ));
        assert!(matches!(again, Response::Error(ref e) if e.code == ErrorCode::Conflict));
        let bad = st.apply(&req(
            3,
            Command::CreateOperatorToken(token("Root!", Role::Viewer, "0000cccc")),
        ));
        assert!(matches!(bad, Response::Error(ref e) if e.field.as_deref() == Some("name")));
        let last = st.apply(&req(
            4,
            Command::RemoveOperatorToken {
                name: "root".into(),
            },
        ));
        assert!(
            matches!(last, Response::Error(ref e) if e.message.contains("last admin")),
            "{last:?}"
        );
        ok(st.apply(&req(
            5,
            Command::CreateOperatorToken(token("ops", Role::Admin, "0000dddd")),
        )));
        ok(st.apply(&req(
            6,
            Command::RemoveOperatorToken {
                name: "root".into(),
            },
        )));
        ok(st.apply(&req(
            7,
            Command::TouchOperatorTokens {
                names: vec!["ops".into(), "gone".into()],
            },
        )));
        assert_eq!(st.operator_tokens["ops"].last_used_ms, 7);
        assert_eq!(st.operator_tokens.len(), 1);
    }

    #[test]
    fn an_audited_write_is_applied_and_logged_even_when_refused() {
        let mut st = format2();
        st.index = 10;
        let audited = |actor: &str, c: Command| Command::Audited {
            actor: actor.into(),
            command: Box::new(c),
        };
        let r = st.apply(&req(
            2,
            audited(
                "ci",
                Command::ScaleService {
                    name: "nope".into(),
                    replicas: 3,
                },
            ),
        ));
        assert!(matches!(r, Response::Error(ref e) if e.code == ErrorCode::NotFound));
        let r = st.apply(&req(
            3,
            audited(
                "ci",
                Command::CreateOperatorToken(token("viewer", Role::Viewer, "0000eeee")),
            ),
        ));
        assert_eq!(r, Response::Ok);
        assert!(st.operator_tokens.contains_key("viewer"));
        let log: Vec<_> = st
            .audit
            .iter()
            .map(|e| (e.actor.as_str(), e.action.as_str(), e.error.is_some()))
            .collect();
        assert_eq!(
            log,
            [
                ("ci", "scale service nope to 3", true),
                ("ci", "create token viewer (viewer)", false)
            ]
        );
        assert_eq!((st.audit[1].index, st.audit[1].time_ms), (10, 3));
        // Nested: refused, and recorded as nothing.
        let r = st.apply(&req(4, audited("ci", audited("x", Command::Noop))));
        assert!(matches!(r, Response::Error(ref e) if e.code == ErrorCode::Invalid));
        assert_eq!(st.audit.len(), 2);
    }

    #[test]
    fn the_log_keeps_the_newest_entries() {
        let mut st = format2();
        for i in 0..AUDIT_KEEP as u64 + 5 {
            st.apply(&req(
                i + 2,
                Command::Audited {
                    actor: "a".into(),
                    command: Box::new(Command::Noop),
                },
            ));
        }
        assert_eq!(st.audit.len(), AUDIT_KEEP);
        assert_eq!(st.audit.front().unwrap().time_ms, 7);
    }

    #[test]
    fn an_image_without_tokens_keeps_the_clusters() {
        let mut st = format2();
        st.apply(&req(
            2,
            Command::CreateOperatorToken(token("root", Role::Admin, "0000aaaa")),
        ));
        let old = crate::state::encode_snapshot(&State::default(), 1).unwrap();
        let r = st.apply(&req(
            3,
            Command::Audited {
                actor: "root".into(),
                command: Box::new(Command::Restore(old)),
            },
        ));
        assert_eq!(r, Response::Restored(0));
        assert!(st.operator_tokens.contains_key("root"));
        assert_eq!(st.audit.len(), 1);
        assert!(st.audit[0].action.starts_with("restore a snapshot"));
    }

    #[test]
    fn descriptions_hold_no_secret() {
        let mut spec = hoist_proto::service::ServiceSpec::new("web", "busybox");
        spec.registry_auth = Some(hoist_proto::image::RegistryAuth {
            username: "u".into(),
            password: "hunter2".into(),
        });
        let d = describe(&Command::ApplyService(Box::new(spec)));
        assert_eq!(d, "apply service web");
        let d = describe(&Command::CreateOperatorToken(token(
            "ci",
            Role::Deployer,
            "0000ffff",
        )));
        assert!(!d.contains(&"ab".repeat(32)), "{d}");
        assert_eq!(describe(&Command::Noop), "Noop (internal)");
        let d = describe(&Command::RotateJoinSecret {
            secret: "ffeeddccbbaa99887766554433221100".into(),
            manager: false,
        });
        assert_eq!(d, "rotate the worker join token");
        let ca = hoist_proto::format::samples::cluster_ca();
        let d = describe(&Command::SetClusterCa(Box::new(ca)));
        assert_eq!(d, "make the cluster CA");
    }
}
