//! The discovery file `server.json`, which tells CLI commands and SDKs where the running server
//! is: `$XDG_RUNTIME_DIR/nimbus/server.json`, else `$XDG_STATE_HOME/nimbus/run/server.json`.

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nimbus_core::limits::{PRIVATE_DIR_MODE, PRIVATE_FILE_MODE};
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

/// Writes the record (atomically: temp file then rename), private to this user: the directory
/// is created 0700 (as the XDG spec asks) and the file is 0600.
pub fn write(path: &Path, record: &ServerRecord) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        DirBuilder::new().recursive(true).mode(PRIVATE_DIR_MODE).create(dir)?;
    }
    let tmp = path.with_extension(format!("json.tmp.{}", std::process::id()));
    let mut file = OpenOptions::new().create(true).truncate(true).write(true).mode(PRIVATE_FILE_MODE).open(&tmp)?;
    // The mode above applies only to a new file, not to one a crashed server left behind.
    file.set_permissions(Permissions::from_mode(PRIVATE_FILE_MODE))?;
    file.write_all(&serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?)?;
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
