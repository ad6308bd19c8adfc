//! The local admin token file: location, format, validation, creation and rotation.
//!
//! The file lives at `$XDG_DATA_HOME/nimbus/auth/token` (default `~/.local/share/...`), in a
//! directory of mode 0700, with mode 0600 (a looser file or directory is tightened when the
//! server loads it). Every write happens under an exclusive lock on `.token.lock` (0600) beside
//! it and replaces the file atomically (temp file, fsync, rename).

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nimbus_core::limits::{PRIVATE_DIR_MODE, PRIVATE_FILE_MODE};
use nimbus_core::time::{now_ms, rfc3339_ms};
use serde::{Deserialize, Serialize};

const TOKEN_PREFIX: &str = "nimbus_at_";
const SCOPE: &str = "local-admin";

/// The token file's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenRecord {
    /// Format version, always 1.
    pub version: u32,
    /// The bearer token.
    pub token: String,
    /// Bumped by every rotation, starting at 1.
    pub generation: u64,
    /// When this token was issued (RFC 3339, ms).
    pub issued_at: String,
    /// Always `local-admin`.
    pub scope: String,
}

/// Why the token file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    /// Reading, writing or locking failed.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file exists but is not a valid token file.
    #[error("{path} is not a valid Nimbus token file: {reason}")]
    Invalid {
        /// The file involved.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// No home directory to derive the default path from.
    #[error("cannot locate the token file: neither XDG_DATA_HOME nor HOME is set")]
    NoHome,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TokenFileError + '_ {
    move |source| TokenFileError::Io { path: path.to_owned(), source }
}

/// The token file's path for this user.
pub fn default_path() -> Result<PathBuf, TokenFileError> {
    let data_home = match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home = std::env::var_os("HOME").filter(|v| !v.is_empty()).ok_or(TokenFileError::NoHome)?;
            PathBuf::from(home).join(".local/share")
        }
    };
    Ok(data_home.join("nimbus/auth/token"))
}

/// Mints a fresh token: the prefix and 32 random bytes, base64url without padding.
fn mint_token() -> Result<String, std::io::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
    Ok(format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

impl TokenRecord {
    fn validate(&self) -> Result<(), String> {
        if self.version != 1 {
            return Err(format!("version is {}, expected 1", self.version));
        }
        if self.scope != SCOPE {
            return Err(format!("scope is '{}', expected '{SCOPE}'", self.scope));
        }
        if self.generation < 1 {
            return Err("generation must be at least 1".into());
        }
        let encoded = self.token.strip_prefix(TOKEN_PREFIX).ok_or("token lacks the nimbus_at_ prefix")?;
        match URL_SAFE_NO_PAD.decode(encoded) {
            Ok(bytes) if bytes.len() == 32 => Ok(()),
            _ => Err("token is not 32 bytes of base64url".into()),
        }
    }

    fn issue(generation: u64) -> Result<Self, std::io::Error> {
        Ok(Self { version: 1, token: mint_token()?, generation, issued_at: rfc3339_ms(now_ms()), scope: SCOPE.into() })
    }
}

/// Reads and validates the token file; `Ok(None)` when it does not exist.
pub fn load(path: &Path) -> Result<Option<TokenRecord>, TokenFileError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path)(e)),
    };
    let record: TokenRecord = serde_json::from_str(&text)
        .map_err(|e| TokenFileError::Invalid { path: path.to_owned(), reason: e.to_string() })?;
    record.validate().map_err(|reason| TokenFileError::Invalid { path: path.to_owned(), reason })?;
    Ok(Some(record))
}

/// Holds the exclusive lock on `.token.lock` while alive.
struct LockGuard(File);

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

fn lock(path: &Path) -> Result<LockGuard, TokenFileError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::DirBuilder::new().recursive(true).mode(PRIVATE_DIR_MODE).create(dir).map_err(io(dir))?;
    fs::set_permissions(dir, Permissions::from_mode(PRIVATE_DIR_MODE)).map_err(io(dir))?;
    let lock_path = dir.join(".token.lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(PRIVATE_FILE_MODE)
        .open(&lock_path)
        .map_err(io(&lock_path))?;
    file.lock().map_err(io(&lock_path))?;
    Ok(LockGuard(file))
}

