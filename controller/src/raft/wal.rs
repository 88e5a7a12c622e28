//! The Raft log's entries on disk: append-only segment files under `DIR/raft-log/`, one
//! `fdatasync` per group of appends.
//!
//! A redb commit rewrites several B-tree pages and costs ~6 writes and a longer flush; an append
//! here is one `pwrite` at the end of the current segment. Each record is
//! `[len u32][crc32 u32][index u64][term u64][entry bytes]` (little endian; the checksum covers
//! index, term and entry), so a torn or garbled tail is recognised on open and cut off, together
//! with everything after it — no record after it was ever acknowledged, since acknowledgement
//! waits for the sync. Records must also continue the log (index + 1, term not smaller), which
//! keeps entries from before a truncation from reappearing. Segments whose entries are all purged
//! are deleted; the purge point itself lives in redb and is written before any file goes.
//!
//! Each segment of format 1 or later starts with a 16-byte header, `HOISTLOG`, the format of its
//! entries (u32 LE) and 4 reserved zero bytes; a segment without it is Hoist 0.1.0's (format 0).
//! The header cannot be mistaken for a 0.1.0 record: read as one, its length is over 1 GiB. Appends
//! in another format than the last segment's start a new segment, so a data dir from 0.1.0 keeps
//! its old segments (read as format 0) until they are purged.
//!
//! What is cut off and what is refused: a bad record is a torn write, cut off with everything
//! after it, only in the last segment and only when part of it was never written (it runs past
//! the end of the file, or one of its 512-byte sectors is all zeros, as etcd's WAL decides);
//! nothing after it was acknowledged, since acknowledgement waits for the sync. A segment is
//! synced before the next one is started, so no earlier segment can hold an unsynced write. Any
//! other bad record (a checksum that fails over written bytes, an absurd length, a record that
//! does not continue the log, a torn record before the last segment) is corruption of
//! acknowledged data: opening fails with the file and offset, and nothing is changed.
//!
//! Segments are preallocated: a background thread writes the next segment full of zeros ahead of
//! time (as etcd's file pipeline does), and rotation renames it into place. Appends then overwrite
//! blocks the file already has, so `fdatasync` flushes the data alone; an append that grows the
//! file also has to write the inode, a second synchronous I/O on every sync. On open, a zero tail
//! is the unused rest of a preallocated segment, not a torn record.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A new segment is started once the current one has grown past this.
const SEGMENT_BYTES: u64 = 8 << 20;
const HEADER: usize = 24;
/// Largest record accepted when reading back (an entry is a batch of commands).
const MAX_RECORD: usize = 256 << 20;
/// The next segment, zero-filled and synced; renamed into place at rotation.
const SPARE: &str = "next.spare";
/// Where the spare is written before it is complete.
const SPARE_TMP: &str = "next.spare.tmp";
/// The first bytes of a segment of format 1 or later.
const SEGMENT_MAGIC: &[u8; 8] = b"HOISTLOG";
/// Magic, format, reserved.
const SEGMENT_HEADER: usize = 16;
/// A torn write leaves at least one whole sector unwritten (zeros, in a preallocated segment).
const SECTOR: usize = 512;

/// Why the log files failed.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("raft log {path}: {what}: {source}")]
    Io {
        path: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
    /// Acknowledged data does not read back: the member must not start on it.
    #[error(
        "raft log {path}: {why} at offset {offset}: the log is corrupt; refusing to start \
         (nothing was changed). With other members alive: remove this one (hoist cluster \
         member-rm ID), empty its data dir and add it back with --join"
    )]
    Corrupt {
        path: PathBuf,
        offset: u64,
        why: String,
    },
}

type WResult<T> = Result<T, WalError>;

fn ctx<T>(r: std::io::Result<T>, path: &Path, what: &'static str) -> WResult<T> {
    r.map_err(|source| WalError::Io {
        path: path.to_path_buf(),
        what,
        source,
    })
}

/// One record to append: index, term, encoded entry (shared with the log store's in-memory
/// mirror, which keeps the same bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub index: u64,
    pub term: u64,
    pub bytes: std::sync::Arc<[u8]>,
}

/// A record read back at open, with where it was and the format of its entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub record: Record,
    pub format: u32,
    pub path: PathBuf,
    pub offset: u64,
}

#[derive(Debug)]
struct Segment {
    path: PathBuf,
    file: File,
    len: u64,
    /// The format of its entries (0: no header).
    format: u32,
    /// Where its first record starts: after the header, if any.
    start: u64,
}

