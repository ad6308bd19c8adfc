//! The discovery file `server.json`, which tells CLI commands and SDKs where the running server
//! is: `$XDG_RUNTIME_DIR/nimbus/server.json`, else `$XDG_STATE_HOME/nimbus/run/server.json`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The discovery record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerRecord {
    /// The server's process id.
    pub pid: u32,
    /// `host:port` it listens on.
    pub address: String,
    /// Start time (RFC 3339, ms).
    pub started_at: String,
    /// Server version.
    pub version: String,
    /// WebSocket protocol versions it speaks.
    pub protocol_versions: Vec<String>,
}

fn non_empty(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// Where the discovery file lives for this user, if a location can be derived.
pub fn path() -> Option<PathBuf> {
    if let Some(runtime) = non_empty("XDG_RUNTIME_DIR") {
        return Some(runtime.join("nimbus/server.json"));
    }
    let state = non_empty("XDG_STATE_HOME").or_else(|| non_empty("HOME").map(|h| h.join(".local/state")))?;
    Some(state.join("nimbus/run/server.json"))
}

/// Writes the record (atomically: temp file then rename).
pub fn write(path: &Path, record: &ServerRecord) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("json.tmp.{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?)?;
    std::fs::rename(tmp, path)
}

/// Removes the file if it still describes this process.
pub fn remove_own(path: &Path) {
    if read_record(path).is_some_and(|r| r.pid == std::process::id()) {
        let _ = std::fs::remove_file(path);
    }
}

fn read_record(path: &Path) -> Option<ServerRecord> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Reads the record of a live server; a record whose process is gone is stale and deleted.
pub fn read_live() -> Option<ServerRecord> {
    let path = path()?;
    let record = read_record(&path)?;
    if Path::new(&format!("/proc/{}", record.pid)).exists() {
        Some(record)
    } else {
        let _ = std::fs::remove_file(&path);
        None
    }
}
