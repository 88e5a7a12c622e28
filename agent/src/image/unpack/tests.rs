//! Unpacker tests on the real filesystem (as root): ordinary layers, a corpus of hostile layers,
//! whiteouts, and an overlayfs mount that honours them.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::{apply_layer, LayerLimits};
use crate::image::testutil::{layer, s, tree, E};
use crate::image::ImageError;

/// A tempdir holding the unpack root plus sentinels beside it that must never change.
struct Sandbox {
    _tmp: TempDir,
    base: PathBuf,
    root: PathBuf,
}

fn sandbox() -> Sandbox {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().to_path_buf();
    let root = base.join("root");
    fs::create_dir(&root).unwrap();
    fs::create_dir(base.join("sentinel_dir")).unwrap();
    fs::write(base.join("sentinel_dir/keep"), "orig").unwrap();
    fs::write(base.join("sentinel_file"), "orig").unwrap();
    Sandbox {
        _tmp: tmp,
        base,
        root,
    }
}

impl Sandbox {
    /// Everything outside the unpack root.
    fn outside(&self) -> Vec<(String, String)> {
        tree(&self.base)
            .into_iter()
            .filter(|(p, _)| p != "root" && !p.starts_with("root/"))
            .collect()
    }

    fn abs(&self, rel: &str) -> String {
        self.base.join(rel).display().to_string()
    }
}

fn unpack(
    root: &Path,
    entries: &[E],
    limits: LayerLimits,
) -> Result<super::LayerStats, ImageError> {
    apply_layer(root, layer(entries).as_slice(), limits)
}

#[test]
fn unpacks_files_dirs_links_with_metadata() {
    let sb = sandbox();
    let entries = [
        E::Dir(s("./")),
        E::Dir(s("etc/")),
        E::File(s("etc/hostname"), b"box\n".to_vec()),
        E::FileMeta(s("bin/tool"), b"#!/bin/sh\n".to_vec(), 0o4755, 1000),
        E::Sym(s("bin/sh"), s("/bin/busybox")),
        E::Link(s("bin/tool2"), s("bin/tool")),
        E::Fifo(s("dev/fifo")),
        E::Char(s("dev/null")),
    ];
    let stats = unpack(&sb.root, &entries, LayerLimits::default()).unwrap();
    assert_eq!(stats.bytes, 14);
    assert_eq!(
        stats.entries, 9,
        "8 entries + implicit bin/ (skipped devices create no parents)"
    );
    assert_eq!(
        stats.diff_id,
        crate::image::digest::sha256_of(&layer(&entries))
    );
    let t = tree(&sb.root);
    assert_eq!(t["etc/hostname"], "file 644 0:0 \"box\\n\"");
    assert_eq!(
        t["bin/tool"], "file 4755 1000:1000 \"#!/bin/sh\\n\"",
        "set-id bit survives chown"
    );
    assert_eq!(t["bin/sh"], "symlink -> /bin/busybox");
    assert_eq!(t["bin"], "dir 755 0:0", "implicit parents are 0755");
    assert!(
        !t.contains_key("dev/fifo") && !t.contains_key("dev/null"),
        "devices and fifos skipped"
    );
    let a = fs::metadata(sb.root.join("bin/tool")).unwrap();
    let b = fs::metadata(sb.root.join("bin/tool2")).unwrap();
    assert_eq!(
        (a.ino(), a.nlink()),
        (b.ino(), 2),
        "hardlink shares the inode"
    );
    assert_eq!(a.mtime(), 1_700_000_000);
    assert_eq!(
        fs::metadata(sb.root.join("etc")).unwrap().mtime(),
        1_700_000_000,
        "dir mtime restored last"
    );
}

#[test]
fn later_entries_replace_earlier_ones() {
    let sb = sandbox();
    let entries = [
        E::File(s("a"), b"one".to_vec()),
        E::File(s("a"), b"two".to_vec()),
        E::Dir(s("d/")),
        E::File(s("d/x"), b"x".to_vec()),
        E::File(s("d"), b"now a file".to_vec()),
        E::Sym(s("l"), s("target")),
        E::Dir(s("l/")),
    ];
    unpack(&sb.root, &entries, LayerLimits::default()).unwrap();
    let t = tree(&sb.root);
    assert_eq!(t["a"], "file 644 0:0 \"two\"");
    assert_eq!(t["d"], "file 644 0:0 \"now a file\"");
    assert_eq!(t["l"], "dir 755 0:0");
    assert_eq!(t.len(), 3);
}

