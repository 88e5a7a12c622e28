//! `hoist diff`: what a container changed in its image's filesystem, as `docker diff` prints it.
//!
//! The container's overlay upper directory holds exactly its changes, in overlayfs's notation; the
//! image's layers (unpacked snapshots, themselves in that notation) say what was there before:
//!
//! - a 0:0 character device in the upper dir is a deleted path: `D`;
//! - any other entry is `C` when the image has the path, else `A`;
//! - a directory overlayfs merely copied up (same mode and owner as below) is shown only as the
//!   parent of a change, `C` — every directory above a change is;
//! - an opaque directory (`trusted.overlay.opaque=y`: removed and made anew) is `C`, and what
//!   the image had in it and the container did not make again is `D`;
//! - the mount points the runtime creates when an image lacks them (`/proc`, `/etc/hosts`, ...)
//!   are not changes, as `build::layer` leaves them out of a commit too.
//!
//! [`classify`] is pure (tested with an in-memory image); [`scan`] and [`LowerDirs`] read the
//! directories, never following a symlink.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use hoist_proto::{ChangeKind, FileChange};

use crate::image::build::layer::{self, is_whiteout};

pub(crate) use crate::image::build::layer::RUNTIME_MOUNT_POINTS;

/// One entry of the upper directory (paths relative, `/`-separated, no leading `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpperEntry {
    pub rel: String,
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Dir {
        opaque: bool,
    },
    /// An overlayfs whiteout: the path was deleted.
    Whiteout,
    Other,
}

/// What the image's layers hold at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LowerStat {
    pub is_dir: bool,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The image below the container, merged as overlayfs shows it.
pub trait Lower {
    fn stat(&self, rel: &str) -> Option<LowerStat>;
    /// The names in directory `rel` (empty if it is not a directory).
    fn children(&self, rel: &str) -> Vec<String>;
}

/// The changes of a container: `upper` its writable layer, `lowers` its image's layers (lowest
/// first), `ids` the host ids of a user-namespaced container's layer (mapped back before owners
/// are compared). Sorted by path.
pub fn changes(
    upper: &Path,
    lowers: &[PathBuf],
    ids: Option<crate::runtime::userns::IdRange>,
) -> io::Result<Vec<FileChange>> {
    let lower = LowerDirs(lowers);
    let mut entries = scan(upper, &lower)?;
    if let Some(r) = ids {
        for e in &mut entries {
            (e.uid, e.gid) = (r.unshift(e.uid), r.unshift(e.gid));
        }
    }
    Ok(classify(&entries, &lower))
}

/// The upper directory's entries, a directory before what it holds, runtime mount points the
/// image lacks left out (with what is beneath them).
pub fn scan(upper: &Path, lower: &impl Lower) -> io::Result<Vec<UpperEntry>> {
    let mut out = Vec::new();
    walk(upper, "", lower, &mut out)?;
    Ok(out)
}

fn walk(dir: &Path, rel: &str, lower: &impl Lower, out: &mut Vec<UpperEntry>) -> io::Result<()> {
    let mut names: Vec<_> = fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let name = name.to_string_lossy();
        let child = if rel.is_empty() {
            name.into_owned()
        } else {
            format!("{rel}/{name}")
        };
        if RUNTIME_MOUNT_POINTS.contains(&child.as_str()) && lower.stat(&child).is_none() {
            continue;
        }
        let meta = fs::symlink_metadata(&path)?;
        let kind = if is_whiteout(&meta) {
            EntryKind::Whiteout
        } else if meta.is_dir() {
            EntryKind::Dir {
                opaque: is_opaque(&path),
            }
        } else {
            EntryKind::Other
        };
        out.push(UpperEntry {
            rel: child.clone(),
            kind,
            mode: meta.mode(),
            uid: meta.uid(),
            gid: meta.gid(),
        });
        if meta.is_dir() {
            walk(&path, &child, lower, out)?;
        }
    }
    Ok(())
}

