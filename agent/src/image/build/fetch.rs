//! `ADD <URL>`: downloading remote sources, with `--checksum` verified.
//!
//! Why before any step: a URL that does not answer, or answers with other bytes than its
//! `--checksum` promises, should fail the build before minutes of RUN steps, as BuildKit's
//! solver resolves sources first. URLs whose text depends on variables only known at their step
//! are fetched when the step runs. The file's digest is the step's content key, so a changed
//! remote file reruns the step and an unchanged one is a cache hit.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;

use super::dockerfile::{Args, Cmd, Dockerfile};
use super::{line_err, Builder, StepResult};

/// The largest file `ADD <URL>` downloads.
const MAX_DOWNLOAD_BYTES: u64 = 8 << 30;

/// A downloaded `ADD` source.
#[derive(Debug, Clone)]
pub struct Download {
    /// The file, in the build's scratch directory.
    pub path: PathBuf,
    /// `sha256:` of its bytes.
    pub digest: String,
    /// The name it gets in a destination directory: the URL path's last segment.
    pub name: String,
}

/// Whether an ADD source is a URL.
pub fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// The file name Docker gives a URL's download: the last path segment, else `download`.
pub fn file_name(url: &str) -> String {
    let no_query = url.split(['?', '#']).next().unwrap_or(url);
    let path = no_query
        .split_once("://")
        .map(|(_, rest)| rest)
        .and_then(|rest| rest.split_once('/'))
        .map(|(_, p)| p)
        .unwrap_or("");
    path.rsplit('/')
        .find(|s| !s.is_empty() && *s != "." && *s != "..")
        .unwrap_or("download")
        .to_owned()
}

/// Downloads `url` into `dir`, checking `checksum` (`sha256:HEX`) when given.
pub async fn download(url: &str, dir: &Path, checksum: Option<&str>) -> Result<Download, String> {
    hoist_common::init_tls();
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(60))
        .user_agent(concat!("hoist/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build http client: {e}"))?;
    let mut resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("ADD {url}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("ADD {url}: the server answered {}", resp.status()));
    }
    let file = tempfile::Builder::new()
        .prefix("add-")
        .tempfile_in(dir)
        .map_err(|e| format!("create download file: {e}"))?;
    let (std_file, path) = file
        .keep()
        .map_err(|e| format!("keep download file: {e}"))?;
    let mut out = tokio::fs::File::from_std(std_file);
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    while let Some(chunk) = resp.chunk().await.map_err(|e| format!("ADD {url}: {e}"))? {
        total += chunk.len() as u64;
        if total > MAX_DOWNLOAD_BYTES {
            return Err(format!("ADD {url}: larger than {MAX_DOWNLOAD_BYTES} bytes"));
        }
        hasher.update(&chunk);
        out.write_all(&chunk)
            .await
            .map_err(|e| format!("write download: {e}"))?;
    }
    out.flush()
        .await
        .map_err(|e| format!("write download: {e}"))?;
    let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
    if let Some(want) = checksum {
        if want != digest {
            return Err(format!(
                "ADD {url}: --checksum={want} does not match the downloaded file ({digest})"
            ));
        }
    }
    Ok(Download {
        path,
        digest,
        name: file_name(url),
    })
}

impl Builder {
    /// Downloads, before any step, every `ADD <URL>` of the planned stages whose URL has no
    /// variable in it.
    pub(super) async fn prefetch(&mut self, df: &Dockerfile, plan: &[usize]) -> StepResult<()> {
        for &i in plan {
            for inst in &df.stages[i].instructions {
                if inst.cmd != Cmd::Add {
                    continue;
                }
                let words: Vec<String> = match &inst.args {
                    Args::Json(v) => v.clone(),
                    Args::Text(t) => t.split_whitespace().map(str::to_owned).collect(),
                };
                let Some((_, sources)) = words.split_last() else {
                    continue;
                };
                for url in sources.iter().filter(|w| is_url(w) && !w.contains('$')) {
                    self.fetch(inst, url).await?;
                }
            }
        }
        Ok(())
    }

    /// The download of `url` (fetched once per build).
    pub(super) async fn fetch(
        &mut self,
        inst: &super::Instruction,
        url: &str,
    ) -> StepResult<Download> {
        if let Some(d) = self.downloads.get(url) {
            return Ok(d.clone());
        }
        let dir = self.scratch_dir()?;
        let d = download(url, &dir, inst.flag("checksum"))
            .await
            .map_err(|e| line_err(inst, e))?;
        self.downloads.insert(url.to_owned(), d.clone());
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_url_path() {
        assert_eq!(
            file_name("https://example.com/a/b/tool.tar.gz?x=1"),
            "tool.tar.gz"
        );
        assert_eq!(file_name("http://127.0.0.1:8080/"), "download");
        assert_eq!(file_name("http://h/dir/"), "dir");
        assert!(is_url("https://x/y") && !is_url("ftp://x") && !is_url("file.txt"));
    }
}
