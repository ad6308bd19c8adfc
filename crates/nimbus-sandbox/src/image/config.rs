//! What an image's config says about running it: the defaults a sandbox spec may leave out.

use oci_spec::image::{ImageConfiguration, ImageManifest};

use super::{ImageError, ImageStore};

/// Entrypoint, Cmd, Env, WorkingDir and User from an image's config (empty / `None` when
/// absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunConfig {
    /// `Entrypoint`: the program and leading arguments.
    pub entrypoint: Vec<String>,
    /// `Cmd`: default arguments (or the command when there is no entrypoint).
    pub cmd: Vec<String>,
    /// `Env`: `NAME=value` entries.
    pub env: Vec<String>,
    /// `WorkingDir`, when set and non-empty.
    pub working_dir: Option<String>,
    /// `User` (`name`, `uid`, `uid:gid`…), when set and non-empty.
    pub user: Option<String>,
}

impl ImageStore {
    /// The image config fields that fill what a sandbox spec leaves out, for a stored manifest
    /// digest (`sha256:<hex>`).
    pub fn run_config(&self, digest: &str) -> Result<RunConfig, ImageError> {
        let not_found =
            || ImageError::NotFound { reference: digest.to_owned(), reason: "not in the local image store".into() };
        if !self.blobs.contains(digest) {
            return Err(not_found());
        }
        let manifest = ImageManifest::from_reader(&self.blobs.read(digest)?[..])
            .map_err(|e| ImageError::invalid(format!("manifest {digest} is not an image manifest: {e}")))?;
        let config_digest = manifest.config().digest().to_string();
        if !self.blobs.contains(&config_digest) {
            return Err(not_found());
        }
        let config = ImageConfiguration::from_reader(&self.blobs.read(&config_digest)?[..])
            .map_err(|e| ImageError::invalid(format!("the config of {digest} is not an image config: {e}")))?;
        let Some(run) = config.config() else { return Ok(RunConfig::default()) };
        let non_empty = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
        Ok(RunConfig {
            entrypoint: run.entrypoint().clone().unwrap_or_default(),
            cmd: run.cmd().clone().unwrap_or_default(),
            env: run.env().clone().unwrap_or_default(),
            working_dir: non_empty(run.working_dir()),
            user: non_empty(run.user()),
        })
    }
}
