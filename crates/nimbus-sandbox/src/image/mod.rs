//! The image store: a content-addressed OCI image layout under `<data-dir>/images/`.
//!
//! ```text
//! images/oci-layout            {"imageLayoutVersion": "1.0.0"}
//! images/index.json            one descriptor per (manifest, reference), with Nimbus annotations
//! images/blobs/sha256/<hex>    manifests, configs, layers
//! images/rootfs/<hex>/         each manifest unpacked once: the shared read-only root
//! images/tmp/                  staging, emptied at start-up
//! ```
//! `index.json` is the only record of what is stored; it is rewritten atomically.
//!
//! Images come in by import (`import.rs`) or by pull from a registry (`pull.rs`, through
//! [`ImageStore::ensure`]), with the operator's credentials from `<data-dir>/registries.json`
//! (`registries.rs`). `layout.rs` writes the archives import reads, from root file system tars
//! (`nimbus image build-browser`).

mod blobs;
mod config;
mod import;
mod layout;
mod pull;
pub mod reference;
mod registries;
mod unpack;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use nimbus_core::time::now_ms;
use nimbus_core::{ErrorCode, NimbusError, remediation};
use oci_spec::image::{ImageConfiguration, ImageManifest};
use serde_json::{Value, json};

use blobs::{Blobs, digest_hex};
pub use config::RunConfig;
use import::{MANIFEST_MEDIA_TYPE, REF_NAME, import_archive, maybe_gunzip};
pub use layout::{Layout, LayoutImage, LayoutLayer, LayoutWriter};
pub use reference::{Reference, ReferenceError};
use registries::Credentials;
use unpack::ImageBudget;
pub use unpack::UnpackLimits;

const SOURCE: &str = "io.nimbus.image.source";
const STORED_AT: &str = "io.nimbus.image.stored-at";
const OS: &str = "io.nimbus.image.os";
const ARCH: &str = "io.nimbus.image.architecture";
const SIZE: &str = "io.nimbus.image.size";

/// Why a registry could not be reached at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreachable {
    /// Its host name did not resolve.
    NameResolution,
    /// It refused the connection.
    ConnectionRefused,
}

