//! Secrets and configs in the replicated state, and the data key's sealed copies (format 2).
//!
//! The state keeps only the current version's content of each file: a new version reaches every
//! running replica at once (the agents swap the file in place), so no task references an older
//! one and it is dropped at once. Content arrives sealed (`crate::keyring`), a config's as a
//! secret's: the state refuses it in the clear, so no bug upstream can put a value into the Raft
//! log.

use super::{invalid, not_found, State};
use crate::keyring::is_sealed;
use hoist_proto::files::{
    validate_file_name, FileKind, FileVersion, FileWrite, MemberKey, SealedKey, StoredFile,
    MAX_FILE_BYTES,
};
use hoist_proto::raft::{CommandError, ErrorCode, Response};
use std::collections::BTreeMap;

/// Whether `spec` references `kind` `name` with `on_update = "restart"`.
fn restarts_on(spec: &hoist_proto::service::ServiceSpec, kind: FileKind, name: &str) -> bool {
    let refs = match kind {
        FileKind::Secret => &spec.secrets,
        FileKind::Config => &spec.configs,
    };
    refs.iter().any(|r| {
        r.source == name
            && r.resolve(kind)
                .is_ok_and(|x| x.on_update == hoist_proto::files::OnUpdate::Restart)
    })
}

/// Room for the seal's header and tag over [`MAX_FILE_BYTES`].
const SEAL_OVERHEAD: usize = 64;

impl State {
    /// The secrets or the configs.
    pub fn files(&self, kind: FileKind) -> &BTreeMap<String, StoredFile> {
        match kind {
            FileKind::Secret => &self.secrets,
            FileKind::Config => &self.configs,
        }
    }

    fn files_mut(&mut self, kind: FileKind) -> &mut BTreeMap<String, StoredFile> {
        match kind {
            FileKind::Secret => &mut self.secrets,
            FileKind::Config => &mut self.configs,
        }
    }

    /// The services whose current spec references `kind` `name`.
    pub fn services_using(&self, kind: FileKind, name: &str) -> Vec<String> {
        self.services
            .iter()
            .filter(|(_, r)| {
                r.current()
                    .spec
                    .file_sources()
                    .any(|(k, n)| k == kind && n == name)
            })
            .map(|(s, _)| s.clone())
            .collect()
    }

    /// The current version of every file `spec` references that exists.
    pub fn file_versions(&self, spec: &hoist_proto::service::ServiceSpec) -> Vec<FileVersion> {
        spec.file_sources()
            .filter_map(|(kind, name)| {
                self.files(kind).get(name).map(|f| FileVersion {
                    kind,
                    name: name.to_string(),
                    version: f.version,
                })
            })
            .collect()
    }

