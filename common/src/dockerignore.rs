//! `.dockerignore` patterns and the glob matching `COPY` sources share: Docker's semantics, pure.
//!
//! Why here: the CLI decides what of the build context to send (`.dockerignore`), the agent
//! expands `COPY` wildcards against the context it received; both must agree with Docker on what
//! a pattern means. Rules kept: paths are relative to the context root and cleaned (`./a//b` is
//! `a/b`, a leading `/` is dropped); `*` and `?` never cross a `/`; `[a-z]`/`[^a]` are classes; `\`
//! escapes; a `**` segment matches any number of directories (zero included); a pattern that
//! matches a directory excludes everything beneath it; `!pattern` re-includes; the last matching
//! pattern wins; blank lines and `#` comments are ignored.

/// A parsed `.dockerignore`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IgnoreRules {
    patterns: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    segments: Vec<String>,
    negated: bool,
}

/// Cleans a path the way Go's `filepath.Clean` does for relative paths, dropping a leading `/`:
/// `None` when it climbs above the root.
pub fn clean(path: &str) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            s => out.push(s),
        }
    }
    Some(out.join("/"))
}

impl IgnoreRules {
    /// Parses the text of a `.dockerignore` file.
    pub fn parse(text: &str) -> Self {
        let mut patterns = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (negated, pat) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            // A pattern that climbs above the root can match nothing; `..` is dropped like Docker.
            let cleaned = clean(pat).unwrap_or_default();
            if cleaned.is_empty() {
                continue;
            }
            patterns.push(Rule {
                segments: cleaned.split('/').map(str::to_owned).collect(),
                negated,
            });
        }
        Self { patterns }
    }

    /// Whether any rule re-includes (`!`): then an excluded directory must still be walked.
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.negated)
    }

    /// Whether the context path `path` (relative, `/`-separated) is excluded.
    pub fn is_excluded(&self, path: &str) -> bool {
        let Some(path) = clean(path) else {
            return true;
        };
        if path.is_empty() {
            return false;
        }
        let segs: Vec<&str> = path.split('/').collect();
        let mut excluded = false;
        for rule in &self.patterns {
            // The path itself or any of its parent directories.
            let hit = (1..=segs.len()).any(|n| match_segments(&rule.segments, &segs[..n]));
            if hit {
                excluded = !rule.negated;
            }
        }
        excluded
    }
}

/// Matches a `/`-separated glob against a cleaned relative path (whole path, no parent rule).
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let (Some(p), Some(s)) = (clean(pattern), clean(path)) else {
        return false;
    };
    let pat: Vec<String> = p.split('/').map(str::to_owned).collect();
    let segs: Vec<&str> = if s.is_empty() {
        Vec::new()
    } else {
        s.split('/').collect()
    };
    match_segments(&pat, &segs)
}

/// Whether a pattern has glob metacharacters (else it names one path literally).
pub fn has_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

fn match_segments(pat: &[String], path: &[&str]) -> bool {
    match pat.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| match_segments(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((seg, path_rest)) => {
                match_segment(first.as_bytes(), seg.as_bytes()) && match_segments(rest, path_rest)
            }
            None => false,
        },
    }
}

/// Glob match of one path segment: `*`, `?`, `[...]`, `\x`. (`**` inside a segment acts as `*`.)
fn match_segment(p: &[u8], s: &[u8]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(b'*') => (0..=s.len()).any(|i| match_segment(&p[1..], &s[i..])),
        Some(b'?') => !s.is_empty() && match_segment(&p[1..], &s[1..]),
        Some(b'[') => {
            let Some((&c, s_rest)) = s.split_first() else {
                return false;
            };
            match class(&p[1..], c) {
                Some((matched, p_rest)) => matched && match_segment(p_rest, s_rest),
                // An unterminated class is a literal `[`.
                None => c == b'[' && match_segment(&p[1..], s_rest),
            }
        }
        Some(b'\\') if p.len() > 1 => s.first() == Some(&p[1]) && match_segment(&p[2..], &s[1..]),
        Some(&c) => s.first() == Some(&c) && match_segment(&p[1..], &s[1..]),
    }
}