/// Why an image operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// No stored image matches.
    #[error("image '{reference}' not found: {reason}")]
    NotFound {
        /// What was asked for.
        reference: String,
        /// Why nothing matched.
        reason: String,
    },
    /// The archive, or something in it, is not a valid image.
    #[error("invalid image archive: {0}")]
    Invalid(String),
    /// A reference does not parse.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// A registry could not be reached, refused the pull, or sent bad data.
    #[error("pulling image '{reference}' from {registry} failed: {reason}")]
    PullFailed {
        /// The normalized reference being pulled.
        reference: String,
        /// The registry host (`host[:port]`).
        registry: String,
        /// What went wrong.
        reason: String,
        /// The registry's HTTP status, when it answered with one.
        http_status: Option<u16>,
        /// Set when the registry could not be reached at all (its name did not resolve, or it
        /// refused the connection): the error then points to importing the image instead.
        unreachable: Option<Unreachable>,
    },
    /// The operator's `registries.json` is unreadable or malformed.
    #[error("invalid registry credentials file {path}: {reason}")]
    Credentials {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A layer or an archive expands past one of the unpacking limits ([`UnpackLimits`]).
    #[error("{cap} is {observed}, over the limit of {limit}")]
    TooLarge {
        /// Which bound: `image_layer_bytes`, `image_layer_entries`, `image_bytes`,
        /// `image_tar_header_bytes`, `image_archive_bytes`, `image_archive_entries`.
        cap: &'static str,
        /// What was seen when unpacking stopped (at least this much).
        observed: u64,
        /// The limit.
        limit: u64,
    },
    /// The store's files could not be read or written.
    #[error("image store I/O failed while {context}: {source}")]
    Io {
        /// What the store was doing.
        context: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl ImageError {
    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Self::Invalid(reason.into())
    }

    pub(crate) fn io(context: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| Self::Io { context, source }
    }

    /// A copy for each caller that shared one pull (`io::Error` is not `Clone`).
    fn duplicate(&self) -> Self {
        match self {
            Self::NotFound { reference, reason } => {
                Self::NotFound { reference: reference.clone(), reason: reason.clone() }
            }
            Self::Invalid(reason) => Self::Invalid(reason.clone()),
            Self::Reference(e) => Self::Reference(e.clone()),
            Self::PullFailed { reference, registry, reason, http_status, unreachable } => Self::PullFailed {
                reference: reference.clone(),
                registry: registry.clone(),
                reason: reason.clone(),
                http_status: *http_status,
                unreachable: *unreachable,
            },
            Self::Credentials { path, reason } => Self::Credentials { path: path.clone(), reason: reason.clone() },
            Self::TooLarge { cap, observed, limit } => Self::TooLarge { cap, observed: *observed, limit: *limit },
            Self::Io { context, source } => {
                Self::Io { context, source: std::io::Error::new(source.kind(), source.to_string()) }
            }
        }
    }
}

impl From<ImageError> for NimbusError {
    fn from(error: ImageError) -> Self {
        match error {
            ImageError::NotFound { reference, reason } => NimbusError::new(
                ErrorCode::SandboxImageNotFound,
                format!("image '{reference}' not found: {reason}"),
                Some(json!({ "reference": reference, "reason": reason })),
            )
            .remedy(remediation::image_not_found(&reference)),
            ImageError::Invalid(reason) => NimbusError::invalid_input("body", reason),
            ImageError::Reference(e) => NimbusError::invalid_input("reference", e.to_string()),
            ImageError::PullFailed { reference, registry, reason, http_status, unreachable } => {
                let mut detail = json!({ "reference": reference, "registry": registry, "reason": reason });
                if let Some(status) = http_status {
                    detail["httpStatus"] = json!(status);
                }
                let error = NimbusError::new(
                    ErrorCode::SandboxImagePullFailed,
                    format!("pulling image '{reference}' from {registry} failed: {reason}"),
                    Some(detail),
                );
                // Other failures (TLS, auth, 5xx, bad data) keep the catalog's "retry".
                match unreachable {
                    Some(cause) => {
                        let refused = cause == Unreachable::ConnectionRefused;
                        error.remedy(remediation::image_pull_unreachable(&registry, &reference, refused))
                    }
                    None => error,
                }
            }
            ImageError::TooLarge { cap, observed, limit } => NimbusError::cap_exceeded(cap, observed, limit),
            ImageError::Credentials { .. } | ImageError::Io { .. } => {
                tracing::error!(error = %error, "image store failure");
                NimbusError::new(
                    ErrorCode::ServiceStorageIo,
                    "image store I/O failed",
                    Some(json!({ "storageKind": "io" })),
                )
            }
        }
    }
}

/// Where a stored image came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageSource {
    /// Pulled from a registry.
    Pull,
    /// Imported from an archive.
    Import,
}

impl ImageSource {
    /// The wire literal.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageSource::Pull => "pull",
            ImageSource::Import => "import",
        }
    }
}

/// One stored image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    /// Manifest digest, `sha256:<hex>`.
    pub digest: String,
    /// Normalized references naming it (may be empty).
    pub references: Vec<String>,
    /// Image OS.
    pub os: String,
    /// Image architecture.
    pub architecture: String,
    /// Manifest, config and layers, in bytes.
    pub size_bytes: u64,
    /// Where it came from.
    pub source: ImageSource,
    /// When it was stored, epoch ms.
    pub stored_at_ms: i64,
}

/// How far a pull has come, as every caller sharing it sees it (the `progress` events of
/// `POST /api/images/pull`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullProgress {
    /// The blob being fetched (the config's or a layer's digest); `None` until the first one.
    pub blob: Option<String>,
    /// Bytes of that blob received so far.
    pub blob_bytes: u64,
    /// That blob's declared size.
    pub blob_total_bytes: u64,
    /// Bytes of the image's config and layers in the store so far (blobs already stored count
    /// at once).
    pub bytes: u64,
    /// The declared size of the config and layers; 0 until the manifest has been read.
    pub total_bytes: u64,
}

