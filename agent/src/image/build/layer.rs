//! Turning an overlayfs upper directory into an OCI layer tar.
//!
//! A RUN or COPY step writes through an overlay whose upper directory the builder owns; what the
//! step changed is exactly that directory, in overlayfs's own notation. OCI layers use another:
//! a deleted path is a 0:0 character device in the upper dir and an empty `.wh.NAME` entry in
//! the tar; a directory whose lower contents are hidden carries `trusted.overlay.opaque=y` and
//! becomes the directory plus `.wh..wh..opq`. Entries are written in sorted order, hardlinks as
//! tar links, and the mount points the runtime itself creates (`/proc`, `/etc/hosts`, ...) are
//! left out when the lower layers did not have them.
//!
//! The directory is walked without following symlinks: only entries whose `lstat` says
//! "directory" are descended into.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Paths the runtime creates as mount points when an image lacks them.
const RUNTIME_MOUNT_POINTS: &[&str] = &[
    "proc",
    "sys",
    "dev",
    "etc/hosts",
    "etc/hostname",
    "etc/resolv.conf",
];

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DiffStats {
    pub entries: u64,
    pub whiteouts: u64,
}

/// Writes the changes in `upper` as a layer tar at `out`. `lowers` are the layers below (top
/// last), consulted only to tell runtime mount points from real changes.
pub fn write_diff(upper: &Path, lowers: &[PathBuf], out: &Path) -> io::Result<DiffStats> {
    let file = File::create(out)?;
    let mut tar = tar::Builder::new(BufWriter::new(file));
    tar.mode(tar::HeaderMode::Complete);
    let mut w = Walker {
        tar: &mut tar,
        lowers,
        links: HashMap::new(),
        stats: DiffStats::default(),
    };
    w.dir(upper, "")?;
    let stats = w.stats;
    tar.into_inner()?
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()?;
    Ok(stats)
}

struct Walker<'a, W: io::Write> {
    tar: &'a mut tar::Builder<W>,
    lowers: &'a [PathBuf],
    /// `(dev, ino)` of multiply linked files already written → their tar path.
    links: HashMap<(u64, u64), String>,
    stats: DiffStats,
}

