//! Compose files as `hoist stack deploy -c` reads them (YAML with interpolation, merge keys,
//! `extends`, bounds on size and alias expansion), then the checks the controller applies to the
//! specs they become. The file named by the input is the only one there is.

#![no_main]

#[path = "../../cli/src/output.rs"]
#[allow(dead_code)]
mod output;

#[path = "../../cli/src/compose/mod.rs"]
#[allow(dead_code)]
mod compose;

use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A disk with nothing on it: `env_file`, `extends: {file}` and `.env` are not found.
struct NoFiles;

impl compose::FileSource for NoFiles {
    fn read(&self, _: &Path) -> std::io::Result<Vec<u8>> {
        Err(std::io::ErrorKind::NotFound.into())
    }
}

fuzz_target!(|data: &[u8]| {
    let files = vec![(PathBuf::from("/stack/compose.yaml"), data.to_vec())];
    let env = BTreeMap::from([("TAG".to_string(), "1.0".to_string())]);
    let Ok(loaded) = compose::load("st", &files, &env, Path::new("/stack"), &NoFiles) else {
        return;
    };
    for spec in &loaded.services {
        let _ = spec.validate();
        let _ = hoist_proto::limits::check_service(spec);
    }
});
