//! The supervisor socket protocol: one JSON request line per connection, one JSON answer line.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::backend::{ExecOutput, ExecSpec, Exit, RuntimeState};

/// A request to a sandbox's supervisor.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum Request {
    /// The current state, at once.
    Status,
    /// Answered when the sandbox has ended.
    Wait,
    /// SIGTERM, SIGKILL after `grace_ms`; answered when ended.
    Stop {
        /// Grace period before SIGKILL.
        #[serde(rename = "graceMs")]
        grace_ms: u64,
    },
    /// Bytes for the main process's stdin (base64).
    Stdin {
        /// Base64 of the bytes.
        data: String,
    },
    /// The host pid of the sandbox's init while it runs.
    Pid,
    /// Runs a command inside the sandbox.
    Exec(ExecSpec),
}

/// A supervisor's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Response {
    /// The state (`status`).
    State(RuntimeState),
    /// The ending (`wait`, `stop`).
    Exit(Exit),
    /// The init's host pid, `None` once ended (`pid`).
    Pid(Option<i32>),
    /// Done (`stdin`).
    Ok,
    /// The exec's result.
    Exec(ExecOutput),
    /// The request failed (human text).
    Error(String),
}

/// Longest socket path passed to `connect` directly; longer ones go through `/proc/self/fd`.
const MAX_DIRECT_SOCKET_PATH: usize = 100;

/// Connects to the unix socket at `path`, also when the path is longer than `sun_path` allows.
pub fn connect(path: &Path) -> std::io::Result<UnixStream> {
    if path.as_os_str().len() < MAX_DIRECT_SOCKET_PATH {
        return UnixStream::connect(path);
    }
    let dir = path.parent().ok_or_else(|| std::io::Error::other("socket path has no parent"))?;
    let name = path.file_name().ok_or_else(|| std::io::Error::other("socket path has no name"))?;
    let dir = std::fs::File::open(dir)?;
    let short = Path::new("/proc/self/fd").join(std::os::fd::AsRawFd::as_raw_fd(&dir).to_string()).join(name);
    UnixStream::connect(short)
}

/// Sends one request to the supervisor listening at `socket` and reads its answer.
pub fn call(socket: &Path, request: &Request) -> std::io::Result<Response> {
    let mut stream = connect(socket)?;
    let mut line = serde_json::to_vec(request).map_err(std::io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    let mut reader = BufReader::new(stream);
    let mut answer = String::new();
    reader.read_line(&mut answer)?;
    if answer.is_empty() {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "supervisor closed the connection"));
    }
    serde_json::from_str(&answer).map_err(std::io::Error::other)
}

/// Writes one answer line.
pub fn respond(stream: &mut UnixStream, response: &Response) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(response).map_err(std::io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line)
}