/// `docker diff`'s lines for the upper directory's entries (in [`scan`]'s order), sorted by path.
pub fn classify(entries: &[UpperEntry], lower: &impl Lower) -> Vec<FileChange> {
    let in_upper: BTreeSet<&str> = entries.iter().map(|e| e.rel.as_str()).collect();
    let mut out: BTreeMap<String, ChangeKind> = BTreeMap::new();
    for e in entries {
        let below = lower.stat(&e.rel);
        let kind = match (e.kind, below) {
            (EntryKind::Whiteout, _) => ChangeKind::D,
            (_, None) => ChangeKind::A,
            (EntryKind::Dir { opaque: true }, Some(_)) => {
                for name in lower.children(&e.rel) {
                    let path = format!("{}/{name}", e.rel);
                    if !in_upper.contains(path.as_str()) {
                        out.insert(path, ChangeKind::D);
                    }
                }
                ChangeKind::C
            }
            (EntryKind::Dir { opaque: false }, Some(l))
                if l.is_dir && l.mode == e.mode && l.uid == e.uid && l.gid == e.gid =>
            {
                // Copied up: a change only if something beneath is (added below).
                continue;
            }
            (_, Some(_)) => ChangeKind::C,
        };
        out.insert(e.rel.clone(), kind);
    }
    let changed: Vec<String> = out.keys().cloned().collect();
    for path in changed {
        let mut p = path.as_str();
        while let Some((parent, _)) = p.rsplit_once('/') {
            out.entry(parent.to_owned()).or_insert(ChangeKind::C);
            p = parent;
        }
    }
    out.into_iter()
        .map(|(rel, kind)| FileChange {
            kind,
            path: format!("/{rel}"),
        })
        .collect()
}

/// `trusted.overlay.opaque=y` (only root reads `trusted.*`; others see no opaque directory).
fn is_opaque(path: &Path) -> bool {
    layer::is_opaque(path).unwrap_or(false)
}

/// The image's layers as overlayfs merges them: the topmost layer with a path wins; a whiteout,
/// a non-directory on the way, or an opaque directory above hides the layers below.
#[derive(Debug, Clone, Copy)]
pub struct LowerDirs<'a>(pub &'a [PathBuf]);

enum InLayer {
    Found(PathBuf, fs::Metadata),
    /// Not in this layer; `opaque_above`: a directory on the way is opaque here, so the layers
    /// below do not show it either.
    Absent {
        opaque_above: bool,
    },
    /// Deleted or shadowed in this layer.
    Hidden,
}

fn in_layer(layer: &Path, rel: &str) -> InLayer {
    let comps: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
    let mut p = layer.to_path_buf();
    let mut opaque_above = false;
    for (i, comp) in comps.iter().enumerate() {
        p.push(comp);
        let Ok(m) = fs::symlink_metadata(&p) else {
            return InLayer::Absent { opaque_above };
        };
        if is_whiteout(&m) {
            return InLayer::Hidden;
        }
        if i + 1 == comps.len() {
            return InLayer::Found(p, m);
        }
        if !m.is_dir() {
            return InLayer::Hidden;
        }
        opaque_above |= is_opaque(&p);
    }
    match fs::symlink_metadata(&p) {
        Ok(m) => InLayer::Found(p, m),
        Err(_) => InLayer::Absent {
            opaque_above: false,
        },
    }
}

