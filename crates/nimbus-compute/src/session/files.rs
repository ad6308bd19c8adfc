//! The `files` channel's preconditions (sessions.md §8): the confined file operations
//! themselves are `nimbus_sandbox::files`, run by the caller on the root this returns.

use nimbus_core::NimbusError;
use nimbus_sandbox::files::SandboxRoot;

use super::Sessions;
use super::target::Channel;
use crate::blocking;

/// Where a session's file operations run.
#[derive(Debug)]
pub struct FilesAccess {
    /// The running sandbox's root, pinned to it for the request.
    pub root: SandboxRoot,
    /// Owner (uid, gid) of files written: the main process user.
    pub owner: Option<(u32, u32)>,
}

impl Sessions {
    /// Checks the files channel (400), an open session (409) and a ready target, and returns the
    /// target's root, pinned for the request (taken when the request starts, before its body).
    pub async fn files(&self, tenant: Option<&str>, id: &str) -> Result<FilesAccess, NimbusError> {
        let (entry, bound) = self.bind(tenant, id, Channel::Files).await?;
        let (backend, sandbox_id) = (bound.backend.clone(), bound.sandbox.id.clone());
        let (root, owner) = blocking(move || (backend.pin_root(&sandbox_id), backend.main_user(&sandbox_id))).await?;
        match root {
            Some(root) => Ok(FilesAccess { root, owner }),
            None => {
                let session = self.end(&entry, super::Ending::TargetStopped).await;
                Err(super::not_open(&session))
            }
        }
    }
}