/// The open log files.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    /// By the index the segment was created for (its name); in log order.
    segments: BTreeMap<u64, Segment>,
    /// Where each live entry starts: index → (segment, offset).
    positions: BTreeMap<u64, (u64, u64)>,
    dirty: Vec<u64>,
    dir_dirty: bool,
    /// The next spare segment, if one is under way or ready but not used yet.
    spare: Option<Spare>,
    /// The format appended records are in.
    format: u32,
}

#[derive(Debug)]
enum Spare {
    Writing(std::thread::JoinHandle<std::io::Result<()>>),
    Ready,
}

fn segment_name(first: u64) -> String {
    format!("{first:020}.log")
}

/// Encodes one record.
fn encode(r: &Record, out: &mut Vec<u8>) {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&r.index.to_le_bytes());
    crc.update(&r.term.to_le_bytes());
    crc.update(&r.bytes);
    out.extend_from_slice(&(r.bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&r.index.to_le_bytes());
    out.extend_from_slice(&r.term.to_le_bytes());
    out.extend_from_slice(&r.bytes);
}

/// Why decoding a segment's records stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stop {
    /// The end of the written data: end of file, or the zeros of a preallocated tail.
    End,
    /// A record that was never completely written, at this offset.
    Torn(usize),
    /// A record that was written and does not read back, at this offset.
    Corrupt(usize, String),
}

/// Whether the record at `data[at..end]` was cut short by a crash: part of it lies past the end of
/// the file, or one of the 512-byte sectors it covers (counted from `base`, the file offset of
/// `data[0]`) is all zeros.
fn torn(data: &[u8], at: usize, end: usize, base: usize) -> bool {
    if end > data.len() {
        return true;
    }
    let mut from = at;
    while from < end {
        let next = ((base + from) / SECTOR + 1) * SECTOR - base;
        let chunk = &data[from..next.min(end)];
        if chunk.len() == SECTOR.min(end - from) && chunk.iter().all(|&b| b == 0) {
            return true;
        }
        from = next;
    }
    false
}

