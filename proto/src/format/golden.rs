//! Checking golden files (for the tests of every crate; feature `golden`): every sample of every
//! format this build reads decodes to the value it was made from and encodes back to the same
//! bytes (`proto/golden/vN/`), and the files are add-only (`proto/golden/SHA256SUMS`, and git).
//!
//! `HOIST_WRITE_GOLDEN=1 cargo test golden` writes the missing files of the current format (never
//! an existing one) and lists them in the manifest; commit them with the change that introduced
//! the format. proto checks its types (`golden_test.rs`), the controller and the agent theirs.

use super::{Codec, CURRENT};
use sha2::{Digest, Sha256};
use std::fmt::Debug;
use std::path::{Path, PathBuf};

/// `proto/golden`.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden")
}

/// Where the files of `format` live.
pub fn dir(format: u32) -> PathBuf {
    root().join(format!("v{format}"))
}

/// Whether missing files of the current format are to be written.
pub fn writing() -> bool {
    std::env::var_os("HOIST_WRITE_GOLDEN").is_some()
}

/// Checks one golden file against the value it holds (see the module doc); a missing file of the
/// current format is written when [`writing`], else reported in `missing`.
pub fn check_bytes<T: PartialEq + Debug>(
    format: u32,
    file: &str,
    expected: &T,
    encode: impl Fn(&T) -> Vec<u8>,
    decode: impl Fn(&[u8]) -> Result<T, String>,
    missing: &mut Vec<PathBuf>,
) {
    let path = dir(format).join(file);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let got = decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(
                &got,
                expected,
                "{} decodes to another value",
                path.display()
            );
            assert!(
                encode(&got) == bytes,
                "{}: this build encodes the value to other bytes in format {format}",
                path.display()
            );
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if format == CURRENT && writing() {
                write_new(&path, &encode(expected));
            } else {
                missing.push(path);
            }
        }
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

/// Checks a file of a type with a [`Codec`].
pub fn check<T: Codec + PartialEq + Debug>(
    format: u32,
    name: &str,
    expected: &T,
    missing: &mut Vec<PathBuf>,
) {
    check_bytes(
        format,
        &format!("{name}.bin"),
        expected,
        |v| v.encode(format).expect("the sample is of its format"),
        |b| T::decode(b, format).map_err(|e| e.to_string()),
        missing,
    );
}

/// Writes a new golden file and lists it in the manifest; never replaces one.
pub fn write_new(path: &Path, bytes: &[u8]) {
    assert!(
        !path.exists(),
        "{} exists: golden files are add-only",
        path.display()
    );
    std::fs::create_dir_all(path.parent().expect("a directory")).expect("golden dir");
    std::fs::write(path, bytes).expect("write golden file");
    let rel = path.strip_prefix(root()).expect("under golden/");
    let line = format!(
        "{}  {}\n",
        hex::encode(Sha256::digest(bytes)),
        rel.display()
    );
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(root().join("SHA256SUMS"))
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .expect("append to the manifest");
    eprintln!("wrote {}", path.display());
}

/// Fails listing the missing files, with how to make them.
pub fn assert_none_missing(missing: &[PathBuf]) {
    assert!(
        missing.is_empty(),
        "golden files missing (HOIST_WRITE_GOLDEN=1 writes those of the current format):\n{}",
        missing
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}
