//! Pulling images from registries with the OCI distribution protocol (`oci-client`).
//!
//! HTTPS always, plain HTTP only for loopback registries. For an index (or Docker manifest
//! list) the `linux/<host arch>` entry is chosen. Every blob is streamed to the staging area,
//! checked against its descriptor's size and digest, then moved into the blob directory.

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use nimbus_core::limits::{
    IMAGE_PULL_CONNECT_TIMEOUT_SECS, IMAGE_PULL_READ_TIMEOUT_SECS, MAX_IMAGE_ARCHIVE_BYTES, MAX_IMAGE_CONFIG_BYTES,
};
use oci_client::Client;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use serde_json::Value;
use tokio::io::AsyncWrite;
use tokio::sync::watch;

use super::blobs::{Blobs, digest_hex};
use super::import::host_architecture;
use super::reference::Reference;
use super::registries::is_loopback;
use super::{ImageError, ImageSource, ImageStore, PullProgress, Unreachable};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const ACCEPTED: &[&str] = &[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

/// Which step failed: a 404 on the manifest means "no such image", on a blob a broken registry.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Manifest,
    Blob,
}

/// One pull's context, for building errors.
struct Pull<'a> {
    reference: &'a Reference,
    client: Client,
    image: oci_client::Reference,
    auth: RegistryAuth,
    /// Where the pull reports its progress to the callers sharing it.
    progress: &'a watch::Sender<PullProgress>,
}

impl Pull<'_> {
    fn failed(&self, reason: impl Into<String>, http_status: Option<u16>) -> ImageError {
        ImageError::PullFailed {
            reference: self.reference.to_string(),
            registry: self.reference.registry.clone(),
            reason: reason.into(),
            http_status,
            unreachable: None,
        }
    }

    fn not_found(&self, reason: impl Into<String>) -> ImageError {
        ImageError::NotFound { reference: self.reference.to_string(), reason: reason.into() }
    }

    /// Maps an `oci-client` error to the catalog: missing manifests are `NotFound`, everything
    /// else (network, TLS, auth, 5xx, bad data) is a retryable `PullFailed`, marked
    /// [`Unreachable`] when the registry's name did not resolve or it refused the connection.
    fn classify(&self, error: OciDistributionError, phase: Phase) -> ImageError {
        let mut classified = self.classify_answer(&error, phase);
        if let ImageError::PullFailed { unreachable: cause, .. } = &mut classified {
            *cause = unreachable(&error);
        }
        classified
    }

    fn classify_answer(&self, error: &OciDistributionError, phase: Phase) -> ImageError {
        let reason = error_chain(error);
        match error {
            OciDistributionError::RegistryError { envelope, .. } => {
                let status = envelope.errors.first().map(|e| status_of(&e.code));
                let missing = envelope.errors.iter().any(|e| {
                    matches!(e.code, OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown | OciErrorCode::NotFound)
                });
                if missing && phase == Phase::Manifest {
                    let messages: Vec<String> = envelope
                        .errors
                        .iter()
                        .map(|e| if e.message.is_empty() { format!("{:?}", e.code) } else { e.message.clone() })
                        .collect();
                    self.not_found(format!("the registry has no such image: {}", messages.join("; ")))
                } else {
                    self.failed(reason, status)
                }
            }
            OciDistributionError::ServerError { code: 404, .. } if phase == Phase::Manifest => {
                self.not_found("the registry has no such image (404)")
            }
            OciDistributionError::ImageManifestNotFoundError(_) => self.not_found(reason),
            OciDistributionError::ServerError { code, .. } => self.failed(reason, Some(*code)),
            OciDistributionError::UnauthorizedError { .. } => self.failed(reason, Some(401)),
            OciDistributionError::RequestError(e) => self.failed(reason, e.status().map(|s| s.as_u16())),
            _ => self.failed(reason, None),
        }
    }

    async fn manifest(&self, image: &oci_client::Reference) -> Result<(Vec<u8>, String), ImageError> {
        let (bytes, digest) = self
            .client
            .pull_manifest_raw(image, &self.auth, ACCEPTED)
            .await
            .map_err(|e| self.classify(e, Phase::Manifest))?;
        Ok((bytes.to_vec(), digest))
    }
}

/// The HTTP status a distribution-spec error code is sent with.
fn status_of(code: &OciErrorCode) -> u16 {
    match code {
        OciErrorCode::BlobUnknown
        | OciErrorCode::BlobUploadUnknown
        | OciErrorCode::ManifestUnknown
        | OciErrorCode::NameUnknown
        | OciErrorCode::NotFound => 404,
        OciErrorCode::Unauthorized => 401,
        OciErrorCode::Denied => 403,
        OciErrorCode::Toomanyrequests => 429,
        OciErrorCode::Unsupported => 405,
        _ => 400,
    }
}

