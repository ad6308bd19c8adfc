//! Writing an OCI image layout archive (`oci-layout`, `index.json` and `blobs/sha256/…` in one
//! tar, the form [`ImageStore::import`](super::ImageStore::import) reads) from root file system
//! tars.
//!
//! Everything streams: a layer is copied into the archive once, its digest computed while it is
//! copied, and its tar header (which names the digest, known only at the end) written over a
//! placeholder afterwards; so the output must be seekable, and no layer is ever held in memory.
//! Layers are stored uncompressed (`application/vnd.oci.image.layer.v1.tar`): a layer's digest is
//! then also its `diff_id`, and nothing is compressed (a 900 MB root takes seconds to copy and
//! minutes to gzip on two cores).

use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};

use serde_json::json;
use sha2::{Digest, Sha256};

use super::ImageError;
use super::blobs::hex;
use super::import::{CONFIG_MEDIA_TYPE, INDEX_MEDIA_TYPE, LAYER_TAR, MANIFEST_MEDIA_TYPE, REF_NAME, host_architecture};
use super::reference::Reference;

/// A tar block: headers are one, data is padded to a whole number of them.
const BLOCK: u64 = 512;
/// The `oci-layout` file's content.
const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// What an archive says about its image besides its layers: the config's run settings and
/// labels, and the name its index gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayoutImage {
    /// The reference the index names the image by (`org.opencontainers.image.ref.name`), e.g.
    /// `nimbus/browser:bookworm-1`; the importer stores the image under it.
    pub reference: String,
    /// `config.Env`: `NAME=value` entries.
    pub env: Vec<String>,
    /// `config.Labels`.
    pub labels: BTreeMap<String, String>,
}

/// A layer written into an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutLayer {
    /// `sha256:<hex>` of the layer tar, which is also its `diff_id` (it is not compressed).
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
}

/// What a finished archive holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The image manifest's digest: the digest the store records the image under.
    pub manifest_digest: String,
    /// The config's digest.
    pub config_digest: String,
    /// The layers, bottom first.
    pub layers: Vec<LayoutLayer>,
}

/// Writes one image as an OCI image layout tar: [`LayoutWriter::new`], then
/// [`LayoutWriter::add_layer`] for each root file system tar (bottom first), then
/// [`LayoutWriter::finish`] with the config and name. An archive left unfinished (an error
/// midway) is not a valid tar; callers write to a temporary file and rename it once finished.
pub struct LayoutWriter<W> {
    out: W,
    /// Where the next entry's header goes.
    position: u64,
    layers: Vec<LayoutLayer>,
}

fn write_failed(source: io::Error) -> ImageError {
    ImageError::Io { context: "writing an image layout", source }
}

/// A regular file's (or directory's) tar header: owned by root, mtime 0, so that the same
/// content always makes the same archive.
fn header(path: &str, size: u64, directory: bool) -> Result<tar::Header, ImageError> {
    let mut header = tar::Header::new_gnu();
    header.set_path(path).map_err(write_failed)?;
    header.set_size(size);
    header.set_entry_type(if directory { tar::EntryType::Directory } else { tar::EntryType::Regular });
    header.set_mode(if directory { 0o755 } else { 0o644 });
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_cksum();
    Ok(header)
}

/// The zeros that pad `size` bytes of data to whole blocks.
fn padding(size: u64) -> usize {
    // Below one block: always fits.
    ((BLOCK - size % BLOCK) % BLOCK) as usize
}

/// A layer entry's path relative to the root (`./usr/bin` → `usr/bin`); `None` for one that
/// climbs out with `..`.
fn entry_path(raw: &Path) -> Option<PathBuf> {
    let mut clean = PathBuf::new();
    for component in raw.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(clean)
}

/// Reads `input`, copying everything read to `out` and hashing it: the layer as the tar parser
/// reads it, so one pass both copies the layer and shows its entries to the caller.
struct Tee<'a, R, W> {
    input: R,
    out: &'a mut W,
    hasher: Sha256,
    size: u64,
    /// A failed write to `out` (the tar parser only sees an `io::Error`, so this tells a full
    /// disk from a broken layer).
    write_error: Option<io::Error>,
}

impl<R: Read, W: Write> Read for Tee<'_, R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.input.read(buf)?;
        if let Err(e) = self.out.write_all(&buf[..n]) {
            let copy = io::Error::new(e.kind(), e.to_string());
            self.write_error = Some(e);
            return Err(copy);
        }
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

