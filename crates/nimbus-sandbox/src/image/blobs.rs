//! The content-addressed blob directory of an OCI image layout: `blobs/sha256/<hex>`.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::ImageError;

/// Lowercase hex of a SHA-256 digest.
pub(crate) fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hex part of a `sha256:<hex>` digest, if well-formed.
pub(crate) fn digest_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))).then_some(hex)
}

/// The blob directory.
#[derive(Clone)]
pub(crate) struct Blobs {
    dir: PathBuf,
    staging: PathBuf,
}

impl Blobs {
    pub(crate) fn new(root: &Path) -> Self {
        Self { dir: root.join("blobs/sha256"), staging: root.join("tmp") }
    }

    pub(crate) fn create_dirs(&self) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        fs::create_dir_all(&self.staging)
    }

    /// Path of a stored blob (which may not exist).
    pub(crate) fn path(&self, digest: &str) -> Option<PathBuf> {
        digest_hex(digest).map(|hex| self.dir.join(hex))
    }

    /// Whether a blob is stored.
    pub(crate) fn contains(&self, digest: &str) -> bool {
        self.path(digest).is_some_and(|p| p.is_file())
    }

    /// Stores a blob read from `source`, computing its digest; returns `(digest, size)`.
    pub(crate) fn put(&self, mut source: impl Read) -> Result<(String, u64), ImageError> {
        let tmp = self.staging.join(format!("blob-{}", nimbus_core::ids::mint_ulid()));
        let result = (|| {
            let mut file = File::create(&tmp).map_err(ImageError::io("staging a blob"))?;
            let mut hasher = Sha256::new();
            let mut size = 0u64;
            let mut buffer = vec![0u8; 64 * 1024];
            loop {
                let n = source.read(&mut buffer).map_err(ImageError::io("reading a blob"))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buffer[..n]);
                file.write_all(&buffer[..n]).map_err(ImageError::io("staging a blob"))?;
                size += n as u64;
            }
            file.sync_all().map_err(ImageError::io("syncing a blob"))?;
            let digest = format!("sha256:{}", hex(&hasher.finalize()));
            let target = self.path(&digest).ok_or_else(|| ImageError::invalid("computed an invalid digest"))?;
            fs::rename(&tmp, target).map_err(ImageError::io("storing a blob"))?;
            Ok((digest, size))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Stores a blob that must have `expected` as its digest (else the archive is invalid).
    pub(crate) fn put_verified(&self, source: impl Read, expected: &str) -> Result<u64, ImageError> {
        if digest_hex(expected).is_none() {
            return Err(ImageError::invalid(format!("'{expected}' is not a sha256 digest")));
        }
        let (digest, size) = self.put(source)?;
        if digest != expected {
            if let Some(path) = self.path(&digest) {
                let _ = fs::remove_file(path);
            }
            return Err(ImageError::invalid(format!("blob content has digest {digest}, expected {expected}")));
        }
        Ok(size)
    }

    /// Digest and size of a file (a blob staged outside the store).
    pub(crate) fn digest_file(path: &Path) -> Result<(String, u64), ImageError> {
        let mut file = File::open(path).map_err(ImageError::io("reading a staged blob"))?;
        let mut hasher = Sha256::new();
        let size = io::copy(&mut file, &mut hasher).map_err(ImageError::io("reading a staged blob"))?;
        Ok((format!("sha256:{}", hex(&hasher.finalize())), size))
    }

    /// Moves a staged file whose digest the caller verified into the store as `digest`.
    pub(crate) fn adopt(&self, staged: &Path, digest: &str) -> Result<(), ImageError> {
        let target =
            self.path(digest).ok_or_else(|| ImageError::invalid(format!("'{digest}' is not a sha256 digest")))?;
        File::open(staged).and_then(|f| f.sync_all()).map_err(ImageError::io("syncing a blob"))?;
        fs::rename(staged, target).map_err(ImageError::io("storing a blob"))
    }

    /// Reads a stored blob whole (manifests and configs: small JSON documents).
    pub(crate) fn read(&self, digest: &str) -> Result<Vec<u8>, ImageError> {
        let path =
            self.path(digest).ok_or_else(|| ImageError::invalid(format!("'{digest}' is not a sha256 digest")))?;
        fs::read(path).map_err(ImageError::io("reading a blob"))
    }

    /// Opens a stored blob for streaming (layers).
    pub(crate) fn open(&self, digest: &str) -> Result<File, ImageError> {
        let path =
            self.path(digest).ok_or_else(|| ImageError::invalid(format!("'{digest}' is not a sha256 digest")))?;
        File::open(path).map_err(ImageError::io("opening a blob"))
    }

    /// Removes every blob whose digest is not in `keep`.
    pub(crate) fn retain(&self, keep: &std::collections::HashSet<String>) -> Result<(), ImageError> {
        for entry in fs::read_dir(&self.dir).map_err(ImageError::io("listing blobs"))? {
            let path = entry.map_err(ImageError::io("listing blobs"))?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
            if !keep.contains(&format!("sha256:{name}")) {
                fs::remove_file(&path).map_err(ImageError::io("removing a blob"))?;
            }
        }
        Ok(())
    }
}
