//! The supervisor socket protocol: one JSON request line per connection, one JSON answer line;
//! an `attach` connection then carries the process's output as [`WireFrame`] lines until its
//! exit frame (or until the supervisor cuts it off).

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use nimbus_core::NimbusError;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::hub::Ending;
use crate::backend::{
    ExecOutput, ExecSpec, Exit, Frame, OutputStream, Probe, ProcessInfo, ProcessRef, ProcessSpec, RuntimeState,
};

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
    /// Bytes for a process's stdin (base64), optionally closing it after them.
    Input {
        /// Which process.
        target: ProcessRef,
        /// Base64 of the bytes.
        data: String,
        /// Close stdin after the bytes.
        eof: bool,
    },
    /// Starts an exec process.
    Spawn(ProcessSpec),
    /// The exec processes the supervisor knows.
    Processes,
    /// Answered with `ok` (or a failure), then the connection carries the process's frames.
    Attach {
        /// Which process.
        target: ProcessRef,
    },
    /// A signal to a process (an exec process's group).
    Signal {
        /// Which process.
        target: ProcessRef,
        /// Signal number.
        signal: i32,
    },
    /// A new pty size.
    Resize {
        /// Which process.
        target: ProcessRef,
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// SIGKILL to the groups of every running exec process of `owner`.
    KillOwned {
        /// The owner tag.
        owner: String,
    },
    /// A readiness probe from the sandbox's network namespace.
    Probe {
        /// The probe.
        probe: Probe,
        /// Bound on the whole probe.
        #[serde(rename = "timeoutMs")]
        timeout_ms: u64,
    },
    /// The uid and gid of the main process, as the host sees them.
    MainUser,
    /// The TCP ports something in the sandbox listens on (its endpoints).
    Listening,
    /// A TCP connection to `port` on the sandbox's loopback, opened by the supervisor inside the
    /// sandbox's network namespace and handed over with the `ok` answer (SCM_RIGHTS); served on
    /// its own connection ([`connect_port`]).
    Connect {
        /// The port.
        port: u16,
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
    /// Done (`input`, `signal`, `resize`, `killOwned`; `attach` before its frames).
    Ok,
    /// The exec's result.
    Exec(ExecOutput),
    /// A started process (`spawn`).
    Process(ProcessInfo),
    /// The known exec processes (`processes`).
    Processes(Vec<ProcessInfo>),
    /// A probe's result.
    Probe(bool),
    /// The main process's uid and gid, as the host sees them (its user namespace's range).
    User(u32, u32),
    /// Listening TCP ports (`listening`).
    Ports(Vec<u16>),
    /// The request failed in a way the caller is told about.
    Failed(Failure),
    /// The request failed (human text).
    Error(String),
}

/// A catalogued failure of a request, carried over the socket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Failure {
    /// 404 `op.not_found` for a process id.
    NotFound {
        /// The process id.
        id: String,
    },
    /// 409 `op.conflict` with a reason.
    Conflict {
        /// Machine-readable reason.
        reason: String,
        /// Human text.
        message: String,
    },
    /// 400 `op.invalid_input`.
    Invalid {
        /// The field.
        field: String,
        /// Why.
        reason: String,
    },
    /// 429 `rate.resource_exhausted`.
    Exhausted {
        /// What ran out.
        resource: String,
        /// The limit.
        limit: u64,
        /// Current use.
        current: u64,
    },
}

impl Failure {
    /// A conflict.
    pub fn conflict(reason: &str, message: impl Into<String>) -> Self {
        Self::Conflict { reason: reason.to_owned(), message: message.into() }
    }

    /// The catalogued error.
    pub fn into_error(self) -> NimbusError {
        match self {
            Self::NotFound { id } => NimbusError::not_found("process", &id),
            Self::Conflict { reason, message } => NimbusError::conflict(&reason, message, json!({})),
            Self::Invalid { field, reason } => NimbusError::invalid_input(field, reason),
            Self::Exhausted { resource, limit, current } => {
                NimbusError::resource_exhausted(&resource, limit, Some(current))
            }
        }
    }
}

/// One frame of an attachment on the wire (output bytes in base64).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum WireFrame {
    /// Output.
    Output {
        /// Which stream.
        stream: OutputStream,
        /// Base64 of the bytes.
        data: String,
        /// Retained output sent on attach.
        replay: bool,
        /// On the first frame of a replay: bytes of output older than the replay buffer, which
        /// no attachment made now can receive (absent when none, and from older supervisors).
        #[serde(default, rename = "lostBytes", skip_serializing_if = "is_zero")]
        lost_bytes: u64,
    },
    /// The process ended (last frame).
    Exit {
        /// Exit code.
        code: Option<i32>,
        /// Signal.
        signal: Option<i32>,
        /// Timed out.
        #[serde(rename = "timedOut")]
        timed_out: bool,
    },
}

impl WireFrame {
    /// An output frame.
    pub fn output(stream: OutputStream, data: &[u8], replay: bool) -> Self {
        Self::Output { stream, data: base64::engine::general_purpose::STANDARD.encode(data), replay, lost_bytes: 0 }
    }

    /// A replayed output frame; the first of a replay says how many older bytes it lost.
    pub fn replayed(stream: OutputStream, data: &[u8], lost_bytes: u64) -> Self {
        let data = base64::engine::general_purpose::STANDARD.encode(data);
        Self::Output { stream, data, replay: true, lost_bytes }
    }

    /// The exit frame.
    pub fn exit(ending: Ending) -> Self {
        Self::Exit { code: ending.code, signal: ending.signal, timed_out: ending.timed_out }
    }

    /// Queue accounting size.
    pub fn size(&self) -> usize {
        match self {
            Self::Output { data, .. } => data.len(),
            Self::Exit { .. } => 16,
        }
    }

