//! `nimbus __supervise <state-dir>`: the hidden entry point of a sandbox's supervisor process
//! (spawned by the `container` backend; not for people).

use std::path::PathBuf;
use std::process::ExitCode;

/// Runs the supervisor of the sandbox whose state directory is `state_dir` until it has ended.
pub fn run(state_dir: PathBuf) -> ExitCode {
    let code = nimbus_sandbox::runtime::supervisor::main(&state_dir);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
