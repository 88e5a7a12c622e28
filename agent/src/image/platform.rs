//! Picking one image manifest out of an image index (OCI) or manifest list (Docker), pure.

use serde::Deserialize;

/// `OS/ARCH[/VARIANT]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Default for Platform {
    /// The agent's own platform: `linux/amd64` on this build's target.
    fn default() -> Self {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        Self {
            os: "linux".into(),
            architecture: arch.into(),
            variant: None,
        }
    }
}

impl Platform {
    pub fn parse(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] | [os, arch, _] if !os.is_empty() && !arch.is_empty() => Ok(Self {
                os: (*os).to_owned(),
                architecture: (*arch).to_owned(),
                variant: parts
                    .get(2)
                    .map(|v| (*v).to_owned())
                    .filter(|v| !v.is_empty()),
            }),
            _ => Err(format!("platform {s:?} is not OS/ARCH[/VARIANT]")),
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// A manifest an index points at.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Entry {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default)]
    pub platform: Option<EntryPlatform>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct EntryPlatform {
    pub os: String,
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

#[derive(Deserialize)]
struct IndexDoc {
    manifests: Vec<Entry>,
}

/// Whether a manifest document (by content type or `mediaType`) is an index or manifest list.
pub fn is_index(content_type: Option<&str>, bytes: &[u8]) -> bool {
    const INDEX: [&str; 2] = [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ];
    let declared = serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| {
            if let Some(t) = v.get("mediaType").and_then(|t| t.as_str()) {
                return Some(t.to_owned());
            }
            // OCI indexes may omit mediaType: `manifests` without `config` is an index.
            (v.get("manifests").is_some() && v.get("config").is_none()).then(|| INDEX[0].to_owned())
        });
    declared
        .as_deref()
        .or(content_type)
        .is_some_and(|t| INDEX.contains(&t))
}

/// The entry for `want`; the variant must match only when asked for.
pub fn select(index: &[u8], want: &Platform) -> Result<Entry, String> {
    let doc: IndexDoc =
        serde_json::from_slice(index).map_err(|e| format!("invalid image index: {e}"))?;
    let mut offered = Vec::new();
    for e in &doc.manifests {
        let Some(p) = &e.platform else { continue };
        offered.push(match &p.variant {
            Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
            None => format!("{}/{}", p.os, p.architecture),
        });
        let variant_ok = match &want.variant {
            None => true,
            Some(v) => p.variant.as_deref() == Some(v.as_str()),
        };
        if p.os == want.os && p.architecture == want.architecture && variant_ok {
            return Ok(e.clone());
        }
    }
    Err(format!(
        "no manifest for platform {want} (the index offers: {})",
        if offered.is_empty() {
            "none".to_owned()
        } else {
            offered.join(", ")
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[
      {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"sha256:aa","size":1,"platform":{"os":"linux","architecture":"arm","variant":"v7"}},
      {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"sha256:bb","size":2,"platform":{"os":"linux","architecture":"amd64"}},
      {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:cc","size":3,"platform":{"os":"unknown","architecture":"unknown"}}]}"#;

    #[test]
    fn selects_by_platform() {
        let amd64 = Platform::parse("linux/amd64").unwrap();
        assert_eq!(
            select(INDEX.as_bytes(), &amd64).unwrap().digest,
            "sha256:bb"
        );
        let arm = Platform::parse("linux/arm/v7").unwrap();
        assert_eq!(select(INDEX.as_bytes(), &arm).unwrap().digest, "sha256:aa");
        let err = select(INDEX.as_bytes(), &Platform::parse("linux/s390x").unwrap()).unwrap_err();
        assert!(err.contains("linux/arm/v7, linux/amd64"), "{err}");
        assert!(Platform::parse("linux").is_err());
    }

    #[test]
    fn recognises_indexes() {
        assert!(is_index(None, INDEX.as_bytes()));
        assert!(is_index(None, br#"{"schemaVersion":2,"manifests":[]}"#));
        assert!(!is_index(
            Some("application/vnd.oci.image.index.v1+json"),
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{}}"#
        ));
        assert!(is_index(
            Some("application/vnd.oci.image.index.v1+json"),
            br#"{"schemaVersion":2}"#
        ));
    }
}
