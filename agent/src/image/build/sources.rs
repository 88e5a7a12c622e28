//! COPY/ADD sources in the build context: glob expansion, existence checks that never pass
//! through a symlink, and the content hash that goes into the step's cache key.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::cache::{self, SourceEntry};
use crate::error::AgentError;
use hoist_common::dockerignore;

/// Expands COPY sources against the context (globs, `.`), checks they exist without passing
/// through a symlink, and hashes what they hold, leaving out what `--exclude` patterns match:
/// `(sources, content hash)`.
pub(super) fn expand_and_hash(
    context: &Path,
    srcs: &[String],
    excludes: &[String],
) -> Result<(Vec<String>, String), AgentError> {
    let rules = dockerignore::IgnoreRules::parse(&excludes.join("\n"));
    let mut all: Option<Vec<String>> = None;
    let mut sources = Vec::new();
    for s in srcs {
        let clean = dockerignore::clean(s).ok_or_else(|| {
            AgentError::Invalid(format!("source {s:?} is outside the build context"))
        })?;
        if dockerignore::has_glob(&clean) {
            let every = match &all {
                Some(a) => a,
                None => all.insert(walk(context, "")?),
            };
            let matched: Vec<String> = every
                .iter()
                .filter(|p| dockerignore::glob_match(&clean, p) && !excluded_name(&rules, p))
                .cloned()
                .collect();
            if matched.is_empty() {
                return Err(AgentError::Invalid(format!(
                    "no file in the build context matches {s:?}"
                )));
            }
            sources.extend(matched);
        } else {
            check_in_context(context, &clean, s)?;
            sources.push(clean);
        }
    }
    let mut entries = Vec::new();
    for src in &sources {
        let mut tree = Vec::new();
        hash_tree(context, src, &mut tree)?;
        // Patterns apply to paths below each source, as BuildKit applies them.
        tree.retain(|e| match e.name.strip_prefix(src.as_str()) {
            Some(rest) if rest.starts_with('/') => !rules.is_excluded(&rest[1..]),
            _ => true,
        });
        entries.extend(tree);
    }
    Ok((sources.clone(), cache::content_hash(&entries)))
}

/// Whether a matched path is excluded: by its path or by its own name.
fn excluded_name(rules: &dockerignore::IgnoreRules, path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    rules.is_excluded(path) || rules.is_excluded(name)
}

fn check_in_context(context: &Path, clean: &str, shown: &str) -> Result<(), AgentError> {
    let mut p = context.to_path_buf();
    let parts: Vec<&str> = clean.split('/').filter(|s| !s.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        p.push(part);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if i + 1 < parts.len() && !m.is_dir() => {
                return Err(AgentError::Invalid(format!(
                    "source {shown:?}: {} is not a directory (symlinks are not followed)",
                    parts[..=i].join("/")
                )))
            }
            Ok(_) => {}
            Err(_) => {
                return Err(AgentError::Invalid(format!(
                "source {shown:?} is not in the build context (is it excluded by .dockerignore?)"
            )))
            }
        }
    }
    Ok(())
}

/// Every path under `rel` in the context (relative, sorted), directories included.
pub(super) fn walk(context: &Path, rel: &str) -> Result<Vec<String>, AgentError> {
    let mut out = Vec::new();
    let dir = context.join(rel);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| AgentError::internal(format!("read {}", dir.display()), e))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    names.sort();
    for n in names {
        let child = if rel.is_empty() {
            n
        } else {
            format!("{rel}/{n}")
        };
        let is_dir = std::fs::symlink_metadata(context.join(&child)).is_ok_and(|m| m.is_dir());
        out.push(child.clone());
        if is_dir {
            out.extend(walk(context, &child)?);
        }
    }
    Ok(out)
}

fn hash_tree(context: &Path, rel: &str, out: &mut Vec<SourceEntry>) -> Result<(), AgentError> {
    let top = source_entry(context, rel)?;
    let is_dir = top.kind == 'd';
    out.push(top);
    if is_dir {
        // `walk` already descends: every path beneath, once.
        for child in walk(context, rel)? {
            out.push(source_entry(context, &child)?);
        }
    }
    Ok(())
}

fn source_entry(context: &Path, rel: &str) -> Result<SourceEntry, AgentError> {
    let path = context.join(rel);
    let io = |e: std::io::Error| AgentError::internal(format!("read {}", path.display()), e);
    let m = std::fs::symlink_metadata(&path).map_err(io)?;
    let (kind, content) = if m.is_dir() {
        ('d', String::new())
    } else if m.file_type().is_symlink() {
        (
            'l',
            std::fs::read_link(&path).map_err(io)?.display().to_string(),
        )
    } else {
        let f = std::fs::File::open(&path).map_err(io)?;
        let (d, _) = crate::image::digest::sha256_reader(std::io::BufReader::new(f)).map_err(io)?;
        ('f', d)
    };
    Ok(SourceEntry {
        name: rel.to_owned(),
        kind,
        mode: m.mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
        content,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_expand_and_hash_changes_with_content() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("src/sub")).unwrap();
        std::fs::write(t.path().join("src/a.rs"), "a").unwrap();
        std::fs::write(t.path().join("src/sub/b.rs"), "b").unwrap();
        std::fs::write(t.path().join("top.txt"), "t").unwrap();
        let (s, h1) =
            expand_and_hash(t.path(), &["src/*.rs".into(), "top.txt".into()], &[]).unwrap();
        assert_eq!(s, ["src/a.rs", "top.txt"]);
        let (s, hdir) = expand_and_hash(t.path(), &["src".into()], &[]).unwrap();
        assert_eq!(s, ["src"]);
        std::fs::write(t.path().join("src/sub/b.rs"), "B").unwrap();
        let (_, hdir2) = expand_and_hash(t.path(), &["src".into()], &[]).unwrap();
        assert_ne!(hdir, hdir2, "a nested change alters the directory's hash");
        let (_, h2) =
            expand_and_hash(t.path(), &["src/*.rs".into(), "top.txt".into()], &[]).unwrap();
        assert_eq!(h1, h2, "unrelated files do not");
        assert!(expand_and_hash(t.path(), &["missing".into()], &[]).is_err());
        assert!(expand_and_hash(t.path(), &["../etc".into()], &[]).is_err());
        assert!(expand_and_hash(t.path(), &["*.nope".into()], &[]).is_err());
        // An excluded file changes nothing.
        let excl = ["**/b.rs".to_owned()];
        let (_, e1) = expand_and_hash(t.path(), &["src".into()], &excl).unwrap();
        std::fs::write(t.path().join("src/sub/b.rs"), "changed again").unwrap();
        let (_, e2) = expand_and_hash(t.path(), &["src".into()], &excl).unwrap();
        assert_eq!(e1, e2);
    }
}
