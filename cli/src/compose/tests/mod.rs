//! Tests of the Compose loader: every supported key, merging, interpolation, `.env`, anchors,
//! `extends`, bad input, and the files under `testdata/`.

use super::*;
use hoist_proto::service::ServiceSpec;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod bad_input;
mod interpolation;
mod keys;
mod merging;
mod testdata;

/// Files in memory.
#[derive(Default)]
pub struct Mem(pub BTreeMap<PathBuf, Vec<u8>>);

impl FileSource for Mem {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        self.0
            .get(path)
            .cloned()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    }
}

/// A project: the `-c` files (in `/p/`), other files, and the environment.
#[derive(Default)]
pub struct Project {
    pub files: Vec<(PathBuf, Vec<u8>)>,
    pub other: Mem,
    pub env: BTreeMap<String, String>,
}

impl Project {
    pub fn new(compose: &str) -> Self {
        Project::default().file("compose.yaml", compose)
    }
    pub fn file(mut self, name: &str, text: &str) -> Self {
        self.files
            .push((Path::new("/p").join(name), text.as_bytes().to_vec()));
        self
    }
    pub fn other(mut self, name: &str, text: &str) -> Self {
        self.other
            .0
            .insert(Path::new("/p").join(name), text.as_bytes().to_vec());
        self
    }
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.insert(k.into(), v.into());
        self
    }
    pub fn load(&self) -> Result<Loaded, ComposeError> {
        load("shop", &self.files, &self.env, Path::new("/p"), &self.other)
    }
    pub fn ok(&self) -> Loaded {
        match self.load() {
            Ok(l) => l,
            Err(e) => panic!("load failed:\n{e}"),
        }
    }
    pub fn err(&self) -> String {
        match self.load() {
            Ok(l) => panic!("load succeeded: {l:#?}"),
            Err(e) => e.to_string(),
        }
    }
}

/// The spec of service `name` (short name).
pub fn svc<'a>(l: &'a Loaded, name: &str) -> &'a ServiceSpec {
    let full = format!("shop_{name}");
    l.services
        .iter()
        .find(|s| s.name == full)
        .unwrap_or_else(|| panic!("no service {full} in {:?}", l.services))
}

/// One service `web` with the given keys (indented by the caller as YAML under `web:`).
pub fn one(keys: &str) -> Project {
    let body: String = keys.lines().map(|l| format!("    {l}\n")).collect();
    Project::new(&format!(
        "services:\n  web:\n    image: nginx:1.27\n{body}volumes:\n  data:\n"
    ))
}

pub fn assert_contains(haystack: &str, needle: &str) {
    assert!(
        haystack.contains(needle),
        "expected {needle:?} in:\n{haystack}"
    );
}
