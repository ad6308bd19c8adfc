//! Reading a sandbox's output log (sandboxes.md §6). The supervisor appends NDJSON records to
//! the current log file and rotates it into the previous one; readers follow by file identity
//! and offset, so a rotation between two reads loses nothing that is still retained.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nimbus_core::NimbusError;
use nimbus_sandbox::backend::LogFiles;
use serde_json::json;

use super::Sandboxes;
use super::record::SandboxRecord;

/// Where a reader stopped: the current file's identity and the offset read up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogCursor {
    inode: u64,
    offset: u64,
}

/// Frames read from a log, each one NDJSON line without its newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRead {
    /// The frames, oldest first.
    pub frames: Vec<String>,
    /// Where to continue.
    pub cursor: LogCursor,
    /// Whether the sandbox is terminal and the last frame is its `exit` frame.
    pub ended: bool,
}

/// Reads a file from `offset` to its end; a missing file is empty.
fn read_from(path: &Path, offset: u64) -> std::io::Result<(u64, Vec<u8>)> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, Vec::new())),
        Err(e) => return Err(e),
    };
    let inode = file.metadata()?.ino();
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok((inode, bytes))
}

fn inode(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// Complete lines of `bytes`; returns them and how many bytes they span (a trailing partial
/// line is left for the next read).
fn complete_lines(bytes: &[u8]) -> (Vec<String>, u64) {
    let end = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let lines = bytes[..end]
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| String::from_utf8_lossy(line).into_owned())
        .collect();
    (lines, end as u64)
}

fn exit_frame(record: &SandboxRecord) -> String {
    json!({
        "kind": "exit",
        "code": record.exit_code,
        "terminationReason": record.termination_reason.map(|r| r.as_str()),
    })
    .to_string()
}

fn io_error(e: std::io::Error) -> NimbusError {
    tracing::error!(error = %e, "cannot read a sandbox log");
    NimbusError::internal()
}

impl Sandboxes {
    fn log_files(&self, record: &SandboxRecord) -> LogFiles {
        self.backends.get(record.backend).log_files(&record.id)
    }

    /// The retained output: the last `tail` records (all when `None`), preceded by a
    /// `truncated` frame when older output was discarded, and followed by the `exit` frame when
    /// the sandbox is terminal. Blocking file I/O.
    pub fn read_logs(&self, tenant: &str, id: &str, tail: Option<usize>) -> Result<LogRead, NimbusError> {
        // The state is taken before reading: a sandbox seen terminal has written all its output.
        let record = self.get(tenant, id)?;
        let files = self.log_files(&record);
        let (_, previous) = read_from(&files.previous, 0).map_err(io_error)?;
        let (inode, current) = read_from(&files.current, 0).map_err(io_error)?;
        let (mut lines, _) = complete_lines(&previous);
        let (current_lines, offset) = complete_lines(&current);
        lines.extend(current_lines);
        let dropped: u64 =
            std::fs::read_to_string(&files.dropped_bytes).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
        let skip = tail.map_or(0, |tail| lines.len().saturating_sub(tail));
        let mut frames = Vec::new();
        if dropped > 0 && skip == 0 && tail != Some(0) {
            frames.push(json!({ "kind": "truncated", "droppedBytes": dropped }).to_string());
        }
        frames.extend(lines.into_iter().skip(skip));
        let ended = record.state.is_terminal();
        if ended {
            frames.push(exit_frame(&record));
        }
        Ok(LogRead { frames, cursor: LogCursor { inode, offset }, ended })
    }

    /// Records appended since `cursor`, then the `exit` frame once the sandbox is terminal.
    /// Blocking file I/O.
    pub fn follow_logs(&self, tenant: &str, id: &str, cursor: LogCursor) -> Result<LogRead, NimbusError> {
        let record = self.get(tenant, id)?;
        let files = self.log_files(&record);
        let mut frames = Vec::new();
        let mut from = cursor.offset;
        if inode(&files.current).is_some_and(|i| i != cursor.inode) && cursor.inode != 0 {
            // Rotated since the last read: finish the file we were in, if it is still retained.
            if inode(&files.previous) == Some(cursor.inode) {
                let (_, rest) = read_from(&files.previous, cursor.offset).map_err(io_error)?;
                frames.extend(complete_lines(&rest).0);
            } else {
                frames.push(json!({ "kind": "truncated", "droppedBytes": null }).to_string());
            }
            from = 0;
        }
        let (inode, bytes) = read_from(&files.current, from).map_err(io_error)?;
        let (lines, consumed) = complete_lines(&bytes);
        frames.extend(lines);
        let ended = record.state.is_terminal();
        if ended {
            frames.push(exit_frame(&record));
        }
        let cursor = if inode == 0 { cursor } else { LogCursor { inode, offset: from + consumed } };
        Ok(LogRead { frames, cursor, ended })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_complete_lines_are_consumed() {
        let (lines, consumed) = complete_lines(b"{\"a\":1}\n{\"b\":2}\n{\"c\"");
        assert_eq!(lines, ["{\"a\":1}", "{\"b\":2}"]);
        assert_eq!(consumed, 16);
        assert_eq!(complete_lines(b"partial"), (Vec::new(), 0));
    }
}