/// Matches `c` against a class body (after `[`): `(matched, rest of the pattern after ])`.
fn class(p: &[u8], c: u8) -> Option<(bool, &[u8])> {
    let (negated, mut i) = match p.first() {
        Some(b'^') | Some(b'!') => (true, 1),
        _ => (false, 0),
    };
    let mut matched = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == b']' && !first {
            return Some((matched != negated, &p[i + 1..]));
        }
        first = false;
        let lo = if p[i] == b'\\' && i + 1 < p.len() {
            i += 1;
            p[i]
        } else {
            p[i]
        };
        if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
            let hi = p[i + 2];
            matched |= lo <= c && c <= hi;
            i += 3;
        } else {
            matched |= lo == c;
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_patterns_and_parent_directories() {
        let r = IgnoreRules::parse("# comment\n\nnode_modules\n*.log\n/build/\n");
        assert!(r.is_excluded("node_modules"));
        assert!(r.is_excluded("node_modules/a/b.js"));
        assert!(r.is_excluded("x.log"));
        assert!(!r.is_excluded("sub/x.log"), "* does not cross /");
        assert!(r.is_excluded("build/out.o"));
        assert!(!r.is_excluded("src/build.rs"));
        assert!(!r.is_excluded("main.rs"));
    }

    #[test]
    fn double_star_matches_any_depth_including_zero() {
        let r = IgnoreRules::parse("**/*.tmp\ndocs/**/secret");
        assert!(r.is_excluded("a.tmp"));
        assert!(r.is_excluded("a/b/c.tmp"));
        assert!(r.is_excluded("docs/secret"));
        assert!(r.is_excluded("docs/x/y/secret"));
        assert!(!r.is_excluded("docs/secretive"));
    }

    #[test]
    fn exceptions_reinclude_and_last_match_wins() {
        let r = IgnoreRules::parse("*.md\n!README.md\n");
        assert!(r.is_excluded("CHANGES.md"));
        assert!(!r.is_excluded("README.md"));
        assert!(r.has_exceptions());
        let r = IgnoreRules::parse("!README.md\n*.md\n");
        assert!(r.is_excluded("README.md"), "a later exclusion wins");
        let r = IgnoreRules::parse("data\n!data/keep\n");
        assert!(r.is_excluded("data/x"));
        assert!(!r.is_excluded("data/keep"));
        assert!(!r.is_excluded("data/keep/inner"));
    }

    #[test]
    fn classes_question_marks_and_escapes() {
        let r = IgnoreRules::parse("file[0-9].txt\n?.c\nlit\\*eral\n[^a]z\n");
        assert!(r.is_excluded("file7.txt"));
        assert!(!r.is_excluded("filex.txt"));
        assert!(r.is_excluded("a.c"));
        assert!(!r.is_excluded("ab.c"));
        assert!(r.is_excluded("lit*eral"));
        assert!(!r.is_excluded("litXeral"));
        assert!(r.is_excluded("bz"));
        assert!(!r.is_excluded("az"));
    }

    #[test]
    fn paths_and_patterns_are_cleaned() {
        let r = IgnoreRules::parse("./a//b/../c\n");
        assert!(r.is_excluded("a/c"));
        assert!(r.is_excluded("./a/c/d"));
        assert_eq!(clean("/x/./y/"), Some("x/y".into()));
        assert_eq!(clean("../x"), None);
    }

    #[test]
    fn glob_match_is_whole_path() {
        assert!(glob_match("src/*.rs", "src/main.rs"));
        assert!(!glob_match("src/*.rs", "src/a/main.rs"));
        assert!(glob_match("*", "file"));
        assert!(!has_glob("plain/path"));
        assert!(has_glob("a*"));
    }

    proptest::proptest! {
        /// A pattern without metacharacters matches exactly its own cleaned path, and an
        /// exclusion always covers everything beneath what it names.
        #[test]
        fn literal_patterns_match_themselves_and_their_subtrees(
            segs in proptest::collection::vec("[a-z0-9._-]{1,6}", 1..5),
            child in "[a-z0-9]{1,6}",
        ) {
            let path = segs.join("/");
            proptest::prop_assume!(clean(&path).is_some_and(|c| c == path));
            proptest::prop_assert!(glob_match(&path, &path));
            let rules = IgnoreRules::parse(&path);
            proptest::prop_assert!(rules.is_excluded(&path));
            let beneath = format!("{path}/{child}");
            proptest::prop_assert!(rules.is_excluded(&beneath));
            let reinclude = IgnoreRules::parse(&format!("{path}\n!{beneath}"));
            proptest::prop_assert!(!reinclude.is_excluded(&beneath));
        }

        /// Arbitrary patterns and paths never panic.
        #[test]
        fn matching_never_panics(pattern in "\\PC{0,20}", path in "\\PC{0,20}") {
            let _ = IgnoreRules::parse(&pattern).is_excluded(&path);
            let _ = glob_match(&pattern, &path);
        }
    }
}
