//! Importing image archives: OCI image-layout tars and docker-archive tars (`docker save`),
//! gzip-compressed or not. Every blob is verified against its digest as it is stored.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use serde_json::{Value, json};

use super::ImageError;
use super::blobs::{Blobs, digest_hex};
use super::reference::Reference;
use super::unpack::{UnpackLimits, extract_archive};

/// Media types this store writes and reads.
pub(crate) const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub(crate) const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub(crate) const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub(crate) const REF_NAME: &str = "org.opencontainers.image.ref.name";
const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// One manifest brought in by an import, with the names the archive (or caller) gave it.
pub(crate) struct Imported {
    /// Manifest digest.
    pub digest: String,
    /// Manifest size in bytes.
    pub size: u64,
    /// Normalized references.
    pub references: Vec<String>,
}

/// The architecture name OCI uses for this host.
pub(crate) fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Wraps a reader in a gzip decoder when it starts with the gzip magic bytes.
pub(crate) fn maybe_gunzip<'a>(reader: impl Read + 'a) -> Result<Box<dyn Read + 'a>, ImageError> {
    let mut reader = BufReader::new(reader);
    let head = reader.fill_buf().map_err(ImageError::io("reading an archive"))?;
    if head.starts_with(&[0x1f, 0x8b]) { Ok(Box::new(GzDecoder::new(reader))) } else { Ok(Box::new(reader)) }
}

/// Opens a file of the unpacked archive only if it is a regular file inside `staging`, wherever
/// the archive's symbolic links lead: a link to `/dev/zero` (an endless layer) or to a host file
/// is never read, and a FIFO is never opened.
fn open_staged(staging: &Path, path: &Path) -> Option<File> {
    let staging = staging.canonicalize().ok()?;
    let path = path.canonicalize().ok().filter(|p| p.starts_with(&staging))?;
    fs::metadata(&path).ok().filter(fs::Metadata::is_file)?;
    File::open(path).ok()
}

fn read_json(staging: &Path, path: &Path) -> Result<Value, ImageError> {
    let lacks = || ImageError::invalid(format!("archive lacks {}", path.display()));
    let mut bytes = Vec::new();
    open_staged(staging, path).ok_or_else(lacks)?.read_to_end(&mut bytes).map_err(|_| lacks())?;
    serde_json::from_slice(&bytes).map_err(|e| ImageError::invalid(format!("{} is not JSON: {e}", path.display())))
}

/// Unpacks the archive into `staging` (within the archive bounds of `limits`) and imports the
/// images it holds into `blobs`.
pub(crate) fn import_archive(
    blobs: &Blobs,
    staging: &Path,
    archive: impl Read,
    reference: Option<&Reference>,
    limits: &UnpackLimits,
) -> Result<Vec<Imported>, ImageError> {
    extract_archive(staging, maybe_gunzip(archive)?, limits)?;
    let imported = if staging.join("oci-layout").is_file() && staging.join("index.json").is_file() {
        import_oci_layout(blobs, staging)?
    } else if staging.join("manifest.json").is_file() {
        import_docker_archive(blobs, staging)?
    } else {
        return Err(ImageError::invalid(
            "the archive is neither an OCI image layout (oci-layout, index.json) nor a docker archive (manifest.json)",
        ));
    };
    if imported.is_empty() {
        return Err(ImageError::invalid("the archive holds no image"));
    }
    Ok(name_images(imported, reference))
}

/// Applies the caller's `reference` to an archive whose images carry no name.
fn name_images(mut imported: Vec<Imported>, reference: Option<&Reference>) -> Vec<Imported> {
    if let Some(reference) = reference {
        for image in imported.iter_mut().filter(|i| i.references.is_empty()) {
            image.references.push(reference.to_string());
        }
    }
    imported
}

fn staged_blob(staging: &Path, digest: &str) -> Result<PathBuf, ImageError> {
    let hex = digest_hex(digest).ok_or_else(|| ImageError::invalid(format!("'{digest}' is not a sha256 digest")))?;
    Ok(staging.join("blobs/sha256").join(hex))
}

/// Copies a staged blob into the store, verifying its digest (skipped if already stored).
fn store_staged(blobs: &Blobs, staging: &Path, digest: &str) -> Result<u64, ImageError> {
    let path = staged_blob(staging, digest)?;
    if blobs.contains(digest) {
        return Ok(fs::metadata(&path).map(|m| m.len()).unwrap_or(0));
    }
    let file =
        open_staged(staging, &path).ok_or_else(|| ImageError::invalid(format!("archive lacks blob {digest}")))?;
    blobs.put_verified(file, digest)
}

