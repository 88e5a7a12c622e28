//! Image references (`NAME[:TAG]`): parsing and normalisation, pure and without I/O.
//!
//! The grammar follows the distribution spec's (`docker/distribution/reference`) so names we accept
//! today stay valid when registry pull arrives: lowercase path components separated by `/`, an
//! optional registry host (with port) in front, a tag of at most 128 characters.

use std::fmt;

use crate::RegistryError;

/// The tag a reference gets when it names none.
pub const DEFAULT_TAG: &str = "latest";
const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// A parsed, normalised `NAME:TAG`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference {
    name: String,
    tag: String,
}

impl Reference {
    /// Parses `NAME[:TAG]`; the tag defaults to `latest`.
    pub fn parse(s: &str) -> Result<Self, RegistryError> {
        if s.is_empty() {
            return Err(RegistryError::reference(s, "reference is empty"));
        }
        if s.contains('@') {
            return Err(RegistryError::reference(
                s,
                "digest references (NAME@sha256:...) are not supported",
            ));
        }
        // The tag is after the last ':' only when that colon follows the last '/'
        // (`localhost:5000/app` has a port, not a tag).
        let last_slash = s.rfind('/');
        let (name, tag) = match s.rfind(':') {
            Some(colon) if last_slash.is_none_or(|slash| colon > slash) => {
                (&s[..colon], &s[colon + 1..])
            }
            _ => (s, DEFAULT_TAG),
        };
        check_name(s, name)?;
        check_tag(s, tag)?;
        Ok(Self {
            name: name.to_owned(),
            tag: tag.to_owned(),
        })
    }

    /// The repository name, e.g. `library/busybox`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tag, e.g. `latest`.
    pub fn tag(&self) -> &str {
        &self.tag
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.tag)
    }
}

fn check_tag(reference: &str, tag: &str) -> Result<(), RegistryError> {
    if tag.is_empty() {
        return Err(RegistryError::reference(reference, "tag is empty"));
    }
    if tag.len() > MAX_TAG_LEN {
        return Err(RegistryError::reference(
            reference,
            format!("tag is longer than {MAX_TAG_LEN} characters"),
        ));
    }
    let mut chars = tag.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        return Err(RegistryError::reference(
            reference,
            format!(
                "tag {tag:?} may only contain [A-Za-z0-9_.-] and must not start with '.' or '-'"
            ),
        ));
    }
    Ok(())
}

fn check_name(reference: &str, name: &str) -> Result<(), RegistryError> {
    if name.is_empty() {
        return Err(RegistryError::reference(reference, "name is empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(RegistryError::reference(
            reference,
            format!("name is longer than {MAX_NAME_LEN} characters"),
        ));
    }
    if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(RegistryError::reference(
            reference,
            "name must not be a 64-character hex string (that is an image id)",
        ));
    }
    let components: Vec<&str> = name.split('/').collect();
    let (host, path) = match components.split_first() {
        Some((first, rest))
            if !rest.is_empty()
                && (first.contains('.') || first.contains(':') || *first == "localhost") =>
        {
            (Some(*first), rest)
        }
        _ => (None, components.as_slice()),
    };
    if let Some(host) = host {
        check_host(reference, host)?;
    }
    for component in path {
        check_component(reference, component)?;
    }
    Ok(())
}

fn check_host(reference: &str, host: &str) -> Result<(), RegistryError> {
    let (hostname, port) = match host.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (host, None),
    };
    let host_ok = !hostname.is_empty()
        && hostname.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    if host_ok && port_ok {
        Ok(())
    } else {
        Err(RegistryError::reference(
            reference,
            format!("registry host {host:?} is not a valid HOST[:PORT]"),
        ))
    }
}

/// One path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn check_component(reference: &str, component: &str) -> Result<(), RegistryError> {
    if component.is_empty() {
        return Err(RegistryError::reference(
            reference,
            "name has an empty path component",
        ));
    }
    if component.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(RegistryError::reference(
            reference,
            "repository name must be lowercase",
        ));
    }
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    let mut ok = bytes.first().copied().is_some_and(alnum);
    while ok && i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        // A separator run: '.', '_', '__' or any number of '-', followed by an alphanumeric.
        let start = i;
        match bytes[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if bytes.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while bytes.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => {
                ok = false;
                break;
            }
        }
        ok = i > start && bytes.get(i).copied().is_some_and(alnum);
    }
    if ok {
        Ok(())
    } else {
        Err(RegistryError::reference(
            reference,
            format!(
                "name component {component:?} may only contain [a-z0-9] separated by '.', '_', '__' or '-'"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> String {
        match Reference::parse(s) {
            Ok(r) => r.to_string(),
            Err(e) => panic!("{s:?} rejected: {e}"),
        }
    }

    fn err(s: &str) -> String {
        match Reference::parse(s) {
            Ok(r) => panic!("{s:?} accepted as {r}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults_tag_to_latest() {
        assert_eq!(ok("busybox"), "busybox:latest");
        let r = Reference::parse("busybox").unwrap();
        assert_eq!((r.name(), r.tag()), ("busybox", "latest"));
    }

    #[test]
    fn accepts_paths_tags_and_hosts() {
        assert_eq!(ok("a/b:1.0"), "a/b:1.0");
        assert_eq!(
            ok("library/busybox:1.36.1-musl"),
            "library/busybox:1.36.1-musl"
        );
        assert_eq!(ok("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(
            ok("registry.example.com:443/team/app:v2"),
            "registry.example.com:443/team/app:v2"
        );
        assert_eq!(ok("my_app__x.y-z---w:_T"), "my_app__x.y-z---w:_T");
        assert_eq!(ok("a:B_c.d-e"), "a:B_c.d-e");
    }

    #[test]
    fn rejects_invalid_with_clear_messages() {
        assert!(err("").contains("reference is empty"));
        assert!(err("Busybox").contains("must be lowercase"));
        assert!(err("busy box").contains("may only contain"));
        assert!(err("busybox:").contains("tag is empty"));
        assert!(err("busybox:-x").contains("tag"));
        assert!(err("busybox:a/b").contains("registry host")); // '/' after ':': a host, bad port
        assert!(err("a//b").contains("empty path component"));
        assert!(err("/a").contains("empty path component"));
        assert!(err("a/").contains("empty path component"));
        assert!(err("a..b").contains("may only contain"));
        assert!(err("a___b").contains("may only contain"));
        assert!(err("-a").contains("may only contain"));
        assert!(err("a-").contains("may only contain"));
        assert!(err("a:b:c").contains("may only contain"));
        assert!(err("a@sha256:00").contains("digest references"));
        assert!(err(&"a".repeat(256)).contains("longer than 255"));
        assert!(err(&format!("a:{}", "t".repeat(129))).contains("longer than 128"));
        assert!(err(&"ab".repeat(32)).contains("64-character hex"));
        assert!(err("bad_host:x/app").contains("registry host"));
        assert_eq!(
            err("Busybox"),
            "invalid reference \"Busybox\": repository name must be lowercase"
        );
    }
}