/// Writes the record atomically: a 0600 temp file, fsync, rename over the target, fsync the dir.
fn write_atomic(path: &Path, record: &TokenRecord) -> Result<(), TokenFileError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".token.tmp.{}", std::process::id()));
    let mut text = serde_json::to_string_pretty(record).map_err(|e| io(path)(std::io::Error::other(e)))?;
    text.push('\n');
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(PRIVATE_FILE_MODE)
        .open(&tmp)
        .map_err(io(&tmp))?;
    // The mode above applies only to a new file, not to one a crashed writer left behind.
    file.set_permissions(Permissions::from_mode(PRIVATE_FILE_MODE)).map_err(io(&tmp))?;
    file.write_all(text.as_bytes()).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))?;
    Ok(())
}

/// Sets the private mode on the token file and its directory where they let other users in
/// (left so by an operator's copy or an older tool).
fn tighten(path: &Path) -> Result<(), TokenFileError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    for (target, private) in [(path, PRIVATE_FILE_MODE), (dir, PRIVATE_DIR_MODE)] {
        let mode = fs::metadata(target).map_err(io(target))?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            fs::set_permissions(target, Permissions::from_mode(private)).map_err(io(target))?;
            tracing::info!(path = ?target, from = format_args!("{mode:04o}"), "tightened the token file's mode");
        }
    }
    Ok(())
}

/// Loads the token, creating the file with generation 1 on first use; an existing file readable
/// by other users is tightened first.
pub fn load_or_create(path: &Path) -> Result<TokenRecord, TokenFileError> {
    if let Some(record) = load(path)? {
        tighten(path)?;
        return Ok(record);
    }
    let _lock = lock(path)?;
    // Another process may have created it while we waited for the lock.
    if let Some(record) = load(path)? {
        return Ok(record);
    }
    let record = TokenRecord::issue(1).map_err(io(path))?;
    write_atomic(path, &record)?;
    Ok(record)
}

/// Replaces the token with a new one of the next generation.
pub fn rotate(path: &Path) -> Result<TokenRecord, TokenFileError> {
    let _lock = lock(path)?;
    let generation = load(path)?.map_or(0, |r| r.generation);
    let record = TokenRecord::issue(generation + 1).map_err(io(path))?;
    write_atomic(path, &record)?;
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_rotated_and_validated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nimbus/auth/token");
        let first = load_or_create(&path).expect("create");
        assert_eq!(first.generation, 1);
        assert_eq!(load_or_create(&path).expect("load"), first);
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = fs::metadata(path.parent().expect("dir")).expect("meta").permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
        let second = rotate(&path).expect("rotate");
        assert_eq!(second.generation, 2);
        assert_ne!(second.token, first.token);

        let mut bad = second.clone();
        bad.scope = "other".into();
        fs::write(&path, serde_json::to_string(&bad).expect("json")).expect("write");
        let error = load(&path).expect_err("invalid scope");
        assert!(error.to_string().contains(path.to_str().expect("utf8")));
    }

    #[test]
    fn a_token_readable_by_others_is_tightened_at_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nimbus/auth/token");
        let first = load_or_create(&path).expect("create");
        let auth = path.parent().expect("dir");
        fs::set_permissions(&path, Permissions::from_mode(0o644)).expect("loosen the file");
        fs::set_permissions(auth, Permissions::from_mode(0o755)).expect("loosen the dir");
        assert_eq!(load_or_create(&path).expect("load"), first);
        let mode = |p: &Path| format!("{:04o}", fs::metadata(p).expect("meta").permissions().mode() & 0o777);
        assert_eq!((mode(&path), mode(auth)), ("0600".to_owned(), "0700".to_owned()));
    }
}