/// One in-flight pull that concurrent callers share: its manifest digest or its error, and its
/// progress.
#[derive(Default)]
struct SharedPull {
    outcome: tokio::sync::OnceCell<Result<String, Arc<ImageError>>>,
    progress: tokio::sync::watch::Sender<PullProgress>,
}

/// The store. Operations other than [`ImageStore::ensure`] are blocking file I/O; callers in
/// async code run them on blocking threads. One mutex serializes changes to `index.json`.
/// Clones are cheap handles on the same store.
#[derive(Clone)]
pub struct ImageStore {
    root: PathBuf,
    blobs: Blobs,
    /// Held while reading-modifying-writing `index.json`.
    index_lock: Arc<Mutex<()>>,
    /// The operator's registry credentials.
    credentials: Arc<Credentials>,
    /// Pulls in flight, by normalized reference (single-flight).
    pulls: Arc<Mutex<HashMap<String, Arc<SharedPull>>>>,
    /// Bounds on what unpacking a layer or an imported archive may expand to.
    limits: UnpackLimits,
}

impl ImageStore {
    /// Opens (creating if needed) the store under `<data_dir>/images`, emptying its staging area,
    /// and reads the operator's registry credentials from `<data_dir>/registries.json` (absent:
    /// anonymous pulls; malformed: an error naming the file).
    pub fn open(data_dir: &Path) -> Result<Self, ImageError> {
        let credentials = Arc::new(Credentials::load(data_dir)?);
        let root = data_dir.join("images");
        let blobs = Blobs::new(&root);
        let _ = fs::remove_dir_all(root.join("tmp"));
        blobs.create_dirs().map_err(ImageError::io("creating the image store"))?;
        fs::create_dir_all(root.join("rootfs")).map_err(ImageError::io("creating the image store"))?;
        let layout = root.join("oci-layout");
        // Rewritten when missing or damaged (a power cut can leave it empty).
        if fs::read(&layout).ok().as_deref() != Some(OCI_LAYOUT) {
            fs::write(&layout, OCI_LAYOUT).map_err(ImageError::io("writing oci-layout"))?;
        }
        let store = Self {
            root,
            blobs,
            index_lock: Arc::default(),
            credentials,
            pulls: Arc::default(),
            limits: UnpackLimits::default(),
        };
        if !store.index_path().exists() {
            store.write_index(&[])?;
        }
        Ok(store)
    }

    /// The same store with other unpacking bounds (tests use small ones).
    pub fn with_limits(mut self, limits: UnpackLimits) -> Self {
        self.limits = limits;
        self
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    fn read_index(&self) -> Result<Vec<Value>, ImageError> {
        let bytes = fs::read(self.index_path()).map_err(ImageError::io("reading index.json"))?;
        let index: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ImageError::Io { context: "parsing index.json", source: std::io::Error::other(e) })?;
        Ok(index["manifests"].as_array().cloned().unwrap_or_default())
    }