#[test]
fn whiteouts_become_char_devices_and_opaque_xattrs() {
    let sb = sandbox();
    let entries = [
        E::File(s("etc/.wh.foo"), vec![]),
        E::Dir(s("var/")),
        E::File(s("var/.wh..wh..opq"), vec![]),
        E::File(s(".wh..wh.plnk"), vec![]),
    ];
    unpack(&sb.root, &entries, LayerLimits::default()).unwrap();
    let md = fs::symlink_metadata(sb.root.join("etc/foo")).unwrap();
    assert!(md.file_type().is_char_device());
    assert_eq!((md.rdev(), md.uid(), md.gid()), (0, 0, 0));
    assert_eq!(
        xattr::get(sb.root.join("var"), "trusted.overlay.opaque")
            .unwrap()
            .as_deref(),
        Some(&b"y"[..])
    );
    assert!(!sb.root.join("var/.wh..wh..opq").exists());
    assert!(!sb.root.join(".wh..wh.plnk").exists() && !sb.root.join(".wh.plnk").exists());
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Rejected,
    Contained,
}

/// Hostile layers: each is rejected with `InvalidLayer` or contained inside the root, and
/// nothing outside the root changes.
#[test]
fn hostile_layers_are_rejected_or_contained() {
    use Expect::{Contained, Rejected};
    type Case = (&'static str, Expect, fn(&Sandbox) -> Vec<E>, LayerLimits);
    let small = LayerLimits {
        max_bytes: 1 << 20,
        max_entries: 10,
    };
    let def = LayerLimits::default();
    let cases: Vec<Case> = vec![
        (
            "absolute symlink then a file written through it",
            Rejected,
            |sb| {
                vec![
                    E::Sym(s("evil"), sb.abs("sentinel_dir")),
                    E::File(s("evil/pwned"), b"x".to_vec()),
                ]
            },
            def,
        ),
        (
            "symlink to / then a file beneath it",
            Rejected,
            |sb| {
                vec![
                    E::Sym(s("r"), s("/")),
                    E::File(format!("r{}/pwned", sb.base.display()), b"x".to_vec()),
                ]
            },
            def,
        ),
        (
            "../ path",
            Rejected,
            |_| vec![E::File(s("../sentinel_file"), b"pwned".to_vec())],
            def,
        ),
        (
            "../../x path",
            Rejected,
            |_| vec![E::File(s("../../x"), b"pwned".to_vec())],
            def,
        ),
        (
            "nested a/../../b",
            Rejected,
            |_| vec![E::File(s("a/../../sentinel_file"), b"pwned".to_vec())],
            def,
        ),
        (
            "absolute file path is taken relative to the root",
            Contained,
            |sb| vec![E::File(sb.abs("sentinel_file"), b"pwned".to_vec())],
            def,
        ),
        (
            "symlink to .. then an entry beneath it",
            Rejected,
            |_| {
                vec![
                    E::Sym(s("up"), s("..")),
                    E::File(s("up/sentinel_file"), b"pwned".to_vec()),
                ]
            },
            def,
        ),
        (
            "symlink to ../.. then a directory beneath it",
            Rejected,
            |_| vec![E::Sym(s("up"), s("../..")), E::Dir(s("up/x/"))],
            def,
        ),
        (
            "hardlink to /etc/passwd",
            Rejected,
            |_| vec![E::Link(s("pw"), s("/etc/passwd"))],
            def,
        ),
        (
            "hardlink to ../sentinel_file",
            Rejected,
            |_| vec![E::Link(s("h"), s("../sentinel_file"))],
            def,
        ),
        (
            "hardlink to an absolute outside path",
            Rejected,
            |sb| vec![E::Link(s("h"), sb.abs("sentinel_file"))],
            def,
        ),
        (
            "hardlink through a symlink",
            Rejected,
            |sb| {
                vec![
                    E::Sym(s("d"), sb.abs("sentinel_dir")),
                    E::Link(s("h"), s("d/keep")),
                ]
            },
            def,
        ),
        (
            "symlink replaced by a directory and back, then written through",
            Rejected,
            |sb| {
                vec![
                    E::Sym(s("a"), sb.abs("sentinel_dir")),
                    E::Dir(s("a/")),
                    E::File(s("a/f"), b"in".to_vec()),
                    E::Sym(s("a"), sb.abs("sentinel_dir")),
                    E::File(s("a/pwned"), b"x".to_vec()),
                ]
            },
            def,
        ),
        (
            "symlink replaced by a directory stays inside",
            Contained,
            |sb| {
                vec![
                    E::Sym(s("a"), sb.abs("sentinel_dir")),
                    E::Dir(s("a/")),
                    E::File(s("a/keep"), b"in".to_vec()),
                ]
            },
            def,
        ),
        (
            "directory replaced by a symlink then written through",
            Rejected,
            |sb| {
                vec![
                    E::Dir(s("d/")),
                    E::File(s("d/f"), b"in".to_vec()),
                    E::Sym(s("d"), sb.abs("sentinel_dir")),
                    E::File(s("d/pwned"), b"x".to_vec()),
                ]
            },
            def,
        ),
        (
            "file over a symlink replaces the symlink",
            Contained,
            |sb| {
                vec![
                    E::Sym(s("l"), sb.abs("sentinel_file")),
                    E::File(s("l"), b"pwned".to_vec()),
                ]
            },
            def,
        ),
        (
            "hardlink to an outward symlink, then overwritten",
            Contained,
            |sb| {
                vec![
                    E::Sym(s("l"), sb.abs("sentinel_file")),
                    E::Link(s("h"), s("l")),
                    E::File(s("h"), b"pwned".to_vec()),
                ]
            },
            def,
        ),
        (
            "directory over an outward symlink",
            Contained,
            |sb| {
                vec![
                    E::Sym(s("l"), sb.abs("sentinel_dir")),
                    E::Dir(s("l/")),
                    E::Dir(s("l/keep/")),
                ]
            },
            def,
        ),
        (
            "whiteout .wh.",
            Rejected,
            |_| vec![E::File(s("etc/.wh."), vec![])],
            def,
        ),
        (
            "whiteout .wh..",
            Rejected,
            |_| vec![E::File(s("etc/.wh.."), vec![])],
            def,
        ),
        (
            "whiteout .wh...",
            Rejected,
            |_| vec![E::File(s("etc/.wh..."), vec![])],
            def,
        ),
        (
            "whiteout targeting ../x",
            Rejected,
            |_| vec![E::File(s("../.wh.sentinel_file"), vec![])],
            def,
        ),
        (
            "whiteout through a symlink",
            Rejected,
            |sb| {
                vec![
                    E::Sym(s("l"), sb.abs("sentinel_dir")),
                    E::File(s("l/.wh.keep"), vec![]),
                ]
            },
            def,
        ),
        (
            "opaque marker through a symlink",
            Rejected,
            |sb| {
                vec![
                    E::Sym(s("l"), sb.abs("sentinel_dir")),
                    E::File(s("l/.wh..wh..opq"), vec![]),
                ]
            },
            def,
        ),
        (
            "device nodes and fifos are skipped",
            Contained,
            |_| vec![E::Char(s("dev/sda")), E::Fifo(s("fifo"))],
            def,
        ),
        (
            "device node outside the root",
            Rejected,
            |_| vec![E::Char(s("../sentinel_dev"))],
            def,
        ),
        (
            "huge sparse file over the byte quota",
            Rejected,
            |_| vec![E::Sparse(s("sparse"), 1 << 40)],
            small,
        ),
        (
            "declared size over the byte quota",
            Rejected,
            |_| vec![E::Declared(s("big"), 2 << 20)],
            small,
        ),
        (
            "files adding up over the byte quota",
            Rejected,
            |_| {
                (0..3)
                    .map(|i| E::File(format!("f{i}"), vec![0; 400 << 10]))
                    .collect()
            },
            small,
        ),
        (
            "too many entries",
            Rejected,
            |_| (0..20).map(|i| E::File(format!("f{i}"), vec![])).collect(),
            small,
        ),
        (
            "too many implicit parent directories",
            Rejected,
            |_| vec![E::File(s("a/b/c/d/e/f/g/h/i/j/k/l"), vec![])],
            small,
        ),
        (
            "symlink chain loop then an entry beneath it",
            Rejected,
            |_| {
                vec![
                    E::Sym(s("a"), s("b")),
                    E::Sym(s("b"), s("a")),
                    E::File(s("a/x"), vec![]),
                ]
            },
            def,
        ),
        (
            "regular file at the root",
            Rejected,
            |_| vec![E::File(s("./"), b"x".to_vec())],
            def,
        ),
        (
            "symlink at the root",
            Rejected,
            |sb| vec![E::Sym(s("/"), sb.abs("sentinel_dir"))],
            def,
        ),
        (
            "entry beneath a regular file",
            Rejected,
            |_| vec![E::File(s("f"), vec![]), E::File(s("f/x"), vec![])],
            def,
        ),
        (
            "symlink component cancelled by .. stays lexical",
            Contained,
            |sb| {
                vec![
                    E::Sym(s("l"), sb.abs("sentinel_dir")),
                    E::File(s("l/../x"), b"in".to_vec()),
                ]
            },
            def,
        ),
    ];
    assert!(cases.len() >= 20);
    for (name, expect, build, limits) in cases {
        let sb = sandbox();
        let before = sb.outside();
        let result = unpack(&sb.root, &build(&sb), limits);
        match (expect, &result) {
            (Expect::Rejected, Err(ImageError::InvalidLayer { .. }))
            | (Expect::Contained, Ok(_)) => {}
            _ => panic!("case {name:?}: expected {expect:?}, got {result:?}"),
        }
        assert_eq!(
            sb.outside(),
            before,
            "case {name:?} changed something outside the root"
        );
        assert_eq!(
            xattr::get(sb.base.join("sentinel_dir"), "trusted.overlay.opaque").unwrap(),
            None,
            "case {name:?} marked a directory outside opaque"
        );
    }
}

#[test]
fn absolute_paths_land_inside_the_root() {
    let sb = sandbox();
    unpack(
        &sb.root,
        &[E::File(sb.abs("sentinel_file"), b"pwned".to_vec())],
        LayerLimits::default(),
    )
    .unwrap();
    let inside = sb
        .root
        .join(sb.abs("sentinel_file").trim_start_matches('/'));
    assert_eq!(fs::read(inside).unwrap(), b"pwned");
    assert_eq!(fs::read(sb.base.join("sentinel_file")).unwrap(), b"orig");
}

#[test]
fn errors_name_the_entry_and_the_problem() {
    let sb = sandbox();
    let err = unpack(
        &sb.root,
        &[E::Sym(s("l"), s("/")), E::File(s("l/x"), vec![])],
        LayerLimits::default(),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        r#"invalid layer entry "l/x": parent component "l" is a symlink (not followed)"#
    );
    let err = unpack(
        &sb.root,
        &[E::File(s("../x"), vec![])],
        LayerLimits::default(),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        r#"invalid layer entry "../x": path escapes the layer root"#
    );
}

/// Unmounts on drop, so a failed assertion does not leave a mount behind.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Err(e) = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH) {
            eprintln!("umount {}: {e}", self.0.display());
        }
    }
}