/// Decodes the records at the start of `data` (which begins at file offset `base`); stops at the
/// end of the data or at the first record that is short, fails its checksum or does not continue
/// the log. Returns the records (with offsets into `data`), the valid length and why it stopped.
fn decode_all(
    data: &[u8],
    base: usize,
    mut prev: Option<(u64, u64)>,
    skip_upto: Option<u64>,
) -> (Vec<(u64, Record)>, usize, Stop) {
    let mut out = Vec::new();
    let mut at = 0usize;
    let stop = loop {
        if data.len() - at < HEADER {
            break if data[at..].iter().all(|&b| b == 0) {
                Stop::End
            } else {
                Stop::Torn(at)
            };
        }
        let h = &data[at..at + HEADER];
        if h.iter().all(|&b| b == 0) {
            break if data[at..].iter().all(|&b| b == 0) {
                Stop::End
            } else {
                Stop::Torn(at)
            };
        }
        let len = u32::from_le_bytes(h[0..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(h[4..8].try_into().expect("4 bytes"));
        let index = u64::from_le_bytes(h[8..16].try_into().expect("8 bytes"));
        let term = u64::from_le_bytes(h[16..24].try_into().expect("8 bytes"));
        if len > MAX_RECORD {
            break Stop::Corrupt(at, format!("a record length of {len} bytes"));
        }
        let end = at + HEADER + len;
        if end > data.len() {
            break Stop::Torn(at);
        }
        let bytes = &data[at + HEADER..end];
        let mut c = crc32fast::Hasher::new();
        c.update(&index.to_le_bytes());
        c.update(&term.to_le_bytes());
        c.update(bytes);
        if c.finalize() != crc {
            break if torn(data, at, end, base) {
                Stop::Torn(at)
            } else {
                Stop::Corrupt(at, format!("record {index} fails its checksum"))
            };
        }
        // Purged entries are only skipped; live ones must continue the log.
        if skip_upto.is_none_or(|p| index > p) {
            if let Some((pi, pt)) = prev {
                if index != pi + 1 || term < pt {
                    break Stop::Corrupt(
                        at,
                        format!(
                            "record {index} (term {term}) does not follow record {pi} (term {pt})"
                        ),
                    );
                }
            }
            prev = Some((index, term));
        }
        out.push((
            at as u64,
            Record {
                index,
                term,
                bytes: bytes.into(),
            },
        ));
        at = end;
    };
    (out, at, stop)
}

/// The format of a segment's entries and where its records start, from its first bytes.
fn segment_format(data: &[u8]) -> Result<(u32, usize), String> {
    if data.len() < SEGMENT_HEADER || &data[..8] != SEGMENT_MAGIC {
        return Ok((0, 0));
    }
    let format = u32::from_le_bytes(data[8..12].try_into().expect("4 bytes"));
    if format == 0 || format > hoist_proto::format::CURRENT {
        return Err(format!(
            "a segment of format {format} (this build reads {}..={})",
            hoist_proto::format::OLDEST,
            hoist_proto::format::CURRENT
        ));
    }
    Ok((format, SEGMENT_HEADER))
}

fn segment_header(format: u32) -> [u8; SEGMENT_HEADER] {
    let mut h = [0u8; SEGMENT_HEADER];
    h[..8].copy_from_slice(SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&format.to_le_bytes());
    h
}

/// Writes a zero-filled, synced segment-sized file to `dir/SPARE_TMP` and renames it to `SPARE`.
/// On failure (a full disk) the partial file is removed again.
fn write_spare(dir: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = dir.join(SPARE_TMP);
    let written = File::create(&tmp).and_then(|mut f| {
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..SEGMENT_BYTES / zeros.len() as u64 {
            f.write_all(&zeros)?;
        }
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join(SPARE))
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

fn sync_dir(dir: &Path) -> WResult<()> {
    let d = ctx(File::open(dir), dir, "opening the directory")?;
    ctx(d.sync_all(), dir, "syncing the directory")
}

impl Wal {
    /// Opens (or creates) the log in `dir`, whose appends will be in `format`: reads every record
    /// after `purged`, cuts off a torn tail (and any segment after it), deletes fully purged
    /// segments and an empty last one. Returns the live records, or the corruption it found.
    pub fn open(dir: &Path, purged: Option<u64>, format: u32) -> WResult<(Wal, Vec<Loaded>)> {
        ctx(std::fs::create_dir_all(dir), dir, "creating")?;
        let mut names = Vec::new();
        for item in ctx(std::fs::read_dir(dir), dir, "listing")? {
            let item = ctx(item, dir, "listing")?;
            let name = item.file_name();
            let Some(first) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".log"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            names.push(first);
        }
        names.sort_unstable();
        let mut wal = Wal {
            dir: dir.to_path_buf(),
            segments: BTreeMap::new(),
            positions: BTreeMap::new(),
            dirty: Vec::new(),
            dir_dirty: false,
            spare: None,
            format,
        };
        // A spare left by the last run may be incomplete if only its rename was lost; make anew.
        // (Either may also vanish meanwhile: the writer of an earlier `Wal` in this process.)
        for name in [SPARE, SPARE_TMP] {
            let path = dir.join(name);
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(WalError::Io {
                        path,
                        what: "removing",
                        source: e,
                    })
                }
                _ => {}
            }
        }
        // Read everything first: a corrupt record anywhere must leave every file as it was.
        let mut read = Vec::new();
        let mut prev = purged.map(|p| (p, 0));
        let mut torn_at = None;
        let last = names.last().copied();
        for first in names {
            let path = dir.join(segment_name(first));
            if torn_at.is_some() {
                read.push((first, path, None));
                continue;
            }
            let mut file = ctx(
                OpenOptions::new().read(true).write(true).open(&path),
                &path,
                "opening",
            )?;
            let mut data = Vec::new();
            ctx(file.read_to_end(&mut data), &path, "reading")?;
            let corrupt = |offset: usize, why: String| WalError::Corrupt {
                path: path.clone(),
                offset: offset as u64,
                why,
            };
            let (seg_format, start) = segment_format(&data).map_err(|why| corrupt(8, why))?;
            let (records, valid, stop) = decode_all(&data[start..], start, prev, purged);
            match stop {
                Stop::End => {}
                Stop::Torn(at) if Some(first) == last => torn_at = Some((first, start + at)),
                Stop::Torn(at) => {
                    return Err(corrupt(
                        start + at,
                        "a record cut short in a segment that was synced before the next one began"
                            .into(),
                    ))
                }
                Stop::Corrupt(at, why) => return Err(corrupt(start + at, why)),
            }
            let mut loaded = Vec::new();
            for (offset, r) in records {
                if purged.is_some_and(|p| r.index <= p) {
                    continue;
                }
                prev = Some((r.index, r.term));
                loaded.push(Loaded {
                    record: r,
                    format: seg_format,
                    path: path.clone(),
                    offset: start as u64 + offset,
                });
            }
            let segment = Segment {
                path: path.clone(),
                file,
                len: (start + valid) as u64,
                format: seg_format,
                start: start as u64,
            };
            read.push((first, path, Some((segment, loaded))));
        }
        let mut live = Vec::new();
        for (first, path, opened) in read {
            let Some((segment, loaded)) = opened else {
                tracing::warn!(path = %path.display(), "raft log: removing a segment after a torn record");
                ctx(std::fs::remove_file(&path), &path, "removing")?;
                wal.dir_dirty = true;
                continue;
            };
            if torn_at.is_some_and(|(seg, _)| seg == first) {
                let len = segment.len;
                tracing::warn!(
                    path = %path.display(),
                    offset = len,
                    "raft log: cutting off a torn tail (a write the crash interrupted; never acknowledged)"
                );
                ctx(segment.file.set_len(len), &path, "truncating")?;
                ctx(segment.file.sync_all(), &path, "syncing")?;
            }
            for l in &loaded {
                wal.positions.insert(l.record.index, (first, l.offset));
            }
            live.extend(loaded);
            wal.segments.insert(first, segment);
        }
        wal.drop_purged_segments(purged)?;
        // An empty last segment (a crash right after it was made) goes: the next append makes
        // it anew, in the format of the day.
        if let Some((&first, seg)) = wal.segments.iter().next_back() {
            if seg.len <= seg.start {
                let seg = wal.segments.remove(&first).expect("listed");
                ctx(std::fs::remove_file(&seg.path), &seg.path, "removing")?;
                wal.dir_dirty = true;
            }
        }
        if wal.dir_dirty {
            sync_dir(dir)?;
            wal.dir_dirty = false;
        }
        if wal.segments.is_empty() {
            // A new log: its first segment is preallocated too (8 MiB written once, ~10 ms here).
            // Without the space for it, the log grows as it goes instead.
            match write_spare(dir) {
                Ok(()) => wal.spare = Some(Spare::Ready),
                Err(e) => {
                    tracing::warn!(error = %e, dir = %dir.display(), "raft log: could not preallocate a segment; growing it instead");
                }
            }
        } else {
            wal.prepare_spare();
        }
        Ok((wal, live))
    }

    /// Writes `records` (which continue the log) to the current segment; durable after [`Wal::sync`].
    pub fn append(&mut self, records: &[Record]) -> WResult<()> {
        let Some(first) = records.first() else {
            return Ok(());
        };
        let rotate = self
            .segments
            .values()
            .next_back()
            .is_none_or(|s| s.len >= SEGMENT_BYTES || s.format != self.format);
        if rotate {
            // The segment being left is made durable first: a torn write can then only be in the
            // last segment, which is what `open` relies on to tell it from corruption.
            if let Some((&name, seg)) = self.segments.iter().next_back() {
                if self.dirty.contains(&name) {
                    ctx(seg.file.sync_data(), &seg.path, "syncing")?;
                    self.dirty.retain(|d| *d != name);
                }
            }
            let path = self.dir.join(segment_name(first.index));
            let file = match self.take_spare(&path) {
                Some(file) => file,
                None => ctx(
                    OpenOptions::new()
                        .read(true)
                        .write(true)
                        .create(true)
                        .truncate(true)
                        .open(&path),
                    &path,
                    "creating",
                )?,
            };
            let start = if self.format == 0 {
                0
            } else {
                let header = segment_header(self.format);
                ctx(file.write_all_at(&header, 0), &path, "writing the header")?;
                header.len() as u64
            };
            self.segments.insert(
                first.index,
                Segment {
                    path,
                    file,
                    len: start,
                    format: self.format,
                    start,
                },
            );
            self.dir_dirty = true;
        }
        let (&name, seg) = self.segments.iter_mut().next_back().expect("a segment");
        let mut buf = Vec::with_capacity(records.iter().map(|r| HEADER + r.bytes.len()).sum());
        for r in records {
            self.positions
                .insert(r.index, (name, seg.len + buf.len() as u64));
            encode(r, &mut buf);
        }
        ctx(seg.file.write_all_at(&buf, seg.len), &seg.path, "appending")?;
        seg.len += buf.len() as u64;
        if self.dirty.last() != Some(&name) {
            self.dirty.push(name);
        }
        // The next spare is written only now, so that it never takes the room these writes needed.
        if rotate {
            self.prepare_spare();
        }
        Ok(())
    }

    /// Starts writing the next spare segment unless one is under way or ready.
    fn prepare_spare(&mut self) {
        if self.spare.is_none() {
            let dir = self.dir.clone();
            self.spare = std::thread::Builder::new()
                .name("raft-log-spare".into())
                .spawn(move || write_spare(&dir))
                .ok()
                .map(Spare::Writing);
        }
    }

    /// The ready spare, renamed to `path` and opened; `None` (and the caller creates an empty
    /// file) while it is still being written or when writing it failed. Never waits.
    fn take_spare(&mut self, path: &Path) -> Option<File> {
        let written = match self.spare.take()? {
            Spare::Ready => Ok(()),
            Spare::Writing(h) if h.is_finished() => h
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the spare writer panicked"))),
            writing => {
                self.spare = Some(writing);
                return None;
            }
        };
        let spare = self.dir.join(SPARE);
        let opened = written.and_then(|()| {
            std::fs::rename(&spare, path)?;
            OpenOptions::new().read(true).write(true).open(path)
        });
        match opened {
            Ok(file) => Some(file),
            Err(e) => {
                tracing::warn!(error = %e, dir = %self.dir.display(), "raft log: no preallocated segment; growing a new one");
                None
            }
        }
    }

    /// Makes every append so far durable (`fdatasync` of the written segments, and of the
    /// directory when a segment was created).
    pub fn sync(&mut self) -> WResult<()> {
        let (started, any) = (
            std::time::Instant::now(),
            !self.dirty.is_empty() || self.dir_dirty,
        );
        for name in std::mem::take(&mut self.dirty) {
            if let Some(seg) = self.segments.get(&name) {
                ctx(seg.file.sync_data(), &seg.path, "syncing")?;
            }
        }
        if self.dir_dirty {
            sync_dir(&self.dir)?;
            self.dir_dirty = false;
        }
        if any {
            crate::metrics::recorders().log_synced(started.elapsed());
        }
        Ok(())
    }

    /// Removes the entries from `from` on, durably (a conflicting suffix on a follower). Later
    /// segments go first, durably, and then the segment holding `from` is cut: a crash in between
    /// leaves old entries that still continue the log (Raft truncates them again), never a gap.
    pub fn truncate(&mut self, from: u64) -> WResult<()> {
        let Some((_, &(name, offset))) = self.positions.range(from..).next() else {
            return Ok(());
        };
        let later: Vec<u64> = self.segments.range(name + 1..).map(|(k, _)| *k).collect();
        for k in &later {
            let seg = self.segments.remove(k).expect("listed");
            ctx(std::fs::remove_file(&seg.path), &seg.path, "removing")?;
        }
        self.dirty.retain(|d| *d <= name);
        if !later.is_empty() {
            sync_dir(&self.dir)?;
        }
        let seg = self.segments.get_mut(&name).expect("segment of a position");
        if offset <= seg.start {
            // Nothing of it stays: it goes, so that the next append makes it anew (in the format
            // of the day, under the same name).
            let seg = self.segments.remove(&name).expect("listed");
            ctx(std::fs::remove_file(&seg.path), &seg.path, "removing")?;
            self.dirty.retain(|d| *d < name);
        } else {
            ctx(seg.file.set_len(offset), &seg.path, "truncating")?;
            ctx(seg.file.sync_all(), &seg.path, "syncing")?;
            seg.len = offset;
        }
        self.positions.split_off(&from);
        // The removals must be durable before anything is appended in their place.
        sync_dir(&self.dir)?;
        self.dir_dirty = false;
        Ok(())
    }

    /// Forgets entries up to `upto` and deletes the segments that hold nothing newer. The caller
    /// has already recorded the purge point durably.
    pub fn purge(&mut self, upto: u64) -> WResult<()> {
        let keep = self.positions.split_off(&(upto + 1));
        self.positions = keep;
        self.drop_purged_segments(Some(upto))?;
        if self.dir_dirty {
            sync_dir(&self.dir)?;
            self.dir_dirty = false;
        }
        Ok(())
    }

    /// Deletes every segment except the last whose entries are all ≤ `purged`: the next segment
    /// starts at or before `purged + 1`.
    fn drop_purged_segments(&mut self, purged: Option<u64>) -> WResult<()> {
        let Some(p) = purged else { return Ok(()) };
        let names: Vec<u64> = self.segments.keys().copied().collect();
        for pair in names.windows(2) {
            if pair[1] <= p + 1 {
                let seg = self.segments.remove(&pair[0]).expect("listed");
                ctx(std::fs::remove_file(&seg.path), &seg.path, "removing")?;
                self.dirty.retain(|d| *d != pair[0]);
                self.dir_dirty = true;
            }
        }
        Ok(())
    }

    /// Blocks until the spare segment is ready (for tests).
    #[cfg(test)]
    fn wait_for_spare(&self) {
        while let Some(Spare::Writing(h)) = &self.spare {
            if h.is_finished() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Segment files present (for tests).
    #[cfg(test)]
    fn segment_count(&self) -> usize {
        self.segments.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The segment header's length, where format-1 records start.
    const H: u64 = SEGMENT_HEADER as u64;

    fn rec(index: u64, term: u64, size: usize) -> Record {
        Record {
            index,
            term,
            bytes: vec![index as u8; size].into(),
        }
    }

    fn indexes(rs: &[Loaded]) -> Vec<u64> {
        rs.iter().map(|l| l.record.index).collect()
    }

    fn records(rs: Vec<Loaded>) -> Vec<Record> {
        rs.into_iter().map(|l| l.record).collect()
    }

    /// A log dir holding entries 1, 2, 3 (term 1, 10 bytes each) and the path of its segment.
    fn three_synced_records() -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let (mut w, _) = Wal::open(d.path(), None, 1).unwrap();
        w.append(&[rec(1, 1, 10), rec(2, 1, 10), rec(3, 1, 10)])
            .unwrap();
        w.sync().unwrap();
        let path = d.path().join(segment_name(1));
        (d, path)
    }

    #[test]
    fn appends_survive_reopen() {
        let d = tempfile::tempdir().unwrap();
        let (mut w, live) = Wal::open(d.path(), None, 1).unwrap();
        assert!(live.is_empty());
        w.append(&[rec(1, 1, 10), rec(2, 1, 0)]).unwrap();
        w.append(&[rec(3, 2, 100)]).unwrap();
        w.sync().unwrap();
        drop(w);
        let (_, live) = Wal::open(d.path(), None, 1).unwrap();
        assert_eq!(
            records(live),
            vec![rec(1, 1, 10), rec(2, 1, 0), rec(3, 2, 100)]
        );
    }

    #[test]
    fn a_torn_tail_is_cut_off_and_appending_continues() {
        let (d, path) = three_synced_records();
        let len = H + 3 * (HEADER as u64 + 10);
        // A crash in the middle of the third record.
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len - 5).unwrap();
        let (mut w, live) = Wal::open(d.path(), None, 1).unwrap();
        assert_eq!(indexes(&live), [1, 2]);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            H + 2 * (HEADER as u64 + 10)
        );
        w.append(&[rec(3, 2, 7)]).unwrap();
        w.sync().unwrap();
        drop(w);
        let (_, live) = Wal::open(d.path(), None, 1).unwrap();
        assert_eq!(
            records(live),
            vec![rec(1, 1, 10), rec(2, 1, 10), rec(3, 2, 7)]
        );
    }

    #[test]
    fn preallocated_segments_are_used_and_their_zero_tail_is_not_torn() {
        let d = tempfile::tempdir().unwrap();
        let (mut w, _) = Wal::open(d.path(), None, 1).unwrap();
        w.wait_for_spare();
        w.append(&[rec(1, 1, 10), rec(2, 1, 10)]).unwrap();
        w.sync().unwrap();
        let path = d.path().join(segment_name(1));
        let size = || std::fs::metadata(&path).unwrap().len();
        assert_eq!(size(), SEGMENT_BYTES, "the first segment is the spare");
        drop(w);
        let (mut w, live) = Wal::open(d.path(), None, 1).unwrap();
        assert_eq!(indexes(&live), [1, 2]);
        assert_eq!(
            size(),
            SEGMENT_BYTES,
            "the zero tail is kept, not cut off as torn"
        );
        w.append(&[rec(3, 1, 10)]).unwrap();
        w.sync().unwrap();
        drop(w);
        // A torn record inside the preallocated part is cut off like any other.
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&[7; 9], H + 3 * (HEADER as u64 + 10))
            .unwrap();
        let (_, live) = Wal::open(d.path(), None, 1).unwrap();
        assert_eq!(indexes(&live), [1, 2, 3]);
        assert_eq!(size(), H + 3 * (HEADER as u64 + 10));
    }

    /// A disk without room for a preallocated segment: the log grows as it goes, and no partial
    /// spare is left taking space. Needs root (a small tmpfs), as the whole suite does.
    #[test]
    fn a_disk_too_full_for_a_spare_still_takes_appends() {
        struct Mounted(PathBuf);
        impl Drop for Mounted {
            fn drop(&mut self) {
                let _ = std::process::Command::new("umount")
                    .arg("-l")
                    .arg(&self.0)
                    .status();
            }
        }
        let d = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
            .arg(d.path())
            .status()
            .unwrap();
        assert!(status.success(), "mount a 4 MiB tmpfs (run as root)");
        let _mounted = Mounted(d.path().to_path_buf());
        let (mut w, _) = Wal::open(d.path(), None, 1).unwrap();
        w.append(&[rec(1, 1, 10), rec(2, 1, 10)]).unwrap();
        w.sync().unwrap();
        w.wait_for_spare();
        w.append(&[rec(3, 1, 10)]).unwrap();
        w.sync().unwrap();
        for name in [SPARE, SPARE_TMP] {
            assert!(!d.path().join(name).exists(), "{name} left behind");
        }
        drop(w);
        let (_, live) = Wal::open(d.path(), None, 1).unwrap();
        assert_eq!(indexes(&live), [1, 2, 3]);
    }

    #[test]
    fn a_garbled_record_is_refused_naming_the_file_and_offset_and_nothing_changes() {
        let (d, path) = three_synced_records();
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        // Flip a byte of the second record's entry.
        let second = H + (HEADER + 10) as u64;
        f.write_all_at(&[0xff], second + HEADER as u64 + 3).unwrap();
        let before = std::fs::read(&path).unwrap();
        let e = Wal::open(d.path(), None, 1).unwrap_err().to_string();
        assert!(
            e.contains(&format!(
                "{}: record 2 fails its checksum at offset {second}",
                path.display()
            )),
            "{e}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), before, "nothing was changed");
    }

    #[test]
    fn a_torn_write_is_told_from_corruption_by_an_unwritten_sector() {
        // A record of 2000 bytes whose middle sector never reached the disk: torn.
        let mut buf = vec![0u8; 16];
        encode(&rec(1, 1, 10), &mut buf);
        let at = buf.len();
        encode(&rec(2, 1, 2000), &mut buf);
        let mut torn_buf = buf.clone();
        torn_buf[1024..1536].fill(0);
        let (rs, _, stop) = decode_all(&torn_buf[16..], 16, None, None);
        assert_eq!((rs.len(), stop), (1, Stop::Torn(at - 16)));
        // The same record with one flipped byte: corrupt.
        let mut bad = buf.clone();
        bad[1100] ^= 1;
        let (_, _, stop) = decode_all(&bad[16..], 16, None, None);
        assert!(
            matches!(stop, Stop::Corrupt(o, _) if o == at - 16),
            "{stop:?}"
        );
        // A record running past the end of the file: torn.
        let (_, _, stop) = decode_all(&buf[16..buf.len() - 1], 16, None, None);
        assert_eq!(stop, Stop::Torn(at - 16));
    }

    #[test]
    fn segments_of_format_0_are_read_and_appends_go_to_a_new_segment() {
        let d = tempfile::tempdir().unwrap();
        // A log written by 0.1.0: records from offset 0, no header.
        let mut buf = Vec::new();
        encode(&rec(1, 1, 10), &mut buf);
        encode(&rec(2, 1, 10), &mut buf);
        buf.resize(buf.len() + 4096, 0);
        std::fs::write(d.path().join(segment_name(1)), &buf).unwrap();
        let (mut w, live) = Wal::open(d.path(), None, 1).unwrap();
        assert_eq!(live.iter().map(|l| l.format).collect::<Vec<_>>(), [0, 0]);
        w.append(&[rec(3, 2, 10)]).unwrap();
        w.sync().unwrap();
        assert_eq!(w.segment_count(), 2);
        drop(w);
        let (mut w, live) = Wal::open(d.path(), None, 1).unwrap();
        assert_eq!(
            live.iter()
                .map(|l| (l.record.index, l.format))
                .collect::<Vec<_>>(),
            [(1, 0), (2, 0), (3, 1)]
        );
        // Truncating into the old segment and appending again: the new records are format 1.
        w.truncate(2).unwrap();
        w.append(&[rec(2, 3, 10)]).unwrap();
        w.sync().unwrap();
        drop(w);
        let (_, live) = Wal::open(d.path(), None, 1).unwrap();
        assert_eq!(
            live.iter()
                .map(|l| (l.record.index, l.record.term, l.format))
                .collect::<Vec<_>>(),
            [(1, 1, 0), (2, 3, 1)]
        );
    }

    #[test]
    fn a_record_cut_short_before_the_last_segment_is_corruption_not_a_torn_tail() {
        let d = tempfile::tempdir().unwrap();
        let (mut w, _) = Wal::open(d.path(), None, 1).unwrap();
        let big = SEGMENT_BYTES as usize / 2;
        for i in 1..=4 {
            w.append(&[rec(i, 1, big)]).unwrap();
        }
        w.sync().unwrap();
        assert_eq!(w.segment_count(), 2);
        drop(w);
        // A zeroed sector in the middle of the first segment's second record.
        let first = d.path().join(segment_name(1));
        let f = OpenOptions::new().write(true).open(&first).unwrap();
        let at = H + (HEADER + big) as u64 + 4096;
        f.write_all_at(&[0; SECTOR], at - at % SECTOR as u64)
            .unwrap();
        let e = Wal::open(d.path(), None, 1).unwrap_err().to_string();
        assert!(
            e.contains("a record cut short in a segment that was synced"),
            "{e}"
        );
        assert!(
            d.path().join(segment_name(3)).exists(),
            "nothing was removed"
        );
    }

    #[test]
    fn a_segment_of_an_unknown_format_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let mut header = segment_header(1);
        header[8] = 7;
        std::fs::write(d.path().join(segment_name(1)), header).unwrap();
        let e = Wal::open(d.path(), None, 1).unwrap_err().to_string();
        assert!(e.contains("a segment of format 7"), "{e}");
    }

    #[test]
    fn truncated_entries_never_come_back() {
        let d = tempfile::tempdir().unwrap();
        let (mut w, _) = Wal::open(d.path(), None, 1).unwrap();
        w.append(&[rec(1, 1, 10), rec(2, 1, 10), rec(3, 1, 10), rec(4, 1, 10)])
            .unwrap();
        w.sync().unwrap();
        w.truncate(2).unwrap();
        w.append(&[rec(2, 2, 10)]).unwrap();
        w.sync().unwrap();
        drop(w);
        let (_, live) = Wal::open(d.path(), None, 1).unwrap();
        assert_eq!(records(live), vec![rec(1, 1, 10), rec(2, 2, 10)]);
        // Truncating past the end is a no-op.
        let (mut w, _) = Wal::open(d.path(), None, 1).unwrap();
        w.truncate(9).unwrap();
        w.sync().unwrap();
    }

    #[test]
    fn records_that_do_not_continue_the_log_are_corruption() {
        // Bytes of an old entry 3 of term 1 right after a new entry 2 of term 2.
        let mut buf = Vec::new();
        encode(&rec(1, 1, 4), &mut buf);
        encode(&rec(2, 2, 4), &mut buf);
        encode(&rec(3, 1, 4), &mut buf);
        let (rs, _, stop) = decode_all(&buf, 0, None, None);
        assert_eq!(rs.len(), 2);
        assert!(matches!(stop, Stop::Corrupt(_, ref why) if why.contains("does not follow")));
        // A gap is refused too.
        let mut buf = Vec::new();
        encode(&rec(1, 1, 4), &mut buf);
        encode(&rec(3, 1, 4), &mut buf);
        let (rs, _, stop) = decode_all(&buf, 0, None, None);
        assert_eq!(rs.len(), 1);
        assert!(matches!(stop, Stop::Corrupt(..)));
    }

    #[test]
    fn segments_rotate_and_purged_ones_are_deleted() {
        let d = tempfile::tempdir().unwrap();
        let (mut w, _) = Wal::open(d.path(), None, 1).unwrap();
        let big = SEGMENT_BYTES as usize / 2;
        for i in 1..=6 {
            w.append(&[rec(i, 1, big)]).unwrap();
        }
        w.sync().unwrap();
        // 2 records of half a segment (plus headers) fill one segment.
        assert_eq!(w.segment_count(), 3);
        w.purge(3).unwrap();
        assert_eq!(w.segment_count(), 2, "the segment of 1 and 2 is gone");
        drop(w);
        let (mut w, live) = Wal::open(d.path(), Some(3), 1).unwrap();
        assert_eq!(indexes(&live), [4, 5, 6]);
        w.purge(6).unwrap();
        assert_eq!(w.segment_count(), 1, "the last segment stays");
        w.append(&[rec(7, 2, 1)]).unwrap();
        w.sync().unwrap();
        drop(w);
        let (_, live) = Wal::open(d.path(), Some(6), 1).unwrap();
        assert_eq!(indexes(&live), [7]);
    }

    #[test]
    fn a_log_purged_past_its_end_restarts_after_the_purge_point() {
        // After installing a snapshot at 100 the next append is 101.
        let d = tempfile::tempdir().unwrap();
        let (mut w, _) = Wal::open(d.path(), None, 1).unwrap();
        w.append(&[rec(1, 1, 3)]).unwrap();
        w.sync().unwrap();
        w.purge(100).unwrap();
        w.append(&[rec(101, 3, 3)]).unwrap();
        w.sync().unwrap();
        drop(w);
        let (_, live) = Wal::open(d.path(), Some(100), 1).unwrap();
        assert_eq!(indexes(&live), [101]);
    }
}
