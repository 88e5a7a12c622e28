//! Secrets and configs in the replicated state, and the data key's sealed copies (format 2).
//!
//! The state keeps only the current version's content of each file: a new version reaches every
//! running replica at once (the agents swap the file in place), so no task references an older
//! one and it is dropped at once. Content arrives sealed (`crate::keyring`), a config's as a
//! secret's: the state refuses it in the clear, so no bug upstream can put a value into the Raft
//! log.

use super::{invalid, not_found, Map, State};
use crate::keyring::is_sealed;
use hoist_proto::cluster::ClusterCa;
use hoist_proto::files::{
    validate_file_name, FileKind, FileVersion, FileWrite, MemberKey, SealedKey, StoredFile,
    MAX_FILE_BYTES,
};
use hoist_proto::raft::{CommandError, ErrorCode, Response};

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

/// The largest root certificate (PEM) and sealed CA key the state takes.
const MAX_CA_PEM_BYTES: usize = 16 * 1024;

impl State {
    /// The secrets or the configs.
    pub fn files(&self, kind: FileKind) -> &Map<String, StoredFile> {
        match kind {
            FileKind::Secret => &self.secrets,
            FileKind::Config => &self.configs,
        }
    }

    fn files_mut(&mut self, kind: FileKind) -> &mut Map<String, StoredFile> {
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
        let tasks: Vec<(String, String)> = self
            .tasks
            .values()
            .filter(|t| {
                self.spec_of(&t.service, t.service_version)
                    .is_some_and(|s| s.file_sources().any(|(k, n)| k == w.kind && n == w.name))
            })
            .map(|t| (t.node.to_string(), t.id.to_string()))
            .collect();
        for (node, task) in tasks {
            self.touch_task(&node, &task);
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

    /// The cluster's root CA, once: the same CA again changes nothing, another is refused.
    pub(super) fn set_cluster_ca(&mut self, ca: &ClusterCa) -> Result<Response, CommandError> {
        self.check_cluster_ca(ca)?;
        match &self.ca {
            Some(current) if current.digest == ca.digest => {}
            Some(current) => {
                return Err(CommandError {
                    code: ErrorCode::Conflict,
                    message: format!("the cluster already has a CA (sha256 {})", current.digest),
                    field: None,
                })
            }
            None => self.ca = Some(ca.clone()),
        }
        Ok(Response::Ok)
    }

    /// What every root the state takes must be: a digest, a PEM certificate, a sealed key, and
    /// a data key to have sealed it under.
    fn check_cluster_ca(&self, ca: &ClusterCa) -> Result<(), CommandError> {
        if !hoist_proto::node::is_ca_digest(&ca.digest) {
            return Err(invalid(
                "digest",
                "must be the SHA-256 of the root certificate: 64 lowercase hex digits",
            ));
        }
        let pem_ok = |text: &str, empty_ok: bool| {
            (empty_ok && text.is_empty())
                || (text.trim_start().starts_with("-----BEGIN CERTIFICATE-----")
                    && text.len() <= MAX_CA_PEM_BYTES)
        };
        for (field, text, empty_ok) in [
            ("cert_pem", &ca.cert_pem, false),
            ("previous_pem", &ca.previous_pem, true),
            ("cross_pem", &ca.cross_pem, true),
        ] {
            if !pem_ok(text, empty_ok) {
                return Err(invalid(
                    field,
                    format!("must be a PEM certificate of at most {MAX_CA_PEM_BYTES} bytes"),
                ));
            }
        }
        if ca.previous_pem.is_empty() != ca.cross_pem.is_empty() {
            return Err(invalid(
                "cross_pem",
                "a rotated root comes with both the previous root and its cross-signed certificate",
            ));
        }
        if !is_sealed(&ca.sealed_key) || ca.sealed_key.len() > MAX_CA_PEM_BYTES + SEAL_OVERHEAD {
            return Err(invalid(
                "sealed_key",
                "must be the CA's private key sealed under the data key",
            ));
        }
        if self.data_key_id.is_empty() {
            return Err(CommandError {
                code: ErrorCode::Conflict,
                message: "the cluster has no data key yet".into(),
                field: None,
            });
        }
        Ok(())
    }

    /// `hoist cluster ca rotate`: `next` replaces the current root, which it names as its
    /// previous one (so that a rotation computed against a root that has changed since is
    /// refused). Both stay trusted until [`State::finish_ca_rotation`]. The same rotation again
    /// changes nothing; another one while a rotation is going on is refused.
    pub(super) fn rotate_cluster_ca(&mut self, next: &ClusterCa) -> Result<Response, CommandError> {
        self.check_cluster_ca(next)?;
        let conflict = |message: String| CommandError {
            code: ErrorCode::Conflict,
            message,
            field: None,
        };
        let Some(current) = &self.ca else {
            return Err(conflict(
                "the cluster has no CA to rotate yet (it is made once the cluster runs at \
                 format 2 and has its data key)"
                    .into(),
            ));
        };
        if current.digest == next.digest {
            return Ok(Response::Ok);
        }
        if current.rotating() {
            return Err(conflict(format!(
                "a rotation to the root sha256 {} is going on: it ends by itself once every \
                 member and node holds a certificate under it (`hoist cluster ca`)",
                current.digest
            )));
        }
        if next.previous_pem.is_empty() || next.previous_pem != current.cert_pem {
            return Err(conflict(format!(
                "the new root must name the current one (sha256 {}) as its previous root",
                current.digest
            )));
        }
        self.ca = Some(next.clone());
        Ok(Response::Ok)
    }

    /// The end of a rotation to the root `digest`: the previous root is no longer trusted.
    /// Again, or once it is over, changes nothing; for another root it is refused.
    pub(super) fn finish_ca_rotation(&mut self, digest: &str) -> Result<Response, CommandError> {
        match self.ca.as_mut() {
            Some(ca) if ca.digest == digest => {
                ca.previous_pem.clear();
                ca.cross_pem.clear();
                Ok(Response::Ok)
            }
            other => Err(CommandError {
                code: ErrorCode::Conflict,
                message: format!(
                    "the cluster's root is {}, not sha256 {digest}",
                    other.map_or("missing".to_string(), |c| format!("sha256 {}", c.digest))
                ),
                field: None,
            }),
        }
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

    fn ca(digest: &str) -> ClusterCa {
        ClusterCa {
            cert_pem: hoist_proto::format::samples::CA_CERT_PEM.into(),
            sealed_key: DataKey::generate().seal(b"cluster-ca", b"-----BEGIN PRIVATE KEY-----"),
            digest: digest.into(),
            created_ms: 1_000,
            previous_pem: String::new(),
            cross_pem: String::new(),
        }
    }

    #[test]
    fn a_root_rotates_once_at_a_time_and_its_end_drops_the_previous_root() {
        let mut st = with_data_key();
        let first = ca(&"3c".repeat(32));
        let rotate = |c: &ClusterCa| Command::RotateClusterCa(Box::new(c.clone()));
        // Nothing to rotate yet.
        let next = ClusterCa {
            cert_pem: first.cert_pem.replace("MIIBfT", "MIIBgT"),
            previous_pem: first.cert_pem.clone(),
            cross_pem: first.cert_pem.replace("MIIBfT", "MIIBhT"),
            ..ca(&"4d".repeat(32))
        };
        assert!(
            matches!(apply(&mut st, rotate(&next)), Response::Error(e) if e.code == ErrorCode::Conflict)
        );
        apply(&mut st, Command::SetClusterCa(Box::new(first.clone())));
        // A rotated root without its cross-signed certificate is invalid.
        let bare = ClusterCa {
            cross_pem: String::new(),
            ..next.clone()
        };
        assert!(
            matches!(apply(&mut st, rotate(&bare)), Response::Error(e) if e.field.as_deref() == Some("cross_pem"))
        );
        // One that does not name the current root as previous: refused (a stale rotation).
        let stale = ClusterCa {
            previous_pem: next.cross_pem.clone(),
            ..next.clone()
        };
        assert!(
            matches!(apply(&mut st, rotate(&stale)), Response::Error(e) if e.code == ErrorCode::Conflict)
        );
        assert_eq!(st.ca.as_ref(), Some(&first));
        assert_eq!(apply(&mut st, rotate(&next)), Response::Ok);
        let now = st.ca.clone().unwrap();
        assert!(now.rotating());
        assert_eq!(now.digest, next.digest);
        assert!(now.trusted_pem().contains(&first.cert_pem));
        // The same rotation again changes nothing; another during it is refused.
        assert_eq!(apply(&mut st, rotate(&next)), Response::Ok);
        let third = ClusterCa {
            previous_pem: next.cert_pem.clone(),
            ..ca(&"5e".repeat(32))
        };
        let third = ClusterCa {
            cross_pem: third.cert_pem.clone(),
            ..third
        };
        let Response::Error(e) = apply(&mut st, rotate(&third)) else {
            panic!("a second rotation was taken")
        };
        assert!(e.message.contains("is going on"), "{}", e.message);
        // SetClusterCa cannot replace it either.
        assert!(matches!(
            apply(&mut st, Command::SetClusterCa(Box::new(third.clone()))),
            Response::Error(_)
        ));
        // The end of another root's rotation is refused; this one's drops the previous root.
        let finish = |d: &str| Command::FinishCaRotation { digest: d.into() };
        assert!(matches!(
            apply(&mut st, finish(&"3c".repeat(32))),
            Response::Error(_)
        ));
        assert_eq!(apply(&mut st, finish(&"4d".repeat(32))), Response::Ok);
        let done = st.ca.clone().unwrap();
        assert!(!done.rotating());
        assert_eq!(done.trusted_pem(), next.cert_pem);
        assert!(done.cross_pem.is_empty());
        assert_eq!(apply(&mut st, finish(&"4d".repeat(32))), Response::Ok);
        // And the next rotation may start.
        assert_eq!(apply(&mut st, rotate(&third)), Response::Ok);
    }

    fn with_data_key() -> State {
        State {
            data_key_id: "3f2a9c01".into(),
            ..format2()
        }
    }

    #[test]
    fn the_cluster_ca_is_set_once() {
        let mut st = with_data_key();
        let first = ca(&"3c".repeat(32));
        let set = |c: &ClusterCa| Command::SetClusterCa(Box::new(c.clone()));
        assert_eq!(apply(&mut st, set(&first)), Response::Ok);
        assert_eq!(st.ca.as_ref(), Some(&first));
        // The same CA again (another leader's proposal, say): nothing changes.
        let again = ClusterCa {
            created_ms: 2_000,
            ..ca(&"3c".repeat(32))
        };
        assert_eq!(apply(&mut st, set(&again)), Response::Ok);
        assert_eq!(st.ca.as_ref(), Some(&first));
        // Another one: refused, naming the cluster's.
        let Response::Error(e) = apply(&mut st, set(&ca(&"4d".repeat(32)))) else {
            panic!()
        };
        assert_eq!(e.code, ErrorCode::Conflict);
        assert_eq!(
            e.message,
            format!("the cluster already has a CA (sha256 {})", "3c".repeat(32))
        );
        assert_eq!(st.ca.as_ref(), Some(&first));
    }

    #[test]
    fn a_cluster_ca_needs_its_key_sealed_a_digest_and_the_data_key() {
        let digest = "3c".repeat(32);
        let refused = |mut st: State, c: ClusterCa, field: Option<&str>| {
            let Response::Error(e) = apply(&mut st, Command::SetClusterCa(Box::new(c))) else {
                panic!("taken")
            };
            assert_eq!(e.field.as_deref(), field, "{}", e.message);
            assert!(st.ca.is_none());
        };
        let clear = ClusterCa {
            sealed_key: b"-----BEGIN PRIVATE KEY-----\nMC4CAQAw".to_vec(),
            ..ca(&digest)
        };
        refused(with_data_key(), clear, Some("sealed_key"));
        refused(with_data_key(), ca(&"3C".repeat(32)), Some("digest"));
        refused(with_data_key(), ca("3c3c"), Some("digest"));
        let not_pem = ClusterCa {
            cert_pem: "MIIB".into(),
            ..ca(&digest)
        };
        refused(with_data_key(), not_pem, Some("cert_pem"));
        refused(format2(), ca(&digest), None);
        // Format 2 only.
        let mut old = State {
            cluster_format: 1,
            data_key_id: "3f2a9c01".into(),
            ..State::default()
        };
        let r = apply(&mut old, Command::SetClusterCa(Box::new(ca(&digest))));
        assert!(matches!(r, Response::Error(ref e) if e.code == ErrorCode::Conflict));
        assert!(old.ca.is_none());
    }

    #[test]
    fn a_restore_keeps_the_running_clusters_ca() {
        let mut st = with_data_key();
        let first = ca(&"3c".repeat(32));
        apply(&mut st, Command::SetClusterCa(Box::new(first.clone())));
        let image = crate::state::encode_snapshot(&format2(), 2).unwrap();
        assert!(matches!(
            apply(&mut st, Command::Restore(image)),
            Response::Restored(0)
        ));
        assert_eq!(st.ca.as_ref(), Some(&first));
        // An image with another CA (another cluster's, sealed under a data key this cluster
        // does not have) does not replace it; the snapshot carries a CA both ways, and a
        // cluster without one takes the image's.
        let other = ClusterCa {
            digest: "4d".repeat(32),
            ..first.clone()
        };
        let with_ca = State {
            ca: Some(other.clone()),
            ..format2()
        };
        let image = crate::state::encode_snapshot(&with_ca, 2).unwrap();
        assert_eq!(
            crate::state::decode_snapshot(&image).unwrap().ca.as_ref(),
            Some(&other)
        );
        apply(&mut st, Command::Restore(image.clone()));
        assert_eq!(st.ca.as_ref(), Some(&first));
        let mut fresh = with_data_key();
        apply(&mut fresh, Command::Restore(image));
        assert_eq!(fresh.ca.as_ref(), Some(&other));
    }

    #[test]
    fn the_join_secret_rotates() {
        let mut st = format2();
        let rotate = |secret: &str| Command::RotateJoinSecret {
            secret: secret.into(),
            manager: false,
        };
        let new = "ffeeddccbbaa99887766554433221100";
        let Response::Error(e) = apply(&mut st, rotate(new)) else {
            panic!()
        };
        assert!(e.message.contains("no join token yet"), "{}", e.message);
        apply(
            &mut st,
            Command::InitCluster {
                cluster_id: "0123456789abcdef".into(),
                secret: "00112233445566778899aabbccddeeff".into(),
            },
        );
        for bad in [
            "",
            "ffeeddccbbaa9988776655443322110",
            "ffeeddccbbaa998877665544332211000",
            "FFEEDDCCBBAA99887766554433221100",
            "ffeeddccbbaa99887766554433221g00",
        ] {
            let Response::Error(e) = apply(&mut st, rotate(bad)) else {
                panic!("{bad:?} taken")
            };
            assert_eq!(e.field.as_deref(), Some("secret"), "{bad:?}");
        }
        let identity = st.identity.clone().unwrap();
        assert_eq!(identity.secret, "00112233445566778899aabbccddeeff");
        assert_eq!(apply(&mut st, rotate(new)), Response::Ok);
        let rotated = st.identity.clone().unwrap();
        assert_eq!(rotated.secret, new);
        assert_eq!(rotated.cluster_id, identity.cluster_id);
        assert_eq!(
            rotated.manager_secret, "",
            "no manager token until one is asked for"
        );
        // The manager token's secret is made and rotated on its own.
        let manager = Command::RotateJoinSecret {
            secret: "0123456789abcdef0123456789abcdef".into(),
            manager: true,
        };
        assert_eq!(apply(&mut st, manager), Response::Ok);
        let both = st.identity.clone().unwrap();
        assert_eq!(both.secret, new);
        assert_eq!(both.manager_secret, "0123456789abcdef0123456789abcdef");
    }
}