#[test]
fn overlayfs_honours_converted_whiteouts() {
    let sb = sandbox();
    let lower = sb.base.join("lower");
    fs::create_dir_all(lower.join("d")).unwrap();
    fs::write(lower.join("foo"), "hidden").unwrap();
    fs::write(lower.join("bar"), "visible").unwrap();
    fs::write(lower.join("d/old"), "hidden by opaque").unwrap();
    let entries = [
        E::File(s(".wh.foo"), vec![]),
        E::Dir(s("d/")),
        E::File(s("d/.wh..wh..opq"), vec![]),
        E::File(s("d/new"), b"new".to_vec()),
    ];
    unpack(&sb.root, &entries, LayerLimits::default()).unwrap();
    let merged = sb.base.join("merged");
    fs::create_dir(&merged).unwrap();
    // lowerdir lists the top layer first: the snapshot over `lower`.
    let opts = format!("lowerdir={}:{}", sb.root.display(), lower.display());
    nix::mount::mount(
        Some("overlay"),
        &merged,
        Some("overlay"),
        nix::mount::MsFlags::MS_RDONLY,
        Some(opts.as_str()),
    )
    .expect("mount overlay");
    let _guard = Mounted(merged.clone());
    assert!(!merged.join("foo").exists(), "whiteout hides foo");
    assert_eq!(fs::read_to_string(merged.join("bar")).unwrap(), "visible");
    let mut names: Vec<_> = fs::read_dir(merged.join("d"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, vec!["new"], "opaque dir hides the lower's content");
}

#[test]
fn a_tar_cut_after_its_last_entry_data_is_accepted_and_hashed_as_is() {
    let full = layer(&[
        E::File(s("a"), b"hello".to_vec()),
        E::File(s("b"), vec![7u8; 700]),
    ]);
    // Drop the last entry's padding and the two end-of-archive blocks.
    let cut = 512 + 512 + 512 + 700;
    let truncated = &full[..cut];
    let sb = sandbox();
    let stats = apply_layer(&sb.root, truncated, LayerLimits::default()).unwrap();
    assert_eq!(fs::read(sb.root.join("b")).unwrap(), vec![7u8; 700]);
    assert_eq!(stats.diff_id, crate::image::digest::sha256_of(truncated));
}