impl<W: Write + Seek> LayoutWriter<W> {
    /// Starts an archive at the current position of `out` with its `oci-layout` file.
    pub fn new(mut out: W) -> Result<Self, ImageError> {
        let position = out.stream_position().map_err(write_failed)?;
        let mut writer = Self { out, position, layers: Vec::new() };
        writer.put_file("oci-layout", OCI_LAYOUT)?;
        for directory in ["blobs/", "blobs/sha256/"] {
            let header = header(directory, 0, true)?;
            writer.out.write_all(header.as_bytes()).map_err(write_failed)?;
            writer.position += BLOCK;
        }
        Ok(writer)
    }

    /// Appends a root file system tar (uncompressed) as the next layer, as it is, byte for byte.
    /// Each of its entries is shown to `visit` as it streams by, with its path relative to the
    /// root (`./var/lib/dpkg/status` as `var/lib/dpkg/status`; entries that climb out with `..`
    /// are not shown) and its content, which `visit` may read (what it leaves unread is copied
    /// all the same): the caller learns about the root without a second pass over it.
    pub fn add_layer(
        &mut self,
        rootfs: impl Read,
        mut visit: impl FnMut(&Path, &mut dyn Read) -> io::Result<()>,
    ) -> Result<LayoutLayer, ImageError> {
        // The header names the digest: a placeholder of the same length until it is known.
        let header_at = self.position;
        let placeholder = header(&format!("blobs/sha256/{}", "0".repeat(64)), 0, false)?;
        self.out.write_all(placeholder.as_bytes()).map_err(write_failed)?;

        enum Stop {
            Tar(io::Error),
            Visit(io::Error),
        }
        let mut tee = Tee { input: rootfs, out: &mut self.out, hasher: Sha256::new(), size: 0, write_error: None };
        let walked = {
            let mut archive = tar::Archive::new(&mut tee);
            match archive.entries() {
                Err(e) => Err(Stop::Tar(e)),
                Ok(mut entries) => entries.try_for_each(|entry| {
                    let mut entry = entry.map_err(Stop::Tar)?;
                    let path = entry.path().map_err(Stop::Tar)?.into_owned();
                    match entry_path(&path) {
                        Some(path) => visit(&path, &mut entry).map_err(Stop::Visit),
                        None => Ok(()),
                    }
                }),
            }
        };
        // What follows the end-of-archive blocks (tar pads archives to whole records) belongs
        // to the layer too: its digest is the digest of the whole input.
        let walked = walked.and_then(|()| io::copy(&mut tee, &mut io::sink()).map(drop).map_err(Stop::Tar));
        let Tee { hasher, size, write_error, .. } = tee;
        if let Some(source) = write_error {
            return Err(write_failed(source));
        }
        match walked {
            Err(Stop::Tar(e)) => {
                return Err(ImageError::invalid(format!("the root file system is not a readable tar: {e}")));
            }
            Err(Stop::Visit(source)) => {
                return Err(ImageError::Io { context: "inspecting a root file system", source });
            }
            Ok(()) => {}
        }
        let digest = format!("sha256:{}", hex(&hasher.finalize()));
        self.out.write_all(&[0; BLOCK as usize][..padding(size)]).map_err(write_failed)?;
        let end = header_at + BLOCK + size + padding(size) as u64;
        let header = header(&format!("blobs/sha256/{}", &digest["sha256:".len()..]), size, false)?;
        self.out.seek(SeekFrom::Start(header_at)).map_err(write_failed)?;
        self.out.write_all(header.as_bytes()).map_err(write_failed)?;
        self.out.seek(SeekFrom::Start(end)).map_err(write_failed)?;
        self.position = end;
        let layer = LayoutLayer { digest, size };
        self.layers.push(layer.clone());
        Ok(layer)
    }