    fn into_frame(self) -> Option<Frame> {
        Some(match self {
            Self::Output { stream, data, replay, lost_bytes } => Frame::Output {
                stream,
                data: base64::engine::general_purpose::STANDARD.decode(data.as_bytes()).ok()?,
                replay,
                lost_bytes,
            },
            Self::Exit { code, signal, timed_out } => Frame::Exit { code, signal, timed_out },
        })
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
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

/// Connects to the supervisor listening at `socket` and sends `request`; the connection's reads
/// and writes time out after `deadline` (none: no timeout).
fn send(socket: &Path, request: &Request, deadline: Option<Duration>) -> std::io::Result<UnixStream> {
    let mut stream = connect(socket)?;
    // A zero timeout would mean "none" to the socket: the shortest real one instead.
    let deadline = deadline.map(|d| d.max(Duration::from_millis(1)));
    stream.set_write_timeout(deadline)?;
    stream.set_read_timeout(deadline)?;
    let mut line = serde_json::to_vec(request).map_err(std::io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    Ok(stream)
}

/// Sends `request` to the supervisor listening at `socket` and reads its first answer line;
/// returns the answer with the connection, positioned after it.
/// The answer must come within `deadline` (none: wait as long as it takes); the connection
/// handed back has no timeout.
fn exchange(
    socket: &Path,
    request: &Request,
    deadline: Option<Duration>,
) -> std::io::Result<(Response, BufReader<UnixStream>)> {
    let stream = send(socket, request, deadline)?;
    let mut reader = BufReader::new(stream);
    let mut answer = String::new();
    reader.read_line(&mut answer)?;
    if answer.is_empty() {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "supervisor closed the connection"));
    }
    reader.get_ref().set_read_timeout(None)?;
    Ok((serde_json::from_str(&answer).map_err(std::io::Error::other)?, reader))
}

/// Sends one request to the supervisor listening at `socket` and reads its answer, within
/// `deadline` (a late answer is a `WouldBlock`/`TimedOut` error).
pub fn call(socket: &Path, request: &Request, deadline: Option<Duration>) -> std::io::Result<Response> {
    exchange(socket, request, deadline).map(|(answer, _)| answer)
}

/// Opens an attachment: sends `request` and reads the answer; on `ok`, returns the frames that
/// follow (the iterator ends after the exit frame, or when the supervisor closes the connection).
pub fn attach(
    socket: &Path,
    request: &Request,
    deadline: Option<Duration>,
) -> std::io::Result<Result<FrameReader, Response>> {
    let (answer, reader) = exchange(socket, request, deadline)?;
    match answer {
        Response::Ok => Ok(Ok(FrameReader { reader: Some(reader) })),
        other => Ok(Err(other)),
    }
}

/// The frames of an attachment, read from its connection (blocking).
pub struct FrameReader {
    reader: Option<BufReader<UnixStream>>,
}

impl Iterator for FrameReader {
    type Item = Frame;

    fn next(&mut self) -> Option<Frame> {
        let reader = self.reader.as_mut()?;
        let mut line = String::new();
        let frame = match reader.read_line(&mut line) {
            Ok(n) if n > 0 => serde_json::from_str::<WireFrame>(&line).ok().and_then(WireFrame::into_frame),
            _ => None,
        };
        if matches!(frame, None | Some(Frame::Exit { .. })) {
            // Dropping the connection detaches at once.
            self.reader = None;
        }
        frame
    }
}

/// Writes one answer line.
pub fn respond(stream: &mut UnixStream, response: &Response) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(response).map_err(std::io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line)
}

/// Answers `ok` with `fd` attached (SCM_RIGHTS), in one message.
pub fn respond_with_fd(stream: &UnixStream, fd: BorrowedFd<'_>) -> std::io::Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let mut line = serde_json::to_vec(&Response::Ok).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let fds = [fd.as_raw_fd()];
    let sent = sendmsg::<()>(
        stream.as_raw_fd(),
        &[std::io::IoSlice::new(&line)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )?;
    // The rest, if the socket took only part (the descriptor went with the first part).
    (&*stream).write_all(&line[sent..])
}

/// Longest answer line a `connect` request reads.
const MAX_CONNECT_ANSWER: usize = 64 * 1024;

/// Asks the supervisor at `socket` for a connection to `port` on the sandbox's loopback (within
/// `deadline`); returns it, or the answer that refused it.
pub fn connect_port(socket: &Path, port: u16, deadline: Duration) -> std::io::Result<Result<OwnedFd, Response>> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let stream = send(socket, &Request::Connect { port }, Some(deadline))?;
    // Read with room for a descriptor until the answer line ends (not through a buffered reader,
    // which would drop the descriptor).
    let (mut answer, mut passed) = (Vec::new(), None);
    while !answer.ends_with(b"\n") {
        let mut chunk = [0u8; 4096];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let mut iov = [std::io::IoSliceMut::new(&mut chunk)];
        let message = recvmsg::<()>(stream.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
        let read = message.bytes;
        for cmsg in message.cmsgs()? {
            if let ControlMessageOwned::ScmRights(fds) = cmsg {
                for fd in fds {
                    // Received just now: this process owns it (extra ones are closed on drop).
                    let fd = super::init::owned(fd);
                    passed.get_or_insert(fd);
                }
            }
        }
        if read == 0 || answer.len() + read > MAX_CONNECT_ANSWER {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "no whole answer from the supervisor"));
        }
        answer.extend_from_slice(&chunk[..read]);
    }
    match serde_json::from_slice::<Response>(&answer).map_err(std::io::Error::other)? {
        Response::Ok => passed.map(Ok).ok_or_else(|| std::io::Error::other("the supervisor sent no connection")),
        other => Ok(Err(other)),
    }
}
