//! Filesystem operations relative to a directory fd that never follow a symlink.
//!
//! The unpacker resolves every path itself, one component at a time with `O_NOFOLLOW`, so a
//! symlink planted by an earlier entry (or a racing process) can never redirect a later write
//! outside the layer root. Everything here works on `(parent dir fd, single name)` pairs.

use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::dir::{Dir, Type};
use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fstatat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

/// Flags for opening a directory component without following a symlink.
pub const DIR_NOFOLLOW: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// What a name in a directory currently is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Missing,
    Dir,
    Symlink,
    Other,
}

/// `lstat` of `name` in `dir` (never follows a final symlink).
pub fn lstat_at(dir: impl AsFd, name: &OsStr) -> Result<Option<FileStat>, Errno> {
    match fstatat(dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Classifies `name` in `dir` without following it.
pub fn kind_at(dir: impl AsFd, name: &OsStr) -> Result<Kind, Errno> {
    Ok(match lstat_at(dir, name)? {
        None => Kind::Missing,
        Some(st) => match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
            SFlag::S_IFDIR => Kind::Dir,
            SFlag::S_IFLNK => Kind::Symlink,
            _ => Kind::Other,
        },
    })
}

/// Opens directory `name` in `dir`; a symlink there yields `ELOOP`, a non-directory `ENOTDIR`.
pub fn open_dir_at(dir: impl AsFd, name: &OsStr) -> Result<OwnedFd, Errno> {
    openat(dir, name, DIR_NOFOLLOW, Mode::empty())
}

/// Opens (optionally creating with mode 0755) directory `name` in `dir`, never following a symlink.
/// Returns the fd and whether the directory was created.
pub fn open_or_create_dir_at(dir: impl AsFd, name: &OsStr) -> Result<(OwnedFd, bool), Errno> {
    let dir = dir.as_fd();
    match open_dir_at(dir, name) {
        Ok(fd) => Ok((fd, false)),
        Err(Errno::ENOENT) => {
            mkdirat(dir, name, Mode::from_bits_truncate(0o755))?;
            Ok((open_dir_at(dir, name)?, true))
        }
        Err(e) => Err(e),
    }
}

/// Removes `name` from `dir` whatever it is; a directory is emptied recursively first, each
/// level opened with `O_NOFOLLOW` so a symlink inside is unlinked, never descended into.
pub fn remove_all_at(dir: impl AsFd, name: &OsStr) -> Result<(), Errno> {
    let dir = dir.as_fd();
    match kind_at(dir, name)? {
        Kind::Missing => Ok(()),
        Kind::Dir => {
            let fd = open_dir_at(dir, name)?;
            empty_dir(fd)?;
            unlinkat(dir, name, UnlinkatFlags::RemoveDir)
        }
        Kind::Symlink | Kind::Other => unlinkat(dir, name, UnlinkatFlags::NoRemoveDir),
    }
}

fn empty_dir(fd: OwnedFd) -> Result<(), Errno> {
    let mut dir = Dir::from_fd(fd)?;
    let mut children: Vec<(CString, Option<Type>)> = Vec::new();
    for entry in dir.iter() {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        children.push((name.to_owned(), entry.file_type()));
    }
    for (name, ty) in children {
        let name = OsString::from(OsStr::from_bytes(name.to_bytes()));
        match ty {
            Some(Type::Directory) | None => remove_all_at(&dir, &name)?,
            Some(_) => unlinkat(&dir, name.as_os_str(), UnlinkatFlags::NoRemoveDir)?,
        }
    }
    Ok(())
}