/// Whether `error` means the registry could not be reached at all: its host name did not
/// resolve, or it refused the TCP connection (found among the error's causes, where reqwest
/// keeps them). Timeouts, TLS and HTTP-level failures are not.
fn unreachable(error: &OciDistributionError) -> Option<Unreachable> {
    // Both variants are `#[error(transparent)]`: their `source()` skips the wrapped error itself.
    let mut source: Option<&(dyn std::error::Error + 'static)> = match error {
        OciDistributionError::RequestError(request) if request.is_dns() => return Some(Unreachable::NameResolution),
        OciDistributionError::RequestError(request) => Some(request),
        OciDistributionError::IoError(io) => Some(io),
        other => Some(other),
    };
    while let Some(cause) = source {
        if cause.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::ConnectionRefused) {
            return Some(Unreachable::ConnectionRefused);
        }
        source = cause.source();
    }
    None
}

/// An error and its causes, `: `-joined (reqwest hides "connection refused" in its sources).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The digest of the `linux/<arch>` entry of an index or manifest list, if any.
pub(crate) fn choose_platform(index: &Value, architecture: &str) -> Option<String> {
    let entries = index["manifests"].as_array()?;
    let matching =
        |entry: &&Value| entry["platform"]["os"] == "linux" && entry["platform"]["architecture"] == architecture;
    // On arm64 prefer the plain or v8 variant; elsewhere variants do not matter.
    entries
        .iter()
        .filter(matching)
        .find(|e| e["platform"]["variant"].as_str().is_none_or(|v| v == "v8"))
        .or_else(|| entries.iter().find(matching))
        .and_then(|e| e["digest"].as_str())
        .map(str::to_owned)
}

fn is_index(manifest: &Value) -> bool {
    matches!(manifest["mediaType"].as_str(), Some(OCI_INDEX | DOCKER_LIST))
        || (manifest["mediaType"].is_null() && manifest["manifests"].is_array())
}

/// A file writer that refuses to grow past the size the descriptor declared, and reports what
/// it wrote as the pull's progress.
struct Bounded<'a> {
    file: tokio::fs::File,
    written: u64,
    limit: u64,
    progress: &'a watch::Sender<PullProgress>,
}

impl AsyncWrite for Bounded<'_> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.written + buf.len() as u64 > self.limit {
            return Poll::Ready(Err(io::Error::other(format!(
                "the registry sent more than the declared {} bytes",
                self.limit
            ))));
        }
        let result = Pin::new(&mut self.file).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &result {
            self.written += *n as u64;
            let (n, written) = (*n as u64, self.written);
            self.progress.send_modify(|progress| {
                progress.blob_bytes = written;
                progress.bytes += n;
            });
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.file).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.file).poll_shutdown(cx)
    }
}

/// Removes a staged file when dropped (also when the pull is cancelled).
struct Staged(PathBuf);

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs blocking store work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ImageError> + Send + 'static,
) -> Result<T, ImageError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(ImageError::Io { context: "running blocking image work", source: io::Error::other(e) }))
}

