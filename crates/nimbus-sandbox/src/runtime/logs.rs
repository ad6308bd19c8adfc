//! The sandbox's output log: records cut from the output streams, appended as NDJSON lines to
//! `log.ndjson`, rotated to `log.1.ndjson` so about two files' worth is retained.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};

use base64::Engine;
use nimbus_core::limits::{LOG_FILE_ROTATE_BYTES, LOG_FLUSH_PARTIAL_MS, LOG_RECORD_MAX_BYTES};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::hub::Hub;
use super::layout::{Layout, write_atomic};
use crate::backend::OutputStream;

/// The log files of one sandbox, shared by its stream readers.
pub struct LogSink {
    layout: Layout,
    file: Option<File>,
    /// File size of `log.ndjson`.
    size: u64,
    /// Output bytes recorded in `log.ndjson`.
    current_output: u64,
    /// Output bytes recorded in `log.1.ndjson`.
    previous_output: u64,
    /// Output bytes discarded so far.
    dropped: u64,
}

impl LogSink {
    /// A sink writing into `layout`'s log files.
    pub fn new(layout: Layout) -> Arc<Mutex<Self>> {
        Arc::new(Mutex::new(Self { layout, file: None, size: 0, current_output: 0, previous_output: 0, dropped: 0 }))
    }

    fn append(&mut self, kind: &str, data: &[u8]) {
        let line = record_line(kind, data);
        if self.file.is_none() {
            match OpenOptions::new().create(true).append(true).open(self.layout.log()) {
                Ok(file) => {
                    self.size = file.metadata().map(|m| m.len()).unwrap_or(0);
                    self.file = Some(file);
                }
                Err(err) => {
                    tracing::warn!(%err, "cannot open the sandbox log");
                    return;
                }
            }
        }
        if let Some(file) = &mut self.file {
            if let Err(err) = file.write_all(line.as_bytes()) {
                tracing::warn!(%err, "cannot append to the sandbox log");
                return;
            }
            self.size += line.len() as u64;
            self.current_output += data.len() as u64;
        }
        if self.size >= LOG_FILE_ROTATE_BYTES {
            self.rotate();
        }
    }

    fn rotate(&mut self) {
        self.file = None;
        if let Err(err) = std::fs::rename(self.layout.log(), self.layout.log_previous()) {
            tracing::warn!(%err, "cannot rotate the sandbox log");
            return;
        }
        if self.previous_output > 0 {
            self.dropped += self.previous_output;
            if let Err(err) = write_atomic(&self.layout.dropped(), self.dropped.to_string().as_bytes()) {
                tracing::warn!(%err, "cannot record dropped log bytes");
            }
        }
        self.previous_output = self.current_output;
        self.current_output = 0;
        self.size = 0;
    }
}

/// One NDJSON record line (newline included).
pub fn record_line(kind: &str, data: &[u8]) -> String {
    let time = nimbus_core::time::rfc3339_ms(nimbus_core::time::now_ms());
    let value = match std::str::from_utf8(data) {
        Ok(text) => serde_json::json!({ "kind": kind, "time": time, "data": text }),
        Err(_) => serde_json::json!({
            "kind": kind,
            "time": time,
            "data": base64::engine::general_purpose::STANDARD.encode(data),
            "encoding": "base64",
        }),
    };
    let mut line = value.to_string();
    line.push('\n');
    line
}

/// Where to cut the next record out of `pending`, if one is complete: after a newline, or at
/// the record size limit (backed off so a UTF-8 sequence is never split).
pub fn next_cut(pending: &[u8]) -> Option<usize> {
    let window = &pending[..pending.len().min(LOG_RECORD_MAX_BYTES)];
    if let Some(pos) = window.iter().position(|&b| b == b'\n') {
        return Some(pos + 1);
    }
    if pending.len() < LOG_RECORD_MAX_BYTES {
        return None;
    }
    Some(utf8_safe_cut(window))
}

/// The longest prefix length of `window` that does not end inside a UTF-8 sequence (the whole
/// window when the tail is not a valid sequence prefix anyway).
fn utf8_safe_cut(window: &[u8]) -> usize {
    match std::str::from_utf8(window) {
        Ok(_) => window.len(),
        Err(err) if err.error_len().is_none() && err.valid_up_to() > 0 => err.valid_up_to(),
        Err(_) => {
            // Invalid bytes earlier: cut before a trailing incomplete sequence, if any.
            let start = window.len().saturating_sub(3);
            (start..window.len())
                .rev()
                .find(|&i| window[i] >= 0xC0 && std::str::from_utf8(&window[i..]).is_err())
                .filter(|&i| {
                    let need = match window[i] {
                        b if b >= 0xF0 => 4,
                        b if b >= 0xE0 => 3,
                        _ => 2,
                    };
                    window.len() - i < need
                })
                .unwrap_or(window.len())
        }
    }
}

/// Drains `fd` into the sink as records of `kind` until end of file (or EIO, for a pty master),
/// and passes every read at once to `hub` (the replay ring and live attachments). A partial line
/// is flushed to the log after a short quiet period so prompts show up.
pub fn drain(fd: OwnedFd, kind: &'static str, sink: Arc<Mutex<LogSink>>, hub: Arc<Hub>) {
    let stream = if kind == "stderr" { OutputStream::Stderr } else { OutputStream::Stdout };
    let mut file = File::from(fd);
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let emit = |data: &[u8]| {
        if let Ok(mut sink) = sink.lock() {
            sink.append(kind, data);
        }
    };
    loop {
        if !pending.is_empty() {
            let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
            let timeout = PollTimeout::from(LOG_FLUSH_PARTIAL_MS);
            if let Ok(0) = poll(&mut fds, timeout) {
                let cut = utf8_safe_cut(&pending);
                let cut = if cut == 0 { pending.len() } else { cut };
                emit(&pending[..cut]);
                pending.drain(..cut);
                continue;
            }
        }
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break, // EIO: the pty's last slave closed.
        };
        hub.output(stream, &buf[..n]);
        pending.extend_from_slice(&buf[..n]);
        while let Some(cut) = next_cut(&pending) {
            emit(&pending[..cut]);
            pending.drain(..cut);
        }
    }
    if !pending.is_empty() {
        emit(&pending);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_at_newline_and_limit() {
        assert_eq!(next_cut(b"abc\ndef"), Some(4));
        assert_eq!(next_cut(b"abc"), None);
        let mut long = vec![b'a'; LOG_RECORD_MAX_BYTES - 1];
        long.extend_from_slice("é".as_bytes());
        assert_eq!(next_cut(&long), Some(LOG_RECORD_MAX_BYTES - 1));
    }

    #[test]
    fn invalid_utf8_is_base64() {
        let line = record_line("stderr", &[0, 1, 2, 0xff]);
        assert!(line.contains("\"encoding\":\"base64\""));
        assert!(line.contains("AAEC/w=="));
        let line = record_line("stdout", b"hi\n");
        assert!(line.contains("\"data\":\"hi\\n\""));
    }
}