fn import_oci_layout(blobs: &Blobs, staging: &Path) -> Result<Vec<Imported>, ImageError> {
    let index = read_json(staging, &staging.join("index.json"))?;
    let descriptors = index["manifests"].as_array().cloned().unwrap_or_default();
    let mut imported = Vec::new();
    for descriptor in descriptors {
        let name = descriptor_name(&descriptor);
        let Some((digest, size)) = platform_manifest(staging, &descriptor)? else { continue };
        let manifest_size = store_staged(blobs, staging, &digest)?;
        let manifest: Value = serde_json::from_slice(&blobs.read(&digest)?)
            .map_err(|e| ImageError::invalid(format!("manifest {digest} is not JSON: {e}")))?;
        store_staged(blobs, staging, manifest["config"]["digest"].as_str().unwrap_or(""))?;
        for layer in manifest["layers"].as_array().into_iter().flatten() {
            store_staged(blobs, staging, layer["digest"].as_str().unwrap_or(""))?;
        }
        let references = name.into_iter().collect();
        imported.push(Imported { digest, size: size.max(manifest_size), references });
    }
    Ok(imported)
}

/// The full reference a layout descriptor names: containerd's full name, or a
/// `ref.name` that is itself a full reference (a bare tag like `latest` names nothing).
fn descriptor_name(descriptor: &Value) -> Option<String> {
    let annotations = &descriptor["annotations"];
    [annotations[CONTAINERD_NAME].as_str(), annotations[REF_NAME].as_str()]
        .into_iter()
        .flatten()
        .filter(|name| name.contains('/') || name.contains(':'))
        .find_map(|name| Reference::parse(name).ok())
        .map(|r| r.to_string())
}

/// The image manifest a layout descriptor stands for on this host: itself, or for an index the
/// `linux/<host arch>` entry. `None` when an index has no entry for this platform.
fn platform_manifest(staging: &Path, descriptor: &Value) -> Result<Option<(String, u64)>, ImageError> {
    let digest = descriptor["digest"].as_str().unwrap_or("").to_owned();
    let size = descriptor["size"].as_u64().unwrap_or(0);
    match descriptor["mediaType"].as_str().unwrap_or(MANIFEST_MEDIA_TYPE) {
        INDEX_MEDIA_TYPE | DOCKER_MANIFEST_LIST => {
            let nested = read_json(staging, &staged_blob(staging, &digest)?)?;
            let entry = nested["manifests"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|m| m["platform"]["os"] == "linux" && m["platform"]["architecture"] == host_architecture());
            match entry {
                Some(entry) => platform_manifest(staging, entry),
                None => Ok(None),
            }
        }
        _ => Ok(Some((digest, size))),
    }
}

fn import_docker_archive(blobs: &Blobs, staging: &Path) -> Result<Vec<Imported>, ImageError> {
    let manifest = read_json(staging, &staging.join("manifest.json"))?;
    let entries = manifest.as_array().ok_or_else(|| ImageError::invalid("manifest.json is not an array"))?;
    let mut imported = Vec::new();
    for entry in entries {
        let file = |name: &str| -> Result<File, ImageError> {
            let relative = Path::new(name);
            if relative.is_absolute() || relative.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
                return Err(ImageError::invalid(format!("manifest.json names '{name}' outside the archive")));
            }
            open_staged(staging, &staging.join(relative))
                .ok_or_else(|| ImageError::invalid(format!("archive lacks {name}")))
        };
        let config_name =
            entry["Config"].as_str().ok_or_else(|| ImageError::invalid("manifest.json entry lacks Config"))?;
        let (config_digest, config_size) = blobs.put(file(config_name)?)?;
        let mut layers = Vec::new();
        for layer in entry["Layers"].as_array().into_iter().flatten() {
            let name = layer.as_str().ok_or_else(|| ImageError::invalid("manifest.json Layers holds a non-string"))?;
            let mut head = [0u8; 2];
            let gzip = file(name)?.read_exact(&mut head).is_ok() && head == [0x1f, 0x8b];
            let (digest, size) = blobs.put(file(name)?)?;
            let media_type = if gzip { LAYER_TAR_GZIP } else { LAYER_TAR };
            layers.push(json!({ "mediaType": media_type, "digest": digest, "size": size }));
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": { "mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest, "size": config_size },
            "layers": layers,
        });
        let (digest, size) = blobs.put(manifest.to_string().as_bytes())?;
        let references = entry["RepoTags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter_map(|tag| Reference::parse(tag).ok())
            .map(|r| r.to_string())
            .collect();
        imported.push(Imported { digest, size, references });
    }
    Ok(imported)
}
