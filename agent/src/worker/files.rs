//! Secrets and configs of the node's replicas, the worker's side: fetching their content from
//! the controller for a task, checking the answer against the assignment, and deciding which
//! running containers need a new version.
//!
//! Why the content is fetched, never carried in assignments: assignments are stored, compared
//! and logged by the agent; content is asked for only by a node that runs a task referencing
//! it, right before it is written to the container's tmpfs ([`crate::containers::files`]), and
//! is dropped from memory once written. The assignment carries versions only: a higher one for
//! a running replica is what makes the worker fetch again and replace the files in place.
//!
//! An answer must hold every file the task references, each at least at the version its
//! assignment names (a controller that lags the one that assigned the task could answer an
//! older one). A controller that cannot answer yet (503: it cannot decrypt, unreachable) is
//! asked again with back-off; one that refuses (404: not this node's task, 426: this agent is
//! too old) is not. A task whose content stays unavailable fails, naming its secrets and
//! configs, and the controller replaces it.
//!
//! The decisions ([`check_answer`], [`stale`], [`unavailable`]) are pure; the fetch goes through
//! [`FileSource`]: [`ControllerFiles`] in the agent, a recording fake in tests.

use super::client::{ClientError, ControllerClient};
use crate::containers::files::describe;
use futures::future::BoxFuture;
use hoist_proto::files::{FileKind, FileVersion, OnUpdate, ResolvedRef, TaskFiles};
use hoist_proto::node::Assignment;
use std::sync::Arc;
use std::time::Duration;

/// Why an answer with the content did not come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// Worth asking again later: no controller answered, or it cannot answer yet (503).
    Later(String),
    /// Refused for good: asking again gets the same answer.
    Refused(String),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Later(m) | FetchError::Refused(m) => f.write_str(m),
        }
    }
}

/// Where the content of a task's secrets and configs comes from.
pub trait FileSource: Send + Sync + std::fmt::Debug {
    /// The current content of every secret and config task `task_id` references.
    fn fetch<'a>(&'a self, task_id: &'a str) -> BoxFuture<'a, Result<TaskFiles, FetchError>>;
}

/// The controllers' `GET /v1/agent/files`, as the node registered with them.
#[derive(Debug)]
pub struct ControllerFiles {
    client: Arc<ControllerClient>,
    /// The node's session: its id while it is registered.
    session: tokio::sync::watch::Receiver<Option<super::Session>>,
}

impl ControllerFiles {
    pub(super) fn new(
        client: Arc<ControllerClient>,
        session: tokio::sync::watch::Receiver<Option<super::Session>>,
    ) -> Self {
        ControllerFiles { client, session }
    }
}

impl FileSource for ControllerFiles {
    fn fetch<'a>(&'a self, task_id: &'a str) -> BoxFuture<'a, Result<TaskFiles, FetchError>> {
        Box::pin(async move {
            let node = self
                .session
                .borrow()
                .as_ref()
                .map(|s| s.node_id.clone())
                .ok_or_else(|| {
                    FetchError::Later("the node is not registered with the controllers".into())
                })?;
            self.client
                .task_files(&node, task_id)
                .await
                .map_err(fetch_error)
        })
    }
}

/// What a controller's answer means for a fetch.
pub fn fetch_error(e: ClientError) -> FetchError {
    match &e {
        ClientError::Refused { status: 404, .. } => FetchError::Refused(format!(
            "the controller does not know this task on this node ({e})"
        )),
        ClientError::Refused { status: 426, .. } => FetchError::Refused(format!(
            "the controller needs a newer agent to hand out secrets and configs ({e})"
        )),
        ClientError::Refused { .. } => FetchError::Refused(e.to_string()),
        ClientError::Unreachable(_) | ClientError::BadAnswer { .. } => {
            FetchError::Later(e.to_string())
        }
    }
}

