//! Receiving a build: the request line (JSON [`BuildRequest`]) and the context tar behind it.
//!
//! The context is unpacked with the layer unpacker (never follows a symlink, quotas) into a
//! temporary directory that lives as long as the build. A request whose Dockerfile does not
//! parse is refused before anything is unpacked (the rest of the body is drained, so the client
//! reads the error instead of a reset connection).

use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use hoist_proto::BuildRequest;

use super::dockerfile::Dockerfile;
use crate::error::AgentError;
use crate::image::unpack::{self, LayerLimits};

/// Longest request line accepted (the Dockerfile travels in it).
const MAX_REQUEST_LINE: u64 = 4 << 20;

/// Reads the request line and unpacks the context: `(request, parsed Dockerfile, context dir)`.
pub fn receive(
    body: impl Read,
    tmp: &Path,
) -> Result<(BuildRequest, Dockerfile, tempfile::TempDir), AgentError> {
    let mut reader = BufReader::new(body);
    let mut line = Vec::new();
    (&mut reader)
        .take(MAX_REQUEST_LINE)
        .read_until(b'\n', &mut line)
        .map_err(|e| AgentError::Invalid(format!("read build request: {e}")))?;
    if line.last() != Some(&b'\n') {
        return Err(AgentError::Invalid(format!(
            "build request: the first line must be the JSON request (at most {MAX_REQUEST_LINE} bytes)"
        )));
    }
    let drain = |mut r: BufReader<_>| {
        let _ = io::copy(&mut r, &mut io::sink());
    };
    // Read as every JSON body is (no key twice, nothing after the value but the newline).
    let req: BuildRequest = match hoist_common::json_body::from_slice(&line, "build request") {
        Ok(r) => r,
        Err(e) => {
            drain(reader);
            return Err(AgentError::Invalid(match e {
                hoist_common::json_body::BodyError::Invalid { path: Some(_), .. } => {
                    format!("build request: {e}")
                }
                e => e.to_string(),
            }));
        }
    };
    let df = match super::parse(&req) {
        Ok(df) => df,
        Err(e) => {
            drain(reader);
            return Err(e);
        }
    };
    std::fs::create_dir_all(tmp)
        .map_err(|e| AgentError::internal(format!("create {}", tmp.display()), e))?;
    let dir = tempfile::Builder::new()
        .prefix("context-")
        .tempdir_in(tmp)
        .map_err(|e| AgentError::internal("create context dir", e))?;
    let stream = unpack::decompress(reader)
        .map_err(|e| AgentError::Invalid(format!("build context: {e}")))?;
    unpack::apply_layer(dir.path(), stream, LayerLimits::default())
        .map_err(|e| AgentError::Invalid(format!("build context: {e}")))?;
    Ok((req, df, dir))
}
