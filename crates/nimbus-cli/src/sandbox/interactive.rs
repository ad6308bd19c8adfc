//! `nimbus sandbox exec -i|-t`: the process is started without waiting, its output followed on
//! `…/processes/{pid}/stream`, the CLI's stdin sent to `…/input` (with `-i`, the end of stdin
//! as `eof`), and with `-t` it gets a pty sized like the CLI's terminal. When stdin is a
//! terminal, `-t` forwards window size changes to `…/resize`, and `-it` puts it in raw mode
//! (restored on the way out, also after a failure; without `-i` keys are not sent, so Ctrl-C
//! must keep interrupting the CLI).

use std::io::{IsTerminal, Read};
use std::os::fd::AsFd;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
use rustix::termios::{OptionalActions, Termios, tcgetattr, tcgetwinsize, tcsetattr};
use serde_json::{Value, json};

use super::{Session, copy_logs};
use crate::Failure;
use crate::client::Live;

/// Bytes of stdin sent per input request (the route takes up to 1 MiB).
const INPUT_CHUNK: usize = 64 * 1024;

/// How `exec` attaches.
pub(super) struct Attach {
    /// `-i`: send stdin.
    pub interactive: bool,
    /// `-t`: allocate a pty.
    pub tty: bool,
}

/// Runs `body` (an exec request) in `session` attached as `attach` says; the process's exit
/// record (`{"code", "signal"}`) when the stream carried one, else the process as listed.
pub(super) fn run(
    live: &Live,
    session: &Session,
    mut body: Value,
    attach: &Attach,
    json: bool,
) -> Result<Value, Failure> {
    let terminal = attach.tty && std::io::stdin().is_terminal();
    if attach.tty {
        body["tty"] = true.into();
        if let Some((cols, rows)) = window_size() {
            (body["cols"], body["rows"]) = (cols.into(), rows.into());
        }
    }
    if terminal {
        // Before any thread starts, so every thread inherits it and only `forward_resizes` takes
        // the signal.
        let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&winch()), None);
    }
    let started = live.call_json("POST", &format!("{}/exec", session.path), &body)?;
    let process = format!("{}/processes/{}", session.path, started["processId"].as_str().unwrap_or_default());
    let output = live.stream(&format!("{process}/stream"))?;
    let _raw = if terminal && attach.interactive { RawMode::enter() } else { None };
    // Neither thread is joined: a read of stdin or a wait for a signal may block until the CLI
    // exits, which the process's end decides.
    if attach.interactive {
        let (live, process) = (live.clone(), process.clone());
        std::thread::spawn(move || send_input(&live, &process));
    }
    if terminal {
        let (live, process) = (live.clone(), process.clone());
        std::thread::spawn(move || forward_resizes(&live, &process));
    }
    match copy_logs(output, json)? {
        Some(exit) => Ok(json!({ "exitCode": exit["code"], "signal": exit["signal"] })),
        None => live.call("GET", &process, None),
    }
}

/// Sends stdin to the process, then its end; stops quietly once the process no longer takes
/// input (it exited or closed its stdin).
fn send_input(live: &Live, process: &str) {
    let path = format!("{process}/input");
    let mut stdin = std::io::stdin().lock();
    let mut buffer = vec![0; INPUT_CHUNK];
    loop {
        let body = match stdin.read(&mut buffer) {
            Ok(0) | Err(_) => json!({ "data": "", "eof": true }),
            Ok(n) => json!({ "data": STANDARD.encode(&buffer[..n]), "encoding": "base64" }),
        };
        let eof = body["eof"] == true;
        if live.call_json("POST", &path, &body).is_err() || eof {
            return;
        }
    }
}

fn winch() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGWINCH);
    set
}

/// Sends the terminal's size to the process's pty after each SIGWINCH.
fn forward_resizes(live: &Live, process: &str) {
    while winch().wait().is_ok() {
        if let Some((cols, rows)) = window_size() {
            let resized = live.call_json("POST", &format!("{process}/resize"), &json!({ "cols": cols, "rows": rows }));
            if resized.is_err() {
                return;
            }
        }
    }
}

/// The CLI's terminal size (stdout's, else stdin's), when it has one.
fn window_size() -> Option<(u16, u16)> {
    let size = tcgetwinsize(std::io::stdout().as_fd()).or_else(|_| tcgetwinsize(std::io::stdin().as_fd())).ok()?;
    (size.ws_col > 0 && size.ws_row > 0).then_some((size.ws_col, size.ws_row))
}

/// stdin's terminal in raw mode (keys go to the process as typed, Ctrl-C included) until
/// dropped.
struct RawMode {
    saved: Termios,
}

impl RawMode {
    fn enter() -> Option<RawMode> {
        let stdin = std::io::stdin();
        let saved = tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        tcsetattr(stdin.as_fd(), OptionalActions::Now, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin().as_fd(), OptionalActions::Now, &self.saved);
    }
}