/// The waits between attempts of one fetch: about 20 s in all, then the task fails (the
/// controller replaces it, with its own back-off).
pub const RETRY_DELAYS: [Duration; 7] = [
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(5),
    Duration::from_secs(5),
];

/// A task's references, resolved ([`hoist_proto::files::resolve_all`]); an error names the
/// field. Pure.
pub fn refs_of(a: &Assignment) -> Result<Vec<ResolvedRef>, String> {
    hoist_proto::files::resolve_all(&a.spec.secrets, &a.spec.configs)
        .map_err(|(field, m)| format!("{field}: {m}"))
}

/// Each referenced file once, in the references' order. Pure.
fn sources(refs: &[ResolvedRef]) -> Vec<(FileKind, &str)> {
    let mut out: Vec<(FileKind, &str)> = Vec::new();
    for r in refs {
        if !out.contains(&(r.kind, r.source.as_str())) {
            out.push((r.kind, r.source.as_str()));
        }
    }
    out
}

/// Checks an answer: every file `refs` names is in it, at least at the version `wanted` (the
/// assignment's) names. The first problem names its file. Pure.
pub fn check_answer(
    refs: &[ResolvedRef],
    wanted: &[FileVersion],
    got: &TaskFiles,
) -> Result<(), String> {
    for (kind, name) in sources(refs) {
        let have = got
            .files
            .iter()
            .filter(|f| f.kind == kind && f.name == name)
            .map(|f| f.version)
            .max();
        let Some(have) = have else {
            return Err(format!(
                "{}: the controller sent no content for it",
                describe(kind, name)
            ));
        };
        let want = wanted
            .iter()
            .filter(|w| w.kind == kind && w.name == name)
            .map(|w| w.version)
            .max();
        if let Some(want) = want.filter(|&w| have < w) {
            return Err(format!(
                "{}: the controller sent version {have}, the task needs version {want}",
                describe(kind, name)
            ));
        }
    }
    Ok(())
}

/// The message of a task whose content could not be had: every file it references, and why.
/// Pure.
pub fn unavailable(refs: &[ResolvedRef], why: &str) -> String {
    let names: Vec<String> = sources(refs)
        .into_iter()
        .map(|(kind, name)| describe(kind, name))
        .collect();
    format!("cannot get {} for the task: {why}", names.join(", "))
}

/// The versions of `a`'s files a running replica follows: those a reference replaces in place
/// (not `on_update = "restart"`, whose new versions reach new replicas, made by the
/// controller, while running ones keep theirs). None when the references do not resolve.
/// Pure.
pub fn followed(a: &Assignment) -> Vec<FileVersion> {
    let Ok(refs) = refs_of(a) else {
        return Vec::new();
    };
    a.files
        .iter()
        .filter(|f| {
            refs.iter()
                .any(|r| r.kind == f.kind && r.source == f.name && r.on_update != OnUpdate::Restart)
        })
        .cloned()
        .collect()
}

/// The files of a running container that its assignment names a newer version of: those to
/// fetch and replace (`wanted`: [`followed`]). Files the container does not have are not its
/// to get (its mounts are made once). Pure.
pub fn stale(wanted: &[FileVersion], have: &[FileVersion]) -> Vec<FileVersion> {
    wanted
        .iter()
        .filter(|w| {
            have.iter()
                .any(|h| h.kind == w.kind && h.name == w.name && h.version < w.version)
        })
        .cloned()
        .collect()
}