impl Lower for LowerDirs<'_> {
    fn stat(&self, rel: &str) -> Option<LowerStat> {
        for layer in self.0.iter().rev() {
            match in_layer(layer, rel) {
                InLayer::Found(_, m) => {
                    return Some(LowerStat {
                        is_dir: m.is_dir(),
                        mode: m.mode(),
                        uid: m.uid(),
                        gid: m.gid(),
                    })
                }
                InLayer::Absent {
                    opaque_above: false,
                } => continue,
                InLayer::Absent { opaque_above: true } | InLayer::Hidden => return None,
            }
        }
        None
    }

    fn children(&self, rel: &str) -> Vec<String> {
        let mut seen = BTreeSet::new();
        let mut out = BTreeSet::new();
        for layer in self.0.iter().rev() {
            match in_layer(layer, rel) {
                InLayer::Found(p, m) if m.is_dir() => {
                    let Ok(entries) = fs::read_dir(&p) else {
                        break;
                    };
                    for entry in entries.flatten() {
                        let name = entry.file_name().to_string_lossy().into_owned();
                        let whiteout = entry.metadata().map(|m| is_whiteout(&m)).unwrap_or(false);
                        if seen.insert(name.clone()) && !whiteout {
                            out.insert(name);
                        }
                    }
                    if is_opaque(&p) {
                        break;
                    }
                }
                InLayer::Absent {
                    opaque_above: false,
                } => continue,
                _ => break,
            }
        }
        out.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An image as a map: path → (is_dir, mode); owner 0:0.
    struct Image(BTreeMap<&'static str, (bool, u32)>);

    impl Lower for Image {
        fn stat(&self, rel: &str) -> Option<LowerStat> {
            self.0.get(rel).map(|&(is_dir, mode)| LowerStat {
                is_dir,
                mode,
                uid: 0,
                gid: 0,
            })
        }
        fn children(&self, rel: &str) -> Vec<String> {
            let prefix = format!("{rel}/");
            self.0
                .keys()
                .filter_map(|k| k.strip_prefix(&prefix))
                .filter(|k| !k.contains('/'))
                .map(str::to_owned)
                .collect()
        }
    }

    fn image() -> Image {
        Image(BTreeMap::from([
            ("etc", (true, 0o40755)),
            ("etc/passwd", (false, 0o100644)),
            ("bin", (true, 0o40755)),
            ("bin/vi", (false, 0o100755)),
            ("usr", (true, 0o40755)),
            ("usr/share", (true, 0o40755)),
            ("var", (true, 0o40755)),
            ("var/www", (true, 0o40755)),
            ("var/www/index.html", (false, 0o100644)),
            ("var/www/old.html", (false, 0o100644)),
            ("tmp", (true, 0o41777)),
        ]))
    }

    fn entry(rel: &str, kind: EntryKind, mode: u32) -> UpperEntry {
        UpperEntry {
            rel: rel.into(),
            kind,
            mode,
            uid: 0,
            gid: 0,
        }
    }

    fn dir(rel: &str) -> UpperEntry {
        entry(rel, EntryKind::Dir { opaque: false }, 0o40755)
    }

    fn lines(changes: &[FileChange]) -> Vec<String> {
        changes
            .iter()
            .map(|c| format!("{} {}", c.kind, c.path))
            .collect()
    }

    #[test]
    fn added_changed_deleted_and_their_parents() {
        let entries = vec![
            dir("bin"),
            entry("bin/vi", EntryKind::Whiteout, 0o20000),
            dir("etc"),
            entry("etc/passwd", EntryKind::Other, 0o100644),
            entry("new.txt", EntryKind::Other, 0o100644),
            dir("usr"),
            dir("usr/share"),
            dir("usr/share/app"),
            entry("usr/share/app/x", EntryKind::Other, 0o100644),
        ];
        assert_eq!(
            lines(&classify(&entries, &image())),
            [
                "C /bin",
                "D /bin/vi",
                "C /etc",
                "C /etc/passwd",
                "A /new.txt",
                "C /usr",
                "C /usr/share",
                "A /usr/share/app",
                "A /usr/share/app/x",
            ]
        );
    }

    #[test]
    fn directories_only_copied_up_are_not_changes_but_changed_ones_are() {
        // `tmp` copied up with its mode (a file made and removed again); `var` chmod'ed.
        let entries = vec![
            entry("tmp", EntryKind::Dir { opaque: false }, 0o41777),
            entry("var", EntryKind::Dir { opaque: false }, 0o40700),
        ];
        assert_eq!(lines(&classify(&entries, &image())), ["C /var"]);
    }

    #[test]
    fn an_opaque_directory_deletes_what_it_hides() {
        // `rm -rf /var/www; mkdir /var/www; echo > /var/www/index.html; touch /var/www/new`
        let entries = vec![
            dir("var"),
            entry("var/www", EntryKind::Dir { opaque: true }, 0o40755),
            entry("var/www/index.html", EntryKind::Other, 0o100644),
            entry("var/www/new", EntryKind::Other, 0o100644),
        ];
        assert_eq!(
            lines(&classify(&entries, &image())),
            [
                "C /var",
                "C /var/www",
                "C /var/www/index.html",
                "A /var/www/new",
                "D /var/www/old.html",
            ]
        );
    }

    #[test]
    fn sorted_by_path_as_docker_sorts() {
        let entries = vec![
            dir("etc"),
            entry("etc/a", EntryKind::Other, 0o100644),
            entry("etc-x", EntryKind::Other, 0o100644),
        ];
        assert_eq!(
            lines(&classify(&entries, &image())),
            ["C /etc", "A /etc-x", "A /etc/a"]
        );
    }

    #[test]
    fn scan_leaves_out_runtime_mount_points_the_image_lacks() {
        let t = tempfile::tempdir().unwrap();
        let upper = t.path().join("upper");
        let lower = t.path().join("lower");
        for d in ["etc", "proc", "dev"] {
            fs::create_dir_all(upper.join(d)).unwrap();
        }
        fs::create_dir_all(lower.join("etc")).unwrap();
        fs::create_dir_all(lower.join("dev")).unwrap();
        fs::write(upper.join("etc/hosts"), "").unwrap();
        fs::write(upper.join("etc/new.conf"), "x").unwrap();
        fs::write(lower.join("etc/passwd"), "root").unwrap();
        let lowers = [lower];
        let rels: Vec<String> = scan(&upper, &LowerDirs(&lowers))
            .unwrap()
            .into_iter()
            .map(|e| e.rel)
            .collect();
        assert_eq!(rels, ["dev", "etc", "etc/new.conf"]);
        assert_eq!(
            lines(&changes(&upper, &lowers, None).unwrap()),
            ["C /etc", "A /etc/new.conf"]
        );
    }

    #[test]
    fn lower_layers_merge_like_overlayfs() {
        let t = tempfile::tempdir().unwrap();
        let (l1, l2) = (t.path().join("l1"), t.path().join("l2"));
        fs::create_dir_all(l1.join("a/b")).unwrap();
        fs::write(l1.join("a/b/f"), "").unwrap();
        fs::write(l1.join("a/g"), "").unwrap();
        fs::create_dir_all(l2.join("a")).unwrap();
        fs::write(l2.join("a/h"), "").unwrap();
        // In the upper layer, `x` is a file where the lower one has a directory.
        fs::create_dir_all(l1.join("x/y")).unwrap();
        fs::write(l2.join("x"), "").unwrap();
        let lowers = [l1, l2];
        let l = LowerDirs(&lowers);
        assert!(l.stat("a/b/f").is_some());
        assert!(l.stat("a/h").is_some());
        assert!(l.stat("a").unwrap().is_dir);
        assert!(l.stat("x/y").is_none());
        assert!(!l.stat("x").unwrap().is_dir);
        assert!(l.stat("nope").is_none());
        assert_eq!(l.children("a"), ["b", "g", "h"]);
    }

    /// Needs root: whiteouts are device nodes, opaque directories `trusted.*` xattrs.
    #[test]
    fn lower_whiteouts_and_opaque_directories_hide_what_is_below() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let (l1, l2) = (t.path().join("l1"), t.path().join("l2"));
        fs::create_dir_all(l1.join("a/old")).unwrap();
        fs::write(l1.join("a/f"), "").unwrap();
        fs::write(l1.join("gone"), "").unwrap();
        fs::create_dir_all(l2.join("a")).unwrap();
        fs::write(l2.join("a/new"), "").unwrap();
        xattr::set(l2.join("a"), "trusted.overlay.opaque", b"y").unwrap();
        nix::sys::stat::mknod(
            &l2.join("gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        let lowers = [l1, l2];
        let l = LowerDirs(&lowers);
        assert!(l.stat("gone").is_none());
        assert!(l.stat("a/f").is_none());
        assert!(l.stat("a/old").is_none());
        assert_eq!(l.children("a"), ["new"]);
        assert_eq!(l.children(""), ["a"]);
    }
}