    /// Refuses a spec that references a secret or config that does not exist.
    pub(super) fn check_file_references(
        &self,
        spec: &hoist_proto::service::ServiceSpec,
    ) -> Result<(), CommandError> {
        for (kind, refs) in [
            (FileKind::Secret, &spec.secrets),
            (FileKind::Config, &spec.configs),
        ] {
            for (i, r) in refs.iter().enumerate() {
                if !self.files(kind).contains_key(&r.source) {
                    return Err(invalid(
                        &format!("{}[{i}].source", kind.spec_key()),
                        format!(
                            "no {kind} named {:?}: create it first (`hoist {kind} create {} -f FILE`)",
                            r.source, r.source
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    pub(super) fn put_file(&mut self, w: &FileWrite, now: u64) -> Result<Response, CommandError> {
        validate_file_name(&w.name).map_err(|m| invalid("name", m))?;
        if w.size == 0 || w.size as usize > MAX_FILE_BYTES {
            return Err(invalid(
                "data",
                format!(
                    "a {} holds 1 to {MAX_FILE_BYTES} bytes, not {}",
                    w.kind, w.size
                ),
            ));
        }
        if !is_sealed(&w.data) {
            return Err(invalid(
                "data",
                format!(
                    "a {}'s content must be sealed under the cluster's data key",
                    w.kind
                ),
            ));
        }
        if w.data.len() > MAX_FILE_BYTES + SEAL_OVERHEAD {
            return Err(invalid("data", "the sealed content is too large"));
        }
        let files = self.files_mut(w.kind);
        let stored = match files.get(&w.name) {
            Some(f) => StoredFile {
                version: f.version + 1,
                updated_ms: now,
                size: w.size,
                data: w.data.clone(),
                ..f.clone()
            },
            None => StoredFile {
                kind: w.kind,
                name: w.name.clone(),
                version: 1,
                created_ms: now,
                updated_ms: now,
                size: w.size,
                data: w.data.clone(),
            },
        };
        let answer = stored.metadata();
        files.insert(w.name.clone(), stored);
        // Every node running a replica that references it learns of the new version through
        // its assignments' long poll.
        let nodes: Vec<String> = self
            .tasks
            .values()
            .filter(|t| {
                self.spec_of(&t.service, t.service_version)
                    .is_some_and(|s| s.file_sources().any(|(k, n)| k == w.kind && n == w.name))
            })
            .map(|t| t.node.clone())
            .collect();
        for node in nodes {
            self.touch_node(&node);
        }
        // Services that restart on a new version get one of their own: the same spec again,
        // which the reconciler rolls out through the update policy.
        let restarting: Vec<String> = self
            .services
            .iter()
            .filter(|(_, r)| restarts_on(&r.current().spec, w.kind, &w.name))
            .map(|(s, _)| s.clone())
            .collect();
        for service in restarting {
            self.restart_service(&service, now);
        }
        Ok(Response::File(Box::new(answer)))
    }

    pub(super) fn remove_file(
        &mut self,
        kind: FileKind,
        name: &str,
    ) -> Result<Response, CommandError> {
        if !self.files(kind).contains_key(name) {
            return Err(not_found(format!("no {kind} named {name:?}")));
        }
        let users = self.services_using(kind, name);
        if !users.is_empty() {
            return Err(CommandError {
                code: ErrorCode::Conflict,
                message: format!(
                    "{kind} {name:?} is used by {}: remove it from their specs first",
                    users
                        .iter()
                        .map(|s| format!("service {s:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                field: None,
            });
        }
        let removed = self
            .files_mut(kind)
            .remove(name)
            .map(|f| f.metadata())
            .ok_or_else(|| not_found(format!("no {kind} named {name:?}")))?;
        Ok(Response::File(Box::new(removed)))
    }

    pub(super) fn set_member_key(
        &mut self,
        member: u64,
        public_key: &[u8],
    ) -> Result<Response, CommandError> {
        if public_key.len() != 32 {
            return Err(invalid("public_key", "must be 32 bytes (X25519)"));
        }
        match self.member_keys.get(&member) {
            Some(k) if k.public_key == public_key => {}
            _ => {
                self.member_keys.insert(
                    member,
                    MemberKey {
                        public_key: public_key.to_vec(),
                        sealed_data_key: Vec::new(),
                    },
                );
            }
        }
        Ok(Response::Ok)
    }

    pub(super) fn set_autolock(&mut self, sealed: &[u8]) -> Result<Response, CommandError> {
        if !sealed.is_empty() && (!is_sealed(sealed) || sealed.len() > 256) {
            return Err(invalid(
                "sealed_unlock_key",
                "must be the unlock key sealed under the data key",
            ));
        }
        if !sealed.is_empty() && self.data_key_id.is_empty() {
            return Err(CommandError {
                code: ErrorCode::Conflict,
                message: "the cluster has no data key yet".into(),
                field: None,
            });
        }
        self.autolock = sealed.to_vec();
        Ok(Response::Ok)
    }

    pub(super) fn seal_data_key(
        &mut self,
        key_id: &str,
        keys: &[SealedKey],
    ) -> Result<Response, CommandError> {
        if key_id.is_empty() || key_id.len() > 64 || !key_id.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(invalid("key_id", "must be 1 to 64 hex digits"));
        }
        if !self.data_key_id.is_empty() && self.data_key_id != key_id {
            return Err(CommandError {
                code: ErrorCode::Conflict,
                message: format!(
                    "the cluster's data key is {}, not {key_id}",
                    self.data_key_id
                ),
                field: None,
            });
        }
        if keys
            .iter()
            .any(|k| k.sealed.is_empty() || k.sealed.len() > 256)
        {
            return Err(invalid("keys", "a sealed key is 1 to 256 bytes"));
        }
        self.data_key_id = key_id.to_string();
        for k in keys {
            // A copy for a public key the member has since replaced opens nothing: skipped.
            if let Some(m) = self.member_keys.get_mut(&k.member) {
                if m.public_key == k.public_key {
                    m.sealed_data_key = k.sealed.clone();
                }
            }
        }
        Ok(Response::Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyring::DataKey;
    use hoist_proto::raft::{Command, Request};

    fn apply(st: &mut State, command: Command) -> Response {
        st.apply(&Request {
            time_ms: 1_000,
            command,
        })
    }

    fn format2() -> State {
        State {
            cluster_format: 2,
            ..State::default()
        }
    }

    fn secret(name: &str, value: &[u8]) -> Command {
        let key = DataKey::generate();
        Command::PutFile(Box::new(FileWrite {
            kind: FileKind::Secret,
            name: name.into(),
            data: key.seal(&crate::keyring::file_aad(FileKind::Secret, name), value),
            size: value.len() as u64,
        }))
    }

    #[test]
    fn a_create_of_an_existing_name_makes_a_new_version_and_keeps_only_its_content() {
        let mut st = format2();
        let Response::File(f) = apply(&mut st, secret("db-pass", b"one")) else {
            panic!()
        };
        assert_eq!(
            (f.version, f.size, f.data.len()),
            (1, 3, 0),
            "no content in answers"
        );
        let Response::File(f) = apply(&mut st, secret("db-pass", b"second")) else {
            panic!()
        };
        assert_eq!((f.version, f.size), (2, 6));
        assert_eq!(st.secrets["db-pass"].version, 2);
        assert!(is_sealed(&st.secrets["db-pass"].data));
    }

    #[test]
    fn a_secret_in_the_clear_or_too_large_is_refused() {
        let mut st = format2();
        let clear = Command::PutFile(Box::new(FileWrite {
            kind: FileKind::Secret,
            name: "x".into(),
            data: b"hunter2".to_vec(),
            size: 7,
        }));
        let Response::Error(e) = apply(&mut st, clear) else {
            panic!()
        };
        assert!(e.message.contains("sealed"), "{}", e.message);
        let big = Command::PutFile(Box::new(FileWrite {
            kind: FileKind::Config,
            name: "x".into(),
            data: DataKey::generate().seal(b"config/x", &vec![1; MAX_FILE_BYTES + 1]),
            size: (MAX_FILE_BYTES + 1) as u64,
        }));
        assert!(matches!(apply(&mut st, big), Response::Error(_)));
        assert!(st.secrets.is_empty() && st.configs.is_empty());
    }

    #[test]
    fn a_file_in_use_cannot_be_removed_and_a_spec_cannot_use_a_missing_one() {
        let mut st = format2();
        let mut spec = hoist_proto::service::ServiceSpec::new("api", "busybox");
        spec.secrets = vec![hoist_proto::files::FileRef {
            source: "db-pass".into(),
            target: None,
            mode: None,
            uid: None,
            gid: None,
            on_update: None,
        }];
        let Response::Error(e) = apply(&mut st, Command::ApplyService(Box::new(spec.clone())))
        else {
            panic!()
        };
        assert_eq!(
            e.field.as_deref(),
            Some("secrets[0].source"),
            "{}",
            e.message
        );
        apply(&mut st, secret("db-pass", b"v"));
        assert!(matches!(
            apply(&mut st, Command::ApplyService(Box::new(spec))),
            Response::Service(_)
        ));
        let rm = || Command::RemoveFile {
            kind: FileKind::Secret,
            name: "db-pass".into(),
        };
        let Response::Error(e) = apply(&mut st, rm()) else {
            panic!()
        };
        assert_eq!(e.code, ErrorCode::Conflict);
        assert!(e.message.contains("\"api\""), "{}", e.message);
        apply(&mut st, Command::DeleteService { name: "api".into() });
        assert!(matches!(apply(&mut st, rm()), Response::File(_)));
        let Response::Error(e) = apply(&mut st, rm()) else {
            panic!()
        };
        assert_eq!(e.code, ErrorCode::NotFound);
    }

    #[test]
    fn a_new_version_restarts_the_services_that_ask_for_it_and_only_those() {
        let mut st = format2();
        apply(&mut st, secret("db-pass", b"v"));
        let reference = |on_update: Option<&str>| hoist_proto::files::FileRef {
            source: "db-pass".into(),
            target: None,
            mode: None,
            uid: None,
            gid: None,
            on_update: on_update.map(String::from),
        };
        for (name, on_update) in [("live", None), ("rolled", Some("restart"))] {
            let mut spec = hoist_proto::service::ServiceSpec::new(name, "busybox");
            spec.secrets = vec![reference(on_update)];
            apply(&mut st, Command::ApplyService(Box::new(spec)));
        }
        apply(&mut st, secret("db-pass", b"v2"));
        let live = st.history("live").unwrap();
        assert_eq!(live.len(), 1, "replaced in place: no new version");
        let rolled = st.history("rolled").unwrap();
        assert_eq!(rolled.len(), 2);
        assert_eq!(
            rolled[1].origin,
            hoist_proto::cluster::VersionOrigin::Restart { from: 1 }
        );
        assert_eq!(rolled[1].spec, rolled[0].spec);
    }

    #[test]
    fn the_first_data_key_wins_and_copies_follow_public_keys() {
        let mut st = format2();
        let set = |m: u64, k: u8| Command::SetMemberKey {
            member: m,
            public_key: vec![k; 32],
        };
        apply(&mut st, set(1, 1));
        apply(&mut st, set(2, 2));
        let seal = |id: &str, m: u64, k: u8| Command::SealDataKey {
            key_id: id.into(),
            keys: vec![SealedKey {
                member: m,
                public_key: vec![k; 32],
                sealed: vec![7; 80],
            }],
        };
        assert_eq!(apply(&mut st, seal("aa", 1, 1)), Response::Ok);
        assert_eq!(st.data_key_id, "aa");
        assert!(matches!(
            apply(&mut st, seal("bb", 2, 2)),
            Response::Error(_)
        ));
        // A copy for a key the member no longer has changes nothing.
        apply(&mut st, seal("aa", 2, 9));
        assert!(st.member_keys[&2].sealed_data_key.is_empty());
        apply(&mut st, seal("aa", 2, 2));
        assert!(!st.member_keys[&2].sealed_data_key.is_empty());
        // A new public key drops the member's copy.
        apply(&mut st, set(2, 3));
        assert!(st.member_keys[&2].sealed_data_key.is_empty());
        let short = Command::SetMemberKey {
            member: 4,
            public_key: vec![1; 5],
        };
        assert!(matches!(apply(&mut st, short), Response::Error(_)));
    }
}