/// Fetches the content of `a`'s files and checks it ([`check_answer`]), asking again after
/// each of `delays` while it is not available; the error is the task's failure message
/// ([`unavailable`]).
pub async fn fetch_for(
    source: &dyn FileSource,
    a: &Assignment,
    refs: &[ResolvedRef],
    delays: &[Duration],
) -> Result<TaskFiles, String> {
    let mut attempt = 0;
    loop {
        let why = match source.fetch(&a.task_id).await {
            Ok(files) => match check_answer(refs, &a.files, &files) {
                Ok(()) => return Ok(files),
                Err(problem) => problem,
            },
            Err(FetchError::Refused(m)) => return Err(unavailable(refs, &m)),
            Err(FetchError::Later(m)) => m,
        };
        let Some(delay) = delays.get(attempt) else {
            return Err(unavailable(refs, &why));
        };
        if attempt == 0 {
            tracing::info!(task = %a.task_id, "secrets and configs not available yet, asking again: {why}");
        }
        attempt += 1;
        tokio::time::sleep(*delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeFiles;
    use hoist_proto::cluster::TaskState;
    use hoist_proto::files::{FileContent, FileRef};
    use hoist_proto::service::ServiceSpec;

    fn fv(kind: FileKind, name: &str, version: u64) -> FileVersion {
        FileVersion {
            kind,
            name: name.into(),
            version,
        }
    }

    fn content(kind: FileKind, name: &str, version: u64) -> FileContent {
        FileContent {
            kind,
            name: name.into(),
            version,
            data: format!("{name}@{version}").into_bytes(),
        }
    }

    fn file_ref(source: &str) -> FileRef {
        FileRef {
            source: source.into(),
            target: None,
            mode: None,
            uid: None,
            gid: None,
            on_update: None,
        }
    }

    /// Task `t1` referencing secret `db-pass` (version 3 assigned) and config `app.conf` (1).
    fn task() -> Assignment {
        let mut spec = ServiceSpec::new("web", "busybox");
        spec.secrets = vec![file_ref("db-pass")];
        spec.configs = vec![file_ref("app.conf")];
        Assignment {
            task_id: "t1".into(),
            service: "web".into(),
            service_version: 1,
            slot: 1,
            spec,
            desired: TaskState::Running,
            files: vec![
                fv(FileKind::Secret, "db-pass", 3),
                fv(FileKind::Config, "app.conf", 1),
            ],
            spec_held: false,
        }
    }

    fn answer(versions: &[(FileKind, &str, u64)]) -> TaskFiles {
        TaskFiles {
            files: versions
                .iter()
                .map(|(k, n, v)| content(*k, n, *v))
                .collect(),
        }
    }

    #[test]
    fn an_answer_needs_every_file_at_the_assigned_version_or_newer() {
        let a = task();
        let refs = refs_of(&a).unwrap();
        let full = answer(&[
            (FileKind::Secret, "db-pass", 4),
            (FileKind::Config, "app.conf", 1),
        ]);
        check_answer(&refs, &a.files, &full).unwrap();
        let lagging = answer(&[
            (FileKind::Secret, "db-pass", 2),
            (FileKind::Config, "app.conf", 1),
        ]);
        assert_eq!(
            check_answer(&refs, &a.files, &lagging).unwrap_err(),
            "secret \"db-pass\": the controller sent version 2, the task needs version 3"
        );
        let short = answer(&[(FileKind::Secret, "db-pass", 3)]);
        assert_eq!(
            check_answer(&refs, &a.files, &short).unwrap_err(),
            "config \"app.conf\": the controller sent no content for it"
        );
        // An assignment without versions (nothing to compare with) needs the content only.
        check_answer(&refs, &[], &lagging).unwrap();
        // A secret named like a config is another file.
        let mixed = answer(&[
            (FileKind::Config, "db-pass", 9),
            (FileKind::Config, "app.conf", 1),
        ]);
        assert!(check_answer(&refs, &a.files, &mixed).is_err());
    }

    #[test]
    fn only_files_the_container_has_at_an_older_version_are_fetched() {
        let wanted = [
            fv(FileKind::Secret, "db-pass", 4),
            fv(FileKind::Config, "app.conf", 1),
            fv(FileKind::Config, "new.conf", 1),
        ];
        let have = [
            fv(FileKind::Secret, "db-pass", 3),
            fv(FileKind::Config, "app.conf", 1),
        ];
        assert_eq!(stale(&wanted, &have), [fv(FileKind::Secret, "db-pass", 4)]);
        // Newer than assigned (fetched after a later version was made): nothing to do.
        let ahead = [fv(FileKind::Secret, "db-pass", 5)];
        assert!(stale(&wanted, &ahead).is_empty());
        assert!(stale(&wanted, &[]).is_empty());
        assert!(stale(&[], &have).is_empty());
    }

    #[test]
    fn files_that_restart_the_service_are_not_followed_in_place() {
        let mut a = task();
        assert_eq!(followed(&a), a.files);
        a.spec.configs[0].on_update = Some("restart".into());
        assert_eq!(followed(&a), [fv(FileKind::Secret, "db-pass", 3)]);
        a.spec.secrets[0].mode = Some("bad".into());
        assert!(followed(&a).is_empty());
    }

    #[test]
    fn bad_references_name_their_field() {
        let mut a = task();
        a.spec.secrets[0].mode = Some("0999".into());
        let e = refs_of(&a).unwrap_err();
        assert!(e.starts_with("secrets[0].mode: "), "{e}");
    }

    #[test]
    fn controller_answers_are_retried_or_not_by_their_status() {
        let refused = |status| ClientError::Refused {
            addr: "c1".into(),
            path: "/v1/agent/files".into(),
            status,
            message: "no".into(),
        };
        assert!(matches!(fetch_error(refused(404)), FetchError::Refused(_)));
        assert!(
            matches!(fetch_error(refused(426)), FetchError::Refused(m) if m.contains("newer agent"))
        );
        assert!(matches!(fetch_error(refused(403)), FetchError::Refused(_)));
        let e = fetch_error(ClientError::Unreachable(
            "c1: HTTP 503: cannot decrypt yet".into(),
        ));
        assert!(matches!(e, FetchError::Later(m) if m.contains("503")));
    }

    const FAST: [Duration; 3] = [Duration::from_millis(1); 3];

    #[tokio::test]
    async fn a_503_is_asked_again_until_the_content_comes() {
        let a = task();
        let refs = refs_of(&a).unwrap();
        let source = FakeFiles::default();
        source.push(Err(FetchError::Later(
            "HTTP 503: cannot decrypt yet".into(),
        )));
        // A lagging controller's answer is asked again too.
        source.push(Ok(answer(&[
            (FileKind::Secret, "db-pass", 2),
            (FileKind::Config, "app.conf", 1),
        ])));
        source.push(Ok(answer(&[
            (FileKind::Secret, "db-pass", 3),
            (FileKind::Config, "app.conf", 1),
        ])));
        let got = fetch_for(&source, &a, &refs, &FAST).await.unwrap();
        assert_eq!(got.files[0].version, 3);
        assert_eq!(source.fetched(), ["t1", "t1", "t1"]);
    }

    #[tokio::test]
    async fn content_that_stays_unavailable_fails_the_task_naming_its_files() {
        let a = task();
        let refs = refs_of(&a).unwrap();
        let source = FakeFiles::default();
        for _ in 0..10 {
            source.push(Err(FetchError::Later(
                "HTTP 503: cannot decrypt yet".into(),
            )));
        }
        let e = fetch_for(&source, &a, &refs, &FAST).await.unwrap_err();
        assert_eq!(
            e,
            "cannot get secret \"db-pass\", config \"app.conf\" for the task: HTTP 503: cannot decrypt yet"
        );
        assert_eq!(source.fetched().len(), 1 + FAST.len());
        // A refusal is not asked again.
        let source = FakeFiles::default();
        source.push(Err(FetchError::Refused("HTTP 404: no such task".into())));
        let e = fetch_for(&source, &a, &refs, &FAST).await.unwrap_err();
        assert!(e.ends_with("for the task: HTTP 404: no such task"), "{e}");
        assert_eq!(source.fetched().len(), 1);
    }
}
