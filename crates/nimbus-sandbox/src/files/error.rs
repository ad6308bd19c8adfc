//! [`FileError`] and its catalogued forms.

use nimbus_core::NimbusError;
use nix::errno::Errno;
use serde_json::json;

/// Why a files operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Nothing at the path (404 `op.not_found`, `detail: {resource: "file", path}`).
    #[error("file '{path}' not found")]
    NotFound {
        /// The request path (normalized).
        path: String,
    },
    /// The path is malformed, or is or resolves to something that is not served (400
    /// `op.invalid_input`, `reason: invalid_path`).
    #[error("invalid path '{path}': {reason}")]
    InvalidPath {
        /// The request path (as given, cut if overlong).
        path: String,
        /// What is wrong with it, for people.
        reason: String,
    },
    /// A directory where a file is needed (400 `op.invalid_input`, `reason: is_directory`).
    #[error("'{path}' is a directory")]
    IsDirectory {
        /// The request path (normalized).
        path: String,
    },
    /// A non-directory where a directory is needed (400 `op.invalid_input`,
    /// `reason: not_a_directory`).
    #[error("'{path}' is not a directory")]
    NotADirectory {
        /// The request path (normalized).
        path: String,
    },
    /// Delete of a non-empty directory without `recursive` (409 `op.conflict`,
    /// `reason: directory_not_empty`).
    #[error("directory '{path}' is not empty; delete it with recursive=true")]
    DirectoryNotEmpty {
        /// The request path (normalized).
        path: String,
    },
    /// More bytes than one request may carry (413 `op.payload_too_large`).
    #[error("{size} bytes is over the limit of {limit} bytes per request; read large files in ranges")]
    TooLarge {
        /// The size of the file (or of the requested range, or of the body).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The sandbox ended while the request worked in it (409 `op.conflict`,
    /// `reason: target_stopped`): nothing was written.
    #[error("the sandbox ended during the operation on '{path}'; nothing was written")]
    SandboxEnded {
        /// The request path.
        path: String,
    },
    /// An unexpected system failure (500 `service.internal`; the cause is logged).
    #[error("{op} '{path}': {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The request path.
        path: String,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
}

impl FileError {
    /// Classifies a failed syscall on the request path `path`.
    pub(super) fn from_errno(op: &'static str, path: &str, errno: Errno) -> FileError {
        let path = path.to_owned();
        match errno {
            Errno::ENOENT => FileError::NotFound { path },
            Errno::ENOTDIR => FileError::NotADirectory { path },
            Errno::EISDIR => FileError::IsDirectory { path },
            Errno::ENOTEMPTY => FileError::DirectoryNotEmpty { path },
            Errno::ELOOP => FileError::InvalidPath { path, reason: "has too many levels of symbolic links".into() },
            Errno::ENAMETOOLONG => FileError::InvalidPath { path, reason: "has a name that is too long".into() },
            // A file system the sandbox mounted itself (such as its `/dev`) takes new files only
            // from ids its user namespace maps.
            Errno::EOVERFLOW if op == "create" || op == "mkdir" => FileError::InvalidPath {
                path,
                reason: "is on a file system only the sandbox's own processes can write to".into(),
            },
            errno => FileError::Io { op, path, source: std::io::Error::from_raw_os_error(errno as i32) },
        }
    }
}

impl From<FileError> for NimbusError {
    fn from(err: FileError) -> Self {
        let message = err.to_string();
        let mut error = match err {
            FileError::NotFound { path } => NimbusError::not_found_path("file", &path),
            FileError::InvalidPath { .. } => NimbusError::invalid_input("path", "invalid_path"),
            FileError::IsDirectory { .. } => NimbusError::invalid_input("path", "is_directory"),
            FileError::NotADirectory { .. } => NimbusError::invalid_input("path", "not_a_directory"),
            FileError::DirectoryNotEmpty { path } => {
                NimbusError::conflict("directory_not_empty", message.clone(), json!({ "path": path }))
            }
            FileError::TooLarge { size, limit } => NimbusError::payload_too_large(
                usize::try_from(limit).unwrap_or(usize::MAX),
                Some(usize::try_from(size).unwrap_or(usize::MAX)),
            ),
            FileError::SandboxEnded { path } => {
                NimbusError::conflict("target_stopped", message.clone(), json!({ "path": path }))
            }
            FileError::Io { op, path, source } => {
                tracing::error!(op, path, error = %source, "sandbox file operation failed");
                return NimbusError::internal();
            }
        };
        error.message = message;
        error
    }
}