impl ImageStore {
    /// Pulls `reference` from its registry into the store, reporting to `progress`; returns the
    /// manifest digest.
    pub(crate) async fn pull(
        &self,
        reference: &Reference,
        progress: &watch::Sender<PullProgress>,
    ) -> Result<String, ImageError> {
        let protocol = if is_loopback(&reference.registry) {
            ClientProtocol::HttpsExcept(vec![reference.registry.clone()])
        } else {
            ClientProtocol::Https
        };
        let config = ClientConfig {
            protocol,
            connect_timeout: Some(Duration::from_secs(IMAGE_PULL_CONNECT_TIMEOUT_SECS)),
            read_timeout: Some(Duration::from_secs(IMAGE_PULL_READ_TIMEOUT_SECS)),
            ..ClientConfig::default()
        };
        let (registry, repository) = (reference.registry.clone(), reference.repository.clone());
        let image = match (&reference.tag, &reference.digest) {
            (Some(tag), Some(digest)) => {
                oci_client::Reference::with_tag_and_digest(registry, repository, tag.clone(), digest.clone())
            }
            (None, Some(digest)) => oci_client::Reference::with_digest(registry, repository, digest.clone()),
            (tag, None) => {
                oci_client::Reference::with_tag(registry, repository, tag.clone().unwrap_or_else(|| "latest".into()))
            }
        };
        let pull = Pull {
            reference,
            client: Client::new(config),
            image,
            auth: self.credentials.for_registry(&reference.registry),
            progress,
        };
        tracing::info!(reference = %reference, "pulling an image");

        // The manifest, through an index when there is one.
        let (mut bytes, mut digest) = pull.manifest(&pull.image).await?;
        let mut manifest: Value =
            serde_json::from_slice(&bytes).map_err(|e| pull.failed(format!("the manifest is not JSON: {e}"), None))?;
        if is_index(&manifest) {
            let arch = host_architecture();
            let chosen = choose_platform(&manifest, arch)
                .ok_or_else(|| pull.not_found(format!("the image index has no linux/{arch} entry")))?;
            (bytes, digest) = pull.manifest(&pull.image.clone_with_digest(chosen.clone())).await?;
            if digest != chosen {
                return Err(pull.failed(format!("the manifest has digest {digest}, the index names {chosen}"), None));
            }
            manifest = serde_json::from_slice(&bytes)
                .map_err(|e| pull.failed(format!("the manifest is not JSON: {e}"), None))?;
        }
        match manifest["mediaType"].as_str() {
            Some(OCI_MANIFEST | DOCKER_MANIFEST) | None if manifest["config"].is_object() => {}
            other => {
                return Err(pull.failed(format!("unsupported manifest type {}", other.unwrap_or("(none)")), None));
            }
        }
        if digest_hex(&digest).is_none() {
            return Err(pull.failed(format!("the registry named the manifest '{digest}', not a sha256 digest"), None));
        }
        let descriptor = |value: &Value| -> Result<OciDescriptor, ImageError> {
            serde_json::from_value(value.clone())
                .map_err(|e| pull.failed(format!("bad descriptor in manifest: {e}"), None))
        };
        let config = descriptor(&manifest["config"])?;
        let layers =
            manifest["layers"].as_array().into_iter().flatten().map(descriptor).collect::<Result<Vec<_>, _>>()?;
        if config.size < 0 || config.size as u64 > MAX_IMAGE_CONFIG_BYTES {
            return Err(pull.failed(format!("the config declares {} bytes", config.size), None));
        }
        let total: u64 = layers.iter().map(|l| l.size.max(0) as u64).sum();
        if total > MAX_IMAGE_ARCHIVE_BYTES || layers.iter().any(|l| l.size < 0) {
            return Err(pull.failed(format!("the layers declare {total} bytes, over {MAX_IMAGE_ARCHIVE_BYTES}"), None));
        }
        if let Some(layer) = layers.iter().find(|l| !l.media_type.contains("tar") || l.media_type.contains("zstd")) {
            return Err(pull.failed(format!("layer media type {} is not supported", layer.media_type), None));
        }

        progress.send_modify(|p| p.total_bytes = config.size as u64 + total);
        let stored = |size: i64| progress.send_modify(|p| p.bytes += size.max(0) as u64);

        // The config first: an image for another platform is "not found" before any layer moves.
        let config_bytes = match self.blobs.read(&config.digest) {
            Ok(bytes) => {
                stored(config.size);
                bytes
            }
            Err(_) => {
                let staged = self.fetch(&pull, &config).await?;
                let bytes = tokio::fs::read(&staged.0).await.map_err(ImageError::io("reading a pulled config"))?;
                self.adopt(&pull, staged, &config).await?;
                bytes
            }
        };
        let platform: Value = serde_json::from_slice(&config_bytes)
            .map_err(|e| pull.failed(format!("the image config is not JSON: {e}"), None))?;
        let (os, arch) = (platform["os"].as_str().unwrap_or(""), platform["architecture"].as_str().unwrap_or(""));
        if os != "linux" || arch != host_architecture() {
            return Err(pull.not_found(format!("the image is for {os}/{arch}, not linux/{}", host_architecture())));
        }
        for layer in &layers {
            if self.blobs.contains(&layer.digest) {
                stored(layer.size);
            } else {
                let staged = self.fetch(&pull, layer).await?;
                self.adopt(&pull, staged, layer).await?;
            }
        }

        // The manifest last, then the root and the index entry.
        let blobs = self.blobs.clone();
        let (stored, size) = blocking(move || blobs.put(&bytes[..])).await?;
        if stored != digest {
            return Err(pull.failed(format!("the manifest has digest {stored}, the registry named {digest}"), None));
        }
        let store = self.clone();
        let name = reference.to_string();
        blocking(move || {
            let (os, architecture) = store.unpack(&stored)?;
            store.record(&stored, size, &[name], &os, &architecture, ImageSource::Pull)
        })
        .await?;
        tracing::info!(reference = %reference, %digest, "pulled an image");
        Ok(digest)
    }