    /// Writes the config, the manifest and `index.json` naming the image `image.reference`,
    /// then the end of the archive; returns the output (flushed) and what the archive holds.
    pub fn finish(mut self, image: &LayoutImage) -> Result<(W, Layout), ImageError> {
        Reference::parse(&image.reference)?;
        let diff_ids: Vec<&str> = self.layers.iter().map(|l| l.digest.as_str()).collect();
        let config = json!({
            "architecture": host_architecture(),
            "os": "linux",
            "config": { "Env": image.env, "Labels": image.labels },
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
        });
        let (config_digest, config_size) = self.put_blob(config.to_string().as_bytes())?;
        let layers: Vec<_> =
            self.layers.iter().map(|l| json!({ "mediaType": LAYER_TAR, "digest": l.digest, "size": l.size })).collect();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": { "mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest, "size": config_size },
            "layers": layers,
        });
        let (manifest_digest, manifest_size) = self.put_blob(manifest.to_string().as_bytes())?;
        let index = json!({
            "schemaVersion": 2,
            "mediaType": INDEX_MEDIA_TYPE,
            "manifests": [{
                "mediaType": MANIFEST_MEDIA_TYPE,
                "digest": manifest_digest,
                "size": manifest_size,
                "annotations": { REF_NAME: image.reference },
            }],
        });
        self.put_file("index.json", index.to_string().as_bytes())?;
        self.out.write_all(&[0; 2 * BLOCK as usize]).map_err(write_failed)?;
        self.out.flush().map_err(write_failed)?;
        Ok((self.out, Layout { manifest_digest, config_digest, layers: self.layers }))
    }

    /// Appends a small file whole.
    fn put_file(&mut self, path: &str, bytes: &[u8]) -> Result<(), ImageError> {
        let size = bytes.len() as u64;
        let header = header(path, size, false)?;
        self.out.write_all(header.as_bytes()).map_err(write_failed)?;
        self.out.write_all(bytes).map_err(write_failed)?;
        self.out.write_all(&[0; BLOCK as usize][..padding(size)]).map_err(write_failed)?;
        self.position += BLOCK + size + padding(size) as u64;
        Ok(())
    }

    /// Appends a small blob (a config, a manifest); returns its digest and size.
    fn put_blob(&mut self, bytes: &[u8]) -> Result<(String, u64), ImageError> {
        let hex = hex(&Sha256::digest(bytes));
        self.put_file(&format!("blobs/sha256/{hex}"), bytes)?;
        Ok((format!("sha256:{hex}"), bytes.len() as u64))
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::Cursor;

    use serde_json::Value;

    use super::*;
    use crate::image::ImageStore;

    /// A tiny root: a shell, a dpkg status file, and the padding GNU tar leaves after the end.
    fn rootfs() -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut add = |path: &str, content: Option<&[u8]>| {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(if content.is_some() { tar::EntryType::Regular } else { tar::EntryType::Directory });
            header.set_size(content.map_or(0, |c| c.len() as u64));
            header.set_mode(0o755);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            builder.append_data(&mut header, path, content.unwrap_or_default()).expect("append");
        };
        add("./", None);
        add("./bin/", None);
        add("./bin/sh", Some(b"#!fake shell"));
        add("./var/lib/dpkg/", None);
        add("./var/lib/dpkg/status", Some(b"Package: chromium\nVersion: 1.2.3-1\n"));
        let mut bytes = builder.into_inner().expect("finish");
        bytes.resize(10240, 0);
        bytes
    }

    fn image() -> LayoutImage {
        LayoutImage {
            reference: "nimbus/test:1".into(),
            env: vec!["PATH=/usr/bin:/bin".into()],
            labels: BTreeMap::from([("io.nimbus.test".to_owned(), "yes".to_owned())]),
        }
    }

    /// The entries `add_layer` showed: each path, with the content of the dpkg status file.
    type Seen = Vec<(PathBuf, Vec<u8>)>;

    /// Writes `rootfs` as a one-layer archive, collecting what `add_layer` showed.
    fn write(rootfs: &[u8]) -> (Vec<u8>, Layout, Seen) {
        let mut seen = Vec::new();
        let mut writer = LayoutWriter::new(Cursor::new(Vec::new())).expect("new");
        writer
            .add_layer(rootfs, |path, content| {
                let mut bytes = Vec::new();
                if path == Path::new("var/lib/dpkg/status") {
                    content.read_to_end(&mut bytes)?;
                }
                seen.push((path.to_owned(), bytes));
                Ok(())
            })
            .expect("add layer");
        let (out, layout) = writer.finish(&image()).expect("finish");
        (out.into_inner(), layout, seen)
    }

    /// The archive's files by path.
    fn files(archive: &[u8]) -> BTreeMap<String, Vec<u8>> {
        let mut files = BTreeMap::new();
        for entry in tar::Archive::new(archive).entries().expect("entries") {
            let mut entry = entry.expect("entry");
            let path = entry.path().expect("path").to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).expect("read");
            files.insert(path, bytes);
        }
        files
    }

    fn blob(files: &BTreeMap<String, Vec<u8>>, digest: &str) -> Vec<u8> {
        files[&format!("blobs/sha256/{}", &digest["sha256:".len()..])].clone()
    }

    fn json_of(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).expect("JSON")
    }

    #[test]
    fn a_root_becomes_one_uncompressed_layer_named_by_its_digest() {
        let root = rootfs();
        let (archive, layout, seen) = write(&root);
        assert_eq!(archive.len() % BLOCK as usize, 0);
        let files = files(&archive);
        assert_eq!(files["oci-layout"], OCI_LAYOUT);

        // The layer is the input, byte for byte (padding after the end included).
        let layer_digest = format!("sha256:{}", hex(&Sha256::digest(&root)));
        assert_eq!(layout.layers, vec![LayoutLayer { digest: layer_digest.clone(), size: root.len() as u64 }]);
        assert_eq!(blob(&files, &layer_digest), root);

        let index = json_of(&files["index.json"]);
        assert_eq!(index["mediaType"], INDEX_MEDIA_TYPE);
        let descriptor = &index["manifests"][0];
        assert_eq!(descriptor["digest"], layout.manifest_digest.as_str());
        assert_eq!(descriptor["annotations"][REF_NAME], "nimbus/test:1");
        let manifest_bytes = blob(&files, &layout.manifest_digest);
        assert_eq!(descriptor["size"], manifest_bytes.len());
        assert_eq!(format!("sha256:{}", hex(&Sha256::digest(&manifest_bytes))), layout.manifest_digest);

        let manifest = json_of(&manifest_bytes);
        assert_eq!(manifest["layers"], json!([{ "mediaType": LAYER_TAR, "digest": layer_digest, "size": root.len() }]));
        assert_eq!(manifest["config"]["digest"], layout.config_digest.as_str());
        let config = json_of(&blob(&files, &layout.config_digest));
        assert_eq!(config["rootfs"], json!({ "type": "layers", "diff_ids": [layer_digest] }));
        assert_eq!(config["os"], "linux");
        assert_eq!(config["architecture"], host_architecture());
        assert_eq!(config["config"], json!({ "Env": ["PATH=/usr/bin:/bin"], "Labels": { "io.nimbus.test": "yes" } }));

        // Every entry was shown, `./` stripped, with its content readable.
        let paths: Vec<_> = seen.iter().map(|(p, _)| p.to_string_lossy().into_owned()).collect();
        assert_eq!(paths, ["", "bin", "bin/sh", "var/lib/dpkg", "var/lib/dpkg/status"]);
        assert_eq!(seen[4].1, b"Package: chromium\nVersion: 1.2.3-1\n");

        // The same root and image make the same archive.
        assert_eq!(write(&root).0, archive);
    }

    #[test]
    fn the_store_imports_the_archive_under_its_reference() {
        let data = tempfile::tempdir().expect("temp dir");
        let store = ImageStore::open(data.path()).expect("open store");
        let (archive, layout, _) = write(&rootfs());
        let imported = store.import(&archive[..], None).expect("import");
        assert_eq!(imported.len(), 1);
        assert_eq!(imported[0].digest, layout.manifest_digest);
        assert_eq!(imported[0].references, ["docker.io/nimbus/test:1"]);
        assert_eq!(store.resolve("nimbus/test:1").expect("resolve").digest, layout.manifest_digest);
        let root = store.rootfs(&layout.manifest_digest).expect("root path");
        assert_eq!(fs::read(root.join("bin/sh")).expect("unpacked"), b"#!fake shell");
        let run = store.run_config(&layout.manifest_digest).expect("run config");
        assert_eq!(run.env, ["PATH=/usr/bin:/bin"]);
    }

    #[test]
    fn a_root_that_is_not_a_tar_is_refused() {
        let mut writer = LayoutWriter::new(Cursor::new(Vec::new())).expect("new");
        let garbage = vec![0x5a; 2048];
        match writer.add_layer(&garbage[..], |_, _| Ok(())) {
            Err(ImageError::Invalid(reason)) => assert!(reason.contains("not a readable tar"), "{reason}"),
            other => panic!("expected an invalid-archive error, got {other:?}"),
        }
    }

    #[test]
    fn a_failing_visit_and_a_bad_reference_are_errors() {
        let mut writer = LayoutWriter::new(Cursor::new(Vec::new())).expect("new");
        let failed = writer.add_layer(&rootfs()[..], |_, _| Err(io::Error::other("no")));
        assert!(matches!(failed, Err(ImageError::Io { context: "inspecting a root file system", .. })), "{failed:?}");

        let mut writer = LayoutWriter::new(Cursor::new(Vec::new())).expect("new");
        writer.add_layer(&rootfs()[..], |_, _| Ok(())).expect("add layer");
        let bad = LayoutImage { reference: "Not A Reference".into(), ..image() };
        assert!(matches!(writer.finish(&bad), Err(ImageError::Reference(_))));
    }
}
