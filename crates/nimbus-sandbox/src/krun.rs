//! The `krun` backend: microVM sandboxes. This build has no libkrun integration, so it fails
//! closed: `start` answers 501 `sandbox.backend_unavailable`, never a silent fallback.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nimbus_core::NimbusError;
use serde_json::json;

use crate::backend::{
    Attachment, Backend, ExecOutput, ExecSpec, Exit, LaunchSpec, LogFiles, Probe, ProcessInfo, ProcessRef, ProcessSpec,
    RuntimeState, TerminationReason,
};
use crate::files::SandboxRoot;

/// Library file names libkrun is installed under.
const LIBKRUN_NAMES: &[&str] = &["libkrun.so", "libkrun.so.1"];
/// Directories searched for libkrun.
const LIBRARY_DIRS: &[&str] =
    &["/usr/lib", "/usr/lib64", "/usr/local/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu"];

/// The fail-closed `krun` backend.
#[derive(Debug, Default)]
pub struct KrunBackend;

impl KrunBackend {
    /// The backend.
    pub fn new() -> Self {
        Self
    }

    /// Why microVMs cannot run here (always something in this build).
    pub fn reason() -> String {
        let libkrun =
            LIBRARY_DIRS.iter().any(|dir| LIBKRUN_NAMES.iter().any(|name| Path::new(dir).join(name).exists()));
        let kvm = std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_ok();
        let mut missing = Vec::new();
        if !libkrun {
            missing.push("no libkrun library found");
        }
        if !kvm {
            missing.push("/dev/kvm cannot be opened, so guests cannot boot here");
        }
        if missing.is_empty() {
            missing.push("this build of Nimbus has no libkrun support");
        }
        missing.join("; ")
    }
}

/// No krun sandbox ever runs, so every per-sandbox hook finds its target stopped.
fn stopped(id: &str) -> NimbusError {
    NimbusError::conflict("target_stopped", format!("no krun sandbox {id}"), json!({}))
}

fn lost() -> Exit {
    Exit {
        reason: TerminationReason::ServerRestartLost,
        exit_code: None,
        message: Some("no such krun sandbox".into()),
        finished_at_ms: u64::try_from(nimbus_core::time::now_ms()).unwrap_or(0),
    }
}

impl Backend for KrunBackend {
    fn name(&self) -> &'static str {
        "krun"
    }

    fn availability(&self) -> Result<(), String> {
        Err(Self::reason())
    }

    fn start(&self, _spec: &LaunchSpec) -> Result<RuntimeState, NimbusError> {
        Err(NimbusError::backend_unavailable("krun", Self::reason()))
    }

    fn adopt(&self, _id: &str) -> RuntimeState {
        RuntimeState::Ended(lost())
    }

    fn inspect(&self, _id: &str) -> RuntimeState {
        RuntimeState::Ended(lost())
    }

    fn wait(&self, _id: &str) -> Exit {
        lost()
    }

    fn stop(&self, _id: &str, _grace: Duration) -> Exit {
        lost()
    }

    fn remove(&self, _id: &str) -> Result<(), NimbusError> {
        Ok(())
    }

    fn sweep(&self, _known: &[String]) {}

    fn log_files(&self, id: &str) -> LogFiles {
        let base = PathBuf::from("/nonexistent/nimbus-krun").join(id);
        LogFiles {
            previous: base.join("log.1.ndjson"),
            current: base.join("log.ndjson"),
            dropped_bytes: base.join("dropped"),
        }
    }

    fn input(&self, id: &str, _target: &ProcessRef, _data: &[u8], _eof: bool) -> Result<(), NimbusError> {
        Err(stopped(id))
    }

    fn spawn(&self, id: &str, _spec: &ProcessSpec) -> Result<ProcessInfo, NimbusError> {
        Err(stopped(id))
    }

    fn processes(&self, _id: &str) -> Result<Vec<ProcessInfo>, NimbusError> {
        Ok(Vec::new())
    }

    fn attach(&self, id: &str, _target: &ProcessRef) -> Result<Attachment, NimbusError> {
        Err(stopped(id))
    }

    fn signal(&self, id: &str, _target: &ProcessRef, _signal: i32) -> Result<(), NimbusError> {
        Err(stopped(id))
    }

    fn resize(&self, id: &str, _target: &ProcessRef, _cols: u16, _rows: u16) -> Result<(), NimbusError> {
        Err(stopped(id))
    }

    fn kill_owned(&self, _id: &str, _owner: &str) -> Result<(), NimbusError> {
        Ok(())
    }

    fn probe(&self, _id: &str, _probe: &Probe, _timeout: Duration) -> bool {
        false
    }

    fn connect(&self, id: &str, _port: u16) -> Result<std::net::TcpStream, NimbusError> {
        Err(stopped(id))
    }

    fn listening(&self, _id: &str) -> Vec<u16> {
        Vec::new()
    }

    fn main_user(&self, _id: &str) -> Option<(u32, u32)> {
        None
    }

    fn exec(&self, id: &str, _exec: &ExecSpec) -> Result<ExecOutput, NimbusError> {
        Err(stopped(id))
    }

    fn pin_root(&self, _id: &str) -> Option<SandboxRoot> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Resources;
    use nimbus_core::ErrorCode;

    #[test]
    fn hooks_find_no_sandbox() {
        let krun = KrunBackend::new();
        let err = krun.attach("x", &ProcessRef::Main).err().expect("no attachment");
        assert_eq!(err.code, ErrorCode::OpConflict);
        assert!(krun.input("x", &ProcessRef::Exec("proc-1".into()), b"", true).is_err());
        assert!(krun.processes("x").expect("processes").is_empty());
        assert!(!krun.probe("x", &Probe::Tcp { port: 1 }, Duration::from_millis(1)));
        assert_eq!(krun.main_user("x"), None);
    }

    #[test]
    fn start_fails_closed() {
        let spec = LaunchSpec {
            id: "x".into(),
            image_rootfs: PathBuf::from("/nonexistent"),
            argv: vec!["true".into()],
            env: vec![],
            cwd: "/".into(),
            user: String::new(),
            terminal: false,
            resources: Resources { cpu_count: 1, memory_limit_bytes: 1 << 26, pids_limit: 16, disk_limit_bytes: None },
            egress: None,
        };
        let err = KrunBackend::new().start(&spec).expect_err("krun must fail closed");
        assert_eq!(err.code, ErrorCode::SandboxBackendUnavailable);
        assert_eq!(err.http_status(), 501);
        let detail = err.detail.expect("detail");
        assert_eq!(detail["backend"], "krun");
        assert!(!detail["reason"].as_str().unwrap_or("").is_empty());
    }
}