    /// Streams one blob into the staging area, bounded by its declared size.
    async fn fetch(&self, pull: &Pull<'_>, descriptor: &OciDescriptor) -> Result<Staged, ImageError> {
        if digest_hex(&descriptor.digest).is_none() {
            return Err(pull.failed(format!("'{}' is not a sha256 digest", descriptor.digest), None));
        }
        let staged = Staged(self.staging_path("pull"));
        let file = tokio::fs::File::create(&staged.0).await.map_err(ImageError::io("staging a pulled blob"))?;
        let limit = descriptor.size.max(0) as u64;
        pull.progress.send_modify(|p| {
            p.blob = Some(descriptor.digest.clone());
            p.blob_bytes = 0;
            p.blob_total_bytes = limit;
        });
        let writer = Bounded { file, written: 0, limit, progress: pull.progress };
        pull.client.pull_blob(&pull.image, descriptor, writer).await.map_err(|e| pull.classify(e, Phase::Blob))?;
        Ok(staged)
    }

    /// Verifies a staged blob's digest and size, then moves it into the blob directory.
    async fn adopt(&self, pull: &Pull<'_>, staged: Staged, descriptor: &OciDescriptor) -> Result<(), ImageError> {
        let blobs = self.blobs.clone();
        let expected = descriptor.digest.clone();
        let (digest, size) = blocking(move || {
            let verified = Blobs::digest_file(&staged.0)?;
            if verified.0 == expected {
                blobs.adopt(&staged.0, &expected)?;
            }
            Ok(verified)
        })
        .await?;
        if digest != descriptor.digest || size != descriptor.size.max(0) as u64 {
            return Err(
                pull.failed(format!("blob {} arrived with digest {digest} and {size} bytes", descriptor.digest), None)
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_host_platform_is_chosen_from_an_index() {
        let index = json!({ "manifests": [
            { "digest": "sha256:win", "platform": { "os": "windows", "architecture": "amd64" } },
            { "digest": "sha256:armv7", "platform": { "os": "linux", "architecture": "arm", "variant": "v7" } },
            { "digest": "sha256:arm64", "platform": { "os": "linux", "architecture": "arm64", "variant": "v8" } },
            { "digest": "sha256:amd64", "platform": { "os": "linux", "architecture": "amd64" } },
            { "digest": "sha256:attestation", "platform": { "os": "unknown", "architecture": "unknown" } },
        ]});
        assert_eq!(choose_platform(&index, "amd64").as_deref(), Some("sha256:amd64"));
        assert_eq!(choose_platform(&index, "arm64").as_deref(), Some("sha256:arm64"));
        assert_eq!(choose_platform(&index, "riscv64"), None);
        assert_eq!(choose_platform(&json!({}), "amd64"), None);
        let host = host_architecture();
        assert_eq!(choose_platform(&index, host), Some(format!("sha256:{host}")).filter(|_| host != "riscv64"));
    }

    #[test]
    fn indexes_are_told_from_manifests() {
        assert!(is_index(&json!({ "mediaType": OCI_INDEX, "manifests": [] })));
        assert!(is_index(&json!({ "mediaType": DOCKER_LIST, "manifests": [] })));
        assert!(is_index(&json!({ "schemaVersion": 2, "manifests": [] })));
        assert!(!is_index(&json!({ "mediaType": OCI_MANIFEST, "config": {}, "layers": [] })));
        assert!(!is_index(&json!({ "mediaType": DOCKER_MANIFEST, "config": {}, "layers": [] })));
    }

    #[test]
    fn error_chains_keep_the_cause() {
        let inner = io::Error::new(io::ErrorKind::ConnectionRefused, "Connection refused");
        let outer = OciDistributionError::IoError(inner);
        assert!(error_chain(&outer).contains("Connection refused"));
    }

    #[test]
    fn a_refused_connection_is_unreachable_and_other_io_errors_are_not() {
        let refused = OciDistributionError::IoError(io::Error::new(io::ErrorKind::ConnectionRefused, "refused"));
        assert_eq!(unreachable(&refused), Some(Unreachable::ConnectionRefused));
        let reset = OciDistributionError::IoError(io::Error::new(io::ErrorKind::ConnectionReset, "reset"));
        assert_eq!(unreachable(&reset), None);
        assert_eq!(unreachable(&OciDistributionError::UnauthorizedError { url: "https://r/v2/".into() }), None);
    }
}
