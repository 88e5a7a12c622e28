//! Test helpers: layer tarballs with arbitrary (hostile) headers, and tree snapshots.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use tar::{EntryType, Header};

/// One entry of a test layer. Paths and link targets are written verbatim into the header.
#[derive(Debug, Clone)]
pub enum E {
    Dir(String),
    File(String, Vec<u8>),
    /// A file with mode and owner.
    FileMeta(String, Vec<u8>, u32, u32),
    Sym(String, String),
    Link(String, String),
    Char(String),
    Fifo(String),
    /// A regular file header declaring `size` bytes but carrying none.
    Declared(String, u64),
    /// A GNU sparse file of `real_size` bytes with one 512-byte data chunk.
    Sparse(String, u64),
}

pub fn s(x: &str) -> String {
    x.to_owned()
}

fn header(path: &str, ty: EntryType, size: u64, mode: u32) -> Header {
    let mut h = Header::new_gnu();
    let name = path.as_bytes();
    assert!(name.len() < 100, "test paths must fit the old header");
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_entry_type(ty);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h
}

fn set_link(h: &mut Header, target: &str) {
    let t = target.as_bytes();
    assert!(t.len() < 100, "test link targets must fit the old header");
    h.as_old_mut().linkname[..t.len()].copy_from_slice(t);
}

/// Builds an uncompressed layer tar from `entries`.
pub fn layer(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let (mut h, data): (Header, Vec<u8>) = match e {
            E::Dir(p) => (header(p, EntryType::Directory, 0, 0o755), vec![]),
            E::File(p, d) => (
                header(p, EntryType::Regular, d.len() as u64, 0o644),
                d.clone(),
            ),
            E::FileMeta(p, d, mode, uid) => {
                let mut h = header(p, EntryType::Regular, d.len() as u64, *mode);
                h.set_uid(u64::from(*uid));
                h.set_gid(u64::from(*uid));
                (h, d.clone())
            }
            E::Sym(p, t) => {
                let mut h = header(p, EntryType::Symlink, 0, 0o777);
                set_link(&mut h, t);
                (h, vec![])
            }
            E::Link(p, t) => {
                let mut h = header(p, EntryType::Link, 0, 0o644);
                set_link(&mut h, t);
                (h, vec![])
            }
            E::Char(p) => (header(p, EntryType::Char, 0, 0o600), vec![]),
            E::Fifo(p) => (header(p, EntryType::Fifo, 0, 0o600), vec![]),
            E::Declared(p, size) => {
                let h = header(p, EntryType::Regular, *size, 0o644);
                h_cksum_append(&mut b, h, &[]);
                continue;
            }
            E::Sparse(p, real) => {
                let mut h = header(p, EntryType::GNUSparse, 512, 0o644);
                let gnu = h.as_gnu_mut().expect("gnu header");
                gnu.sparse[0].set_offset(0);
                gnu.sparse[0].set_length(512);
                gnu.set_real_size(*real);
                (h, vec![b'x'; 512])
            }
        };
        h.set_cksum();
        b.append(&h, data.as_slice()).expect("append");
    }
    b.into_inner().expect("finish tar")
}

/// Appends a header whose declared size exceeds its data (the archive ends early on purpose).
fn h_cksum_append(b: &mut tar::Builder<Vec<u8>>, mut h: Header, data: &[u8]) {
    h.set_cksum();
    b.get_mut().extend_from_slice(h.as_bytes());
    b.get_mut().extend_from_slice(data);
}

/// Every path under `dir` (not following symlinks) with type, mode, owner and content or target.
pub fn tree(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let md = fs::symlink_metadata(&path).expect("lstat");
        let rel = path
            .strip_prefix(base)
            .expect("prefix")
            .display()
            .to_string();
        let desc = if md.file_type().is_symlink() {
            format!(
                "symlink -> {}",
                fs::read_link(&path).expect("readlink").display()
            )
        } else if md.is_dir() {
            format!("dir {:o} {}:{}", md.mode() & 0o7777, md.uid(), md.gid())
        } else if md.is_file() {
            let content = fs::read(&path).expect("read");
            format!(
                "file {:o} {}:{} {:?}",
                md.mode() & 0o7777,
                md.uid(),
                md.gid(),
                String::from_utf8_lossy(&content)
            )
        } else {
            format!("other {:o} rdev={}", md.mode(), md.rdev())
        };
        out.insert(rel, desc);
        if md.is_dir() {
            walk(base, &path, out);
        }
    }
}