    fn write_index(&self, manifests: &[Value]) -> Result<(), ImageError> {
        let index = json!({ "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests });
        let tmp = self.root.join("tmp").join(format!("index-{}.json", nimbus_core::ids::mint_ulid()));
        fs::write(&tmp, index.to_string()).map_err(ImageError::io("writing index.json"))?;
        durable_rename(&self.root, &tmp, &self.index_path()).map_err(ImageError::io("writing index.json"))
    }

    /// A fresh path in the store's staging area (emptied at start-up), for uploads on their way
    /// into [`ImageStore::import`].
    pub fn staging_path(&self, prefix: &str) -> PathBuf {
        self.root.join("tmp").join(format!("{prefix}-{}", nimbus_core::ids::mint_ulid()))
    }

    /// The unpacked root of a manifest.
    pub fn rootfs(&self, digest: &str) -> Option<PathBuf> {
        digest_hex(digest).map(|hex| self.root.join("rootfs").join(hex))
    }

    /// Every stored image, by digest.
    pub fn list(&self) -> Result<Vec<ImageRecord>, ImageError> {
        let _guard = self.index_lock.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(records(&self.read_index()?))
    }

    /// Finds the stored image a reference (`name:tag`, `name@sha256:…`) or bare
    /// `sha256:<hex>` digest names.
    pub fn resolve(&self, reference: &str) -> Result<ImageRecord, ImageError> {
        let records = self.list()?;
        let found = if digest_hex(reference).is_some() {
            records.into_iter().find(|r| r.digest == reference)
        } else {
            let parsed = Reference::parse(reference)?;
            match &parsed.digest {
                // A pulled index digest names the platform manifest stored under it.
                Some(digest) => {
                    let name = parsed.to_string();
                    records.into_iter().find(|r| &r.digest == digest || r.references.contains(&name))
                }
                None => {
                    let name = parsed.to_string();
                    records.into_iter().find(|r| r.references.contains(&name))
                }
            }
        };
        found.ok_or_else(|| ImageError::NotFound {
            reference: reference.to_owned(),
            reason: "not in the local image store".into(),
        })
    }

    /// Resolves `reference` in the local store first; only a missing image is pulled from its
    /// registry. Concurrent calls needing the same image share one pull (single-flight), and a
    /// failed pull is reported to every caller that shared it. Returns the stored image.
    pub async fn ensure(&self, reference: &str) -> Result<ImageRecord, ImageError> {
        self.ensure_reporting(reference, |_| {}).await
    }

    /// [`ImageStore::ensure`], calling `report` as the pull (this caller's or the one it shares)
    /// makes progress; progress reported meanwhile is coalesced, so `report` sees the latest.
    /// An image already stored is returned without any report.
    pub async fn ensure_reporting(
        &self,
        reference: &str,
        mut report: impl FnMut(&PullProgress),
    ) -> Result<ImageRecord, ImageError> {
        match self.resolve(reference) {
            Err(ImageError::NotFound { .. }) if digest_hex(reference).is_none() => {}
            found => return found,
        }
        let parsed = Reference::parse(reference)?;
        let key = parsed.to_string();
        let shared = {
            let mut pulls = self.pulls.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(pulls.entry(key.clone()).or_default())
        };
        let mut progress = shared.progress.subscribe();
        let init = shared.outcome.get_or_init(|| async {
            // A pull that finished just before this one started already stored the image.
            match self.resolve(&key) {
                Ok(record) => Ok(record.digest),
                Err(ImageError::NotFound { .. }) => self.pull(&parsed, &shared.progress).await.map_err(Arc::new),
                Err(e) => Err(Arc::new(e)),
            }
        });
        tokio::pin!(init);
        let outcome = loop {
            tokio::select! {
                outcome = &mut init => break outcome.clone(),
                Ok(()) = progress.changed() => report(&progress.borrow_and_update()),
            }
        };
        {
            let mut pulls = self.pulls.lock().unwrap_or_else(PoisonError::into_inner);
            if pulls.get(&key).is_some_and(|current| Arc::ptr_eq(current, &shared)) {
                pulls.remove(&key);
            }
        }
        match outcome {
            Ok(digest) => self.resolve(&digest),
            Err(error) => Err(error.duplicate()),
        }
    }

    /// Imports an OCI-layout or docker-archive tar (gzip allowed). `reference` names images the
    /// archive leaves unnamed. Importing an image already stored adds its names and returns it.
    pub fn import(&self, archive: impl Read, reference: Option<&str>) -> Result<Vec<ImageRecord>, ImageError> {
        let reference = reference.map(Reference::parse).transpose()?;
        let staging = self.root.join("tmp").join(format!("import-{}", nimbus_core::ids::mint_ulid()));
        fs::create_dir_all(&staging).map_err(ImageError::io("staging an import"))?;
        let result = import_archive(&self.blobs, &staging, archive, reference.as_ref(), &self.limits);
        let _ = fs::remove_dir_all(&staging);
        let imported = result?;
        let mut digests = Vec::new();
        for image in imported {
            let (os, architecture) = self.unpack(&image.digest)?;
            self.record(&image.digest, image.size, &image.references, &os, &architecture, ImageSource::Import)?;
            digests.push(image.digest);
        }
        let records = self.list()?;
        Ok(records.into_iter().filter(|r| digests.contains(&r.digest)).collect())
    }

    /// Unpacks a stored manifest into its root once; returns the config's OS and architecture.
    /// The root is built in staging and renamed into place whole, so a layer that fails (not a
    /// tar, an escaping path, over a limit) leaves no root behind.
    fn unpack(&self, digest: &str) -> Result<(String, String), ImageError> {
        let manifest = ImageManifest::from_reader(&self.blobs.read(digest)?[..])
            .map_err(|e| ImageError::invalid(format!("manifest {digest} is not an OCI image manifest: {e}")))?;
        let config = ImageConfiguration::from_reader(&self.blobs.read(manifest.config().digest().as_ref())?[..])
            .map_err(|e| ImageError::invalid(format!("the config of {digest} is not an OCI image config: {e}")))?;
        let platform = (config.os().to_string(), config.architecture().to_string());
        let target = self.rootfs(digest).ok_or_else(|| ImageError::invalid("bad manifest digest"))?;
        if target.is_dir() {
            return Ok(platform);
        }
        let staging = self.root.join("tmp").join(format!("rootfs-{}", nimbus_core::ids::mint_ulid()));
        fs::create_dir_all(&staging).map_err(ImageError::io("staging a root"))?;
        let mut budget = ImageBudget::new(self.limits);
        let applied = manifest.layers().iter().try_for_each(|layer| {
            let media = layer.media_type().to_string();
            if media.contains("zstd") {
                return Err(ImageError::invalid(format!("layer media type {media} is not supported")));
            }
            unpack::apply_layer(&staging, maybe_gunzip(self.blobs.open(layer.digest().as_ref())?)?, &mut budget)
        });
        let renamed = applied.and_then(|()| match fs::rename(&staging, &target) {
            Ok(()) => Ok(()),
            // A concurrent import of the same image published it first: theirs is identical.
            Err(_) if target.is_dir() => Ok(()),
            Err(e) => Err(ImageError::io("publishing a root")(e)),
        });
        let _ = fs::remove_dir_all(&staging);
        renamed.map(|()| platform)
    }

    /// Adds index entries for a manifest: one per reference (one unnamed entry if it has none),
    /// keeping existing ones.
    fn record(
        &self,
        digest: &str,
        manifest_size: u64,
        references: &[String],
        os: &str,
        architecture: &str,
        source: ImageSource,
    ) -> Result<(), ImageError> {
        let _guard = self.index_lock.lock().unwrap_or_else(PoisonError::into_inner);
        let mut manifests = self.read_index()?;
        let existing = records(&manifests).into_iter().find(|r| r.digest == digest);
        let size = self.image_size(digest)?;
        // A pulled Docker v2 manifest is stored as-is, under its own media type.
        let media_type = serde_json::from_slice::<Value>(&self.blobs.read(digest)?)
            .ok()
            .and_then(|m| m["mediaType"].as_str().map(str::to_owned))
            .unwrap_or_else(|| MANIFEST_MEDIA_TYPE.to_owned());
        let stored_at = existing.as_ref().map_or_else(now_ms, |r| r.stored_at_ms);
        let source = existing.as_ref().map_or(source, |r| r.source);
        let entry = |name: Option<&str>| {
            let mut annotations = json!({
                SOURCE: source.as_str(), STORED_AT: stored_at.to_string(), OS: os, ARCH: architecture, SIZE: size.to_string(),
            });
            if let Some(name) = name {
                annotations[REF_NAME] = Value::from(name);
            }
            json!({ "mediaType": media_type, "digest": digest, "size": manifest_size, "annotations": annotations })
        };
        // A name moves to the newly imported image; other images keep theirs.
        manifests.retain(|m| !references.iter().any(|r| m["annotations"][REF_NAME] == r.as_str()));
        let known: HashSet<String> = manifests
            .iter()
            .filter(|m| m["digest"] == digest)
            .filter_map(|m| m["annotations"][REF_NAME].as_str().map(str::to_owned))
            .collect();
        for name in references.iter().filter(|r| !known.contains(*r)) {
            manifests.push(entry(Some(name)));
        }
        let has_entry = manifests.iter().any(|m| m["digest"] == digest);
        if !has_entry {
            manifests.push(entry(None));
        }
        // A named entry makes an unnamed one for the same digest redundant.
        let named: HashSet<String> = manifests
            .iter()
            .filter(|m| m["annotations"][REF_NAME].is_string())
            .filter_map(|m| m["digest"].as_str().map(str::to_owned))
            .collect();
        manifests
            .retain(|m| m["annotations"][REF_NAME].is_string() || !named.contains(m["digest"].as_str().unwrap_or("")));
        self.write_index(&manifests)
    }

    /// Total bytes of a manifest, its config and its layers.
    fn image_size(&self, digest: &str) -> Result<u64, ImageError> {
        let bytes = self.blobs.read(digest)?;
        let manifest = ImageManifest::from_reader(&bytes[..])
            .map_err(|e| ImageError::invalid(format!("manifest {digest} is not an OCI image manifest: {e}")))?;
        Ok(bytes.len() as u64 + manifest.config().size() + manifest.layers().iter().map(|l| l.size()).sum::<u64>())
    }

    /// Removes an image (by reference or digest): its index entries, its root, and every blob
    /// no remaining image uses.
    pub fn remove(&self, reference: &str) -> Result<ImageRecord, ImageError> {
        let record = self.resolve(reference)?;
        let _guard = self.index_lock.lock().unwrap_or_else(PoisonError::into_inner);
        let mut manifests = self.read_index()?;
        manifests.retain(|m| m["digest"] != record.digest.as_str());
        self.write_index(&manifests)?;
        if let Some(root) = self.rootfs(&record.digest) {
            let _ = fs::remove_dir_all(root);
        }
        let mut keep = HashSet::new();
        for manifest in &manifests {
            let Some(digest) = manifest["digest"].as_str() else { continue };
            keep.insert(digest.to_owned());
            if let Ok(parsed) = self
                .blobs
                .read(digest)
                .and_then(|b| ImageManifest::from_reader(&b[..]).map_err(|e| ImageError::invalid(e.to_string())))
            {
                keep.insert(parsed.config().digest().to_string());
                keep.extend(parsed.layers().iter().map(|l| l.digest().to_string()));
            }
        }
        self.blobs.retain(&keep)?;
        Ok(record)
    }
}

/// Groups index entries by manifest digest into records (in digest order).
fn records(manifests: &[Value]) -> Vec<ImageRecord> {
    let mut by_digest: BTreeMap<String, ImageRecord> = BTreeMap::new();
    for manifest in manifests {
        let Some(digest) = manifest["digest"].as_str() else { continue };
        let annotations = &manifest["annotations"];
        let text = |key: &str| annotations[key].as_str().unwrap_or_default().to_owned();
        let record = by_digest.entry(digest.to_owned()).or_insert_with(|| ImageRecord {
            digest: digest.to_owned(),
            references: Vec::new(),
            os: text(OS),
            architecture: text(ARCH),
            size_bytes: text(SIZE).parse().unwrap_or(0),
            source: if text(SOURCE) == "pull" { ImageSource::Pull } else { ImageSource::Import },
            stored_at_ms: text(STORED_AT).parse().unwrap_or(0),
        });
        if let Some(name) = annotations[REF_NAME].as_str() {
            record.references.push(name.to_owned());
            record.references.sort();
        }
    }
    by_digest.into_values().collect()
}

#[cfg(test)]
mod tests;

/// The `oci-layout` file's content.
const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Renames `from` over `to` (both in the store at `root`) so that a power cut leaves either the
/// old file or the new one, whole, with everything the new one names on disk: the store's file
/// system is synced first (the blobs and unpacked roots a new index refers to, and `from`
/// itself), then the rename, then the directory holding `to`.
fn durable_rename(root: &Path, from: &Path, to: &Path) -> std::io::Result<()> {
    let store = fs::File::open(root)?;
    nix::unistd::syncfs(std::os::fd::AsRawFd::as_raw_fd(&store)).map_err(std::io::Error::from)?;
    fs::rename(from, to)?;
    fs::File::open(to.parent().unwrap_or(root))?.sync_all()
}
