//! Container logs on disk in Docker's `json-file` format: one JSON object per line of output,
//! `{"log":"hello\n","stream":"stdout","time":"2026-..."}`, rotated by size into `log.json.1`.
//!
//! The supervisor writes; the agent reads (`logs`, `logs -f`, `run` without `-d`). Keeping Docker's
//! format means existing log shippers can read Hoist's files unchanged.

use hoist_proto::StreamChunk;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// One line of a log file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    pub log: String,
    pub stream: String,
    pub time: String,
}

impl From<LogRecord> for StreamChunk {
    fn from(r: LogRecord) -> Self {
        StreamChunk {
            stream: Some(r.stream),
            data: Some(r.log),
            time: Some(r.time),
            exit_code: None,
        }
    }
}

/// Longest line written as one record; longer output is split, as Docker does at 16 KiB.
pub const MAX_LINE: usize = 16 * 1024;

/// Appends records to `log.json`, rotating to `log.json.1` past `max_bytes`.
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
}

impl LogWriter {
    pub fn open(path: &Path, max_bytes: u64) -> io::Result<Self> {
        let file = File::options().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path: path.to_path_buf(),
            file,
            size,
            max_bytes: max_bytes.max(4096),
        })
    }

    /// Writes one chunk of output (at most [`MAX_LINE`] bytes, normally ending in a newline).
    pub fn write(&mut self, stream: &str, bytes: &[u8]) -> io::Result<()> {
        let rec = LogRecord {
            log: String::from_utf8_lossy(bytes).into_owned(),
            stream: stream.into(),
            time: super::now_rfc3339(),
        };
        let mut line = serde_json::to_vec(&rec).map_err(io::Error::other)?;
        line.push(b'\n');
        if self.size > 0 && self.size + line.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(&line)?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        std::fs::rename(&self.path, rotated(&self.path))?;
        self.file = File::options().create(true).append(true).open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

/// The previous generation of a log file.
pub fn rotated(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".1");
    PathBuf::from(p)
}

fn parse_lines(reader: impl BufRead, out: &mut Vec<LogRecord>) {
    for line in reader.split(b'\n').map_while(Result::ok) {
        if let Ok(rec) = serde_json::from_slice(&line) {
            out.push(rec);
        }
    }
}

/// All records in both generations, oldest first, keeping the last `tail` if given.
pub fn read_all(path: &Path, tail: Option<usize>) -> io::Result<Vec<LogRecord>> {
    let mut out = Vec::new();
    for p in [rotated(path), path.to_path_buf()] {
        match File::open(&p) {
            Ok(f) => parse_lines(BufReader::new(f), &mut out),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    if let Some(n) = tail {
        let skip = out.len().saturating_sub(n);
        out.drain(..skip);
    }
    Ok(out)
}

/// Follows `log.json` from a position, across rotations: each [`LogFollower::poll`] returns the
/// records written since the last one.
#[derive(Debug)]
pub struct LogFollower {
    path: PathBuf,
    file: Option<File>,
    ino: u64,
    pending: Vec<u8>,
}

impl LogFollower {
    /// Starts at the current end of the file (records already read with [`read_all`] are not repeated).
    pub fn from_end(path: &Path) -> io::Result<Self> {
        let mut f = Self {
            path: path.to_path_buf(),
            file: None,
            ino: 0,
            pending: Vec::new(),
        };
        if let Ok(mut file) = File::open(path) {
            use std::os::unix::fs::MetadataExt;
            f.ino = file.metadata()?.ino();
            file.seek(SeekFrom::End(0))?;
            f.file = Some(file);
        }
        Ok(f)
    }

    /// Starts at the beginning of the current file, after reading the previous generation: the
    /// first [`LogFollower::poll`] returns everything there is.
    pub fn from_start(path: &Path) -> io::Result<(Vec<LogRecord>, Self)> {
        use std::os::unix::fs::MetadataExt;
        let mut older = Vec::new();
        if let Ok(f) = File::open(rotated(path)) {
            parse_lines(BufReader::new(f), &mut older);
        }
        let mut f = Self {
            path: path.to_path_buf(),
            file: None,
            ino: 0,
            pending: Vec::new(),
        };
        if let Ok(file) = File::open(path) {
            f.ino = file.metadata()?.ino();
            f.file = Some(file);
        }
        Ok((older, f))
    }

    pub fn poll(&mut self) -> io::Result<Vec<LogRecord>> {
        use std::io::Read;
        use std::os::unix::fs::MetadataExt;
        let mut out = Vec::new();
        loop {
            if let Some(file) = self.file.as_mut() {
                let mut buf = Vec::new();
                file.read_to_end(&mut buf)?;
                self.pending.extend_from_slice(&buf);
                if let Some(end) = self.pending.iter().rposition(|b| *b == b'\n') {
                    let complete: Vec<u8> = self.pending.drain(..=end).collect();
                    parse_lines(&complete[..], &mut out);
                }
            }
            // Rotated underneath us? Then the file at `path` is a new one: read it from the start.
            match std::fs::metadata(&self.path) {
                Ok(m) if m.ino() != self.ino => {
                    self.file = Some(File::open(&self.path)?);
                    self.ino = m.ino();
                    self.pending.clear();
                }
                _ => return Ok(out),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_docker_json_file_and_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        let mut w = LogWriter::open(&path, 4096).unwrap();
        for i in 0..100 {
            w.write("stdout", format!("line {i}\n").as_bytes()).unwrap();
        }
        w.write("stderr", b"oops\n").unwrap();
        assert!(rotated(&path).exists(), "rotation happened");
        assert!(std::fs::metadata(&path).unwrap().len() <= 4096);
        let all = read_all(&path, None).unwrap();
        // One generation is kept: older lines are gone, the newest are all there in order.
        assert_eq!(
            all.last().unwrap(),
            &LogRecord {
                log: "oops\n".into(),
                stream: "stderr".into(),
                time: all.last().unwrap().time.clone()
            }
        );
        let nums: Vec<usize> = all
            .iter()
            .filter_map(|r| r.log.strip_prefix("line ")?.trim().parse().ok())
            .collect();
        assert!(nums.windows(2).all(|w| w[1] == w[0] + 1));
        assert_eq!(*nums.last().unwrap(), 99);
        assert_eq!(read_all(&path, Some(2)).unwrap().len(), 2);
        let raw = std::fs::read_to_string(&path).unwrap();
        let first: serde_json::Value = serde_json::from_str(raw.lines().next().unwrap()).unwrap();
        assert!(
            first["log"].is_string() && first["stream"].is_string() && first["time"].is_string()
        );
    }

    #[test]
    fn follower_sees_new_lines_across_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        let mut w = LogWriter::open(&path, 4096).unwrap();
        w.write("stdout", b"before\n").unwrap();
        let mut f = LogFollower::from_end(&path).unwrap();
        assert!(f.poll().unwrap().is_empty());
        let mut seen = Vec::new();
        for i in 0..200 {
            w.write("stdout", format!("n{i}\n").as_bytes()).unwrap();
            if i % 7 == 0 {
                seen.extend(f.poll().unwrap());
            }
        }
        seen.extend(f.poll().unwrap());
        let logs: Vec<String> = seen.into_iter().map(|r| r.log).collect();
        let expected: Vec<String> = (0..200).map(|i| format!("n{i}\n")).collect();
        assert_eq!(logs, expected);
    }
}