impl<W: io::Write> Walker<'_, W> {
    fn dir(&mut self, dir: &Path, rel: &str) -> io::Result<()> {
        let mut names: Vec<_> = fs::read_dir(dir)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort();
        for name in names {
            let Some(name) = name.to_str() else {
                return Err(io::Error::other(format!(
                    "{rel}/{}: non-UTF-8 file names are not supported in build layers",
                    name.to_string_lossy()
                )));
            };
            let path = dir.join(name);
            let child = if rel.is_empty() {
                name.to_owned()
            } else {
                format!("{rel}/{name}")
            };
            self.entry(&path, &child)?;
        }
        Ok(())
    }

    fn entry(&mut self, path: &Path, rel: &str) -> io::Result<()> {
        let meta = fs::symlink_metadata(path)?;
        let ft = meta.file_type();
        if RUNTIME_MOUNT_POINTS.contains(&rel) && !self.in_lowers(rel) {
            return Ok(());
        }
        if ft.is_char_device() && meta.rdev() == 0 {
            // An overlayfs whiteout: the path was deleted.
            let (parent, name) = rel.rsplit_once('/').map_or(("", rel), |(p, n)| (p, n));
            let wh = if parent.is_empty() {
                format!(".wh.{name}")
            } else {
                format!("{parent}/.wh.{name}")
            };
            self.empty_file(&wh, &meta)?;
            self.stats.whiteouts += 1;
            return Ok(());
        }
        let mut header = tar::Header::new_gnu();
        header.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
        self.stats.entries += 1;
        if ft.is_dir() {
            header.set_size(0);
            self.tar
                .append_data(&mut header, format!("{rel}/"), io::empty())?;
            if xattr::get(path, "trusted.overlay.redirect")?.is_some() {
                return Err(io::Error::other(format!(
                    "{rel}: a renamed directory (overlayfs redirect) cannot be turned into a layer"
                )));
            }
            if xattr::get(path, "trusted.overlay.opaque")?.as_deref() == Some(b"y") {
                self.empty_file(&format!("{rel}/.wh..wh..opq"), &meta)?;
                self.stats.whiteouts += 1;
            }
            return self.dir(path, rel);
        }
        if ft.is_symlink() {
            let target = fs::read_link(path)?;
            header.set_size(0);
            return self.tar.append_link(&mut header, rel, target);
        }
        if ft.is_file() {
            if meta.nlink() > 1 {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = self.links.get(&key) {
                    header.set_entry_type(tar::EntryType::Link);
                    header.set_size(0);
                    return self.tar.append_link(&mut header, rel, first.clone());
                }
                self.links.insert(key, rel.to_owned());
            }
            let f = File::open(path)?;
            return self.tar.append_data(&mut header, rel, f);
        }
        // Fifos, sockets and device nodes: written as they are (the unpacker skips devices).
        header.set_size(0);
        self.tar.append_data(&mut header, rel, io::empty())
    }

    fn empty_file(&mut self, rel: &str, like: &fs::Metadata) -> io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(like.mtime().max(0) as u64);
        h.set_size(0);
        self.tar.append_data(&mut h, rel, io::empty())
    }

    /// Whether `rel` exists in one of the lower layers (checked without following symlinks in
    /// the layer: a symlinked parent counts as absent, which only keeps a placeholder).
    fn in_lowers(&self, rel: &str) -> bool {
        self.lowers.iter().any(|l| {
            let mut p = l.clone();
            for comp in rel.split('/') {
                match fs::symlink_metadata(&p) {
                    Ok(m) if m.is_dir() => p.push(comp),
                    _ => return false,
                }
            }
            fs::symlink_metadata(&p).is_ok()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn entries(tar_path: &Path) -> Vec<(String, tar::EntryType)> {
        let mut a = tar::Archive::new(File::open(tar_path).unwrap());
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().entry_type(),
                )
            })
            .collect()
    }

    #[test]
    fn files_dirs_links_and_hardlinks_in_sorted_order() {
        let t = tempfile::tempdir().unwrap();
        let upper = t.path().join("upper");
        fs::create_dir_all(upper.join("app/sub")).unwrap();
        fs::write(upper.join("app/b.txt"), "b").unwrap();
        fs::write(upper.join("app/a.txt"), "a").unwrap();
        fs::hard_link(upper.join("app/a.txt"), upper.join("app/sub/a2")).unwrap();
        symlink("/etc/passwd", upper.join("app/link")).unwrap();
        let out = t.path().join("layer.tar");
        let stats = write_diff(&upper, &[], &out).unwrap();
        assert_eq!(stats.whiteouts, 0);
        let got = entries(&out);
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "app/",
                "app/a.txt",
                "app/b.txt",
                "app/link",
                "app/sub/",
                "app/sub/a2"
            ]
        );
        assert_eq!(got[3].1, tar::EntryType::Symlink);
        assert_eq!(got[5].1, tar::EntryType::Link);
    }

    #[test]
    fn runtime_mount_points_are_left_out_unless_the_lowers_have_them() {
        let t = tempfile::tempdir().unwrap();
        let upper = t.path().join("upper");
        let lower = t.path().join("lower");
        fs::create_dir_all(upper.join("proc")).unwrap();
        fs::create_dir_all(upper.join("etc")).unwrap();
        fs::write(upper.join("etc/hosts"), "").unwrap();
        fs::write(upper.join("etc/hostname"), "").unwrap();
        fs::create_dir_all(lower.join("etc")).unwrap();
        fs::write(lower.join("etc/hostname"), "x").unwrap();
        let out = t.path().join("layer.tar");
        write_diff(&upper, &[lower], &out).unwrap();
        let names: Vec<String> = entries(&out).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["etc/", "etc/hostname"]);
    }

    /// Needs root (mknod of a whiteout, trusted.* xattrs), as the agent has.
    #[test]
    fn overlay_whiteouts_become_oci_whiteouts() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let upper = t.path().join("upper");
        fs::create_dir_all(upper.join("etc/opaque")).unwrap();
        nix::sys::stat::mknod(
            &upper.join("etc/gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o000),
            0,
        )
        .unwrap();
        xattr::set(upper.join("etc/opaque"), "trusted.overlay.opaque", b"y").unwrap();
        let out = t.path().join("layer.tar");
        let stats = write_diff(&upper, &[], &out).unwrap();
        assert_eq!(stats.whiteouts, 2);
        let names: Vec<String> = entries(&out).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "etc/",
                "etc/.wh.gone",
                "etc/opaque/",
                "etc/opaque/.wh..wh..opq"
            ]
        );
    }
}
