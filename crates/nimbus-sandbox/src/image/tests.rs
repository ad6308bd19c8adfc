//! Store tests over archives built in the test: docker-archive and OCI-layout tars.

use std::io::Write;

use serde_json::json;
use sha2::{Digest, Sha256};

use super::*;

fn header(size: usize, kind: tar::EntryType) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_size(size as u64);
    header.set_mode(if kind == tar::EntryType::Directory { 0o755 } else { 0o644 });
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}

fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, bytes) in files {
        let kind = if path.ends_with('/') { tar::EntryType::Directory } else { tar::EntryType::Regular };
        builder.append_data(&mut header(bytes.len(), kind), path, *bytes).expect("append");
    }
    builder.into_inner().expect("finish")
}

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", blobs::hex(&Sha256::digest(bytes)))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

fn config() -> Vec<u8> {
    json!({ "architecture": "amd64", "os": "linux", "config": { "Cmd": ["/bin/sh"] },
            "rootfs": { "type": "layers", "diff_ids": [] } })
    .to_string()
    .into_bytes()
}

/// Two layers: the second deletes a file of the first.
fn layers() -> (Vec<u8>, Vec<u8>) {
    (tar_of(&[("bin/", b""), ("bin/sh", b"#!fake"), ("etc/", b""), ("etc/old", b"x")]), tar_of(&[("etc/.wh.old", b"")]))
}

fn docker_archive(tag: &str) -> Vec<u8> {
    let (l1, l2) = layers();
    docker_archive_of(tag, &[l1, gzip(&l2)])
}

/// A docker archive whose layers are these blobs (tars, gzip-compressed or not).
fn docker_archive_of(tag: &str, layers: &[Vec<u8>]) -> Vec<u8> {
    let names: Vec<String> = (1..=layers.len()).map(|i| format!("l{i}/layer.tar")).collect();
    let manifest = json!([{ "Config": "config.json", "RepoTags": [tag], "Layers": names }]);
    let (manifest, config) = (manifest.to_string(), config());
    let mut files = vec![("manifest.json", manifest.as_bytes()), ("config.json", &config[..])];
    files.extend(names.iter().map(String::as_str).zip(layers.iter().map(Vec::as_slice)));
    tar_of(&files)
}

/// A layer holding one file of `size` zeros.
fn zeros_layer(size: usize) -> Vec<u8> {
    tar_of(&[("bin/", b""), ("bin/zeros", &vec![0; size])])
}

/// Nothing of a failed import or pull is left: no image, no root, no staging.
fn assert_nothing_left(store: &ImageStore, data: &Path) {
    assert!(store.list().expect("list").is_empty(), "no image is recorded");
    for dir in ["images/rootfs", "images/tmp"] {
        let left: Vec<_> = fs::read_dir(data.join(dir)).expect("read dir").flatten().map(|e| e.path()).collect();
        assert!(left.is_empty(), "{dir} holds {left:?}");
    }
}

const MIB: u64 = 1024 * 1024;

fn oci_layout(ref_name: Option<&str>) -> (Vec<u8>, String) {
    oci_layout_with(ref_name, false)
}

/// An OCI layout; with `tamper`, one layer's bytes no longer match the digest naming them.
fn oci_layout_with(ref_name: Option<&str>, tamper: bool) -> (Vec<u8>, String) {
    let (l1, l2) = layers();
    let (l1, l2, cfg) = (gzip(&l1), l2, config());
    let manifest = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(&cfg), "size": cfg.len() },
        "layers": [
            { "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(&l1), "size": l1.len() },
            { "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(&l2), "size": l2.len() },
        ],
    })
    .to_string()
    .into_bytes();
    let mut descriptor = json!({ "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(&manifest), "size": manifest.len() });
    if let Some(name) = ref_name {
        descriptor["annotations"] = json!({ "org.opencontainers.image.ref.name": name });
    }
    let index = json!({ "schemaVersion": 2, "manifests": [descriptor] }).to_string();
    let blob = |b: &[u8]| format!("blobs/sha256/{}", &sha(b)[7..]);
    let paths = [blob(&manifest), blob(&cfg), blob(&l1), blob(&l2)];
    let archive = tar_of(&[
        ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
        ("index.json", index.as_bytes()),
        (&paths[0], &manifest),
        (&paths[1], &cfg),
        (&paths[2], &l1),
        (&paths[3], if tamper { b"tampered" } else { &l2 }),
    ]);
    (archive, sha(&manifest))
}

#[test]
fn docker_archives_import_unpack_and_remove() {
    let data = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(data.path()).expect("open");
    let imported = store.import(&docker_archive("busybox:test")[..], None).expect("import");
    assert_eq!(imported.len(), 1);
    let image = &imported[0];
    assert_eq!(image.references, vec!["docker.io/library/busybox:test".to_owned()]);
    assert_eq!((image.os.as_str(), image.architecture.as_str(), image.source), ("linux", "amd64", ImageSource::Import));
    assert!(image.size_bytes > 0);
    let root = store.rootfs(&image.digest).expect("root path");
    assert_eq!(fs::read(root.join("bin/sh")).expect("bin/sh"), b"#!fake");
    assert!(!root.join("etc/old").exists(), "the second layer's whiteout applied");

    // Importing again is a no-op that returns the same image; it survives reopening.
    let again = store.import(&gzip(&docker_archive("busybox:test"))[..], None).expect("re-import");
    assert_eq!(&again, &imported);
    let reopened = ImageStore::open(data.path()).expect("reopen");
    assert_eq!(reopened.list().expect("list"), imported);
    assert_eq!(reopened.resolve("busybox:test").expect("by name").digest, image.digest);
    assert_eq!(reopened.resolve(&image.digest).expect("by digest").digest, image.digest);

    reopened.remove("busybox:test").expect("remove");
    assert!(reopened.list().expect("list").is_empty());
    assert!(!root.exists(), "the root is removed");
    let blobs = fs::read_dir(data.path().join("images/blobs/sha256")).expect("blobs").count();
    assert_eq!(blobs, 0, "unused blobs are collected");
    assert!(matches!(reopened.remove("busybox:test"), Err(ImageError::NotFound { .. })));
}

#[test]
fn oci_layouts_take_names_from_annotations_or_the_caller() {
    let data = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(data.path()).expect("open");
    let (archive, digest) = oci_layout(None);
    let imported = store.import(&archive[..], Some("127.0.0.1:5000/tools/box:1")).expect("import");
    assert_eq!(imported[0].digest, digest);
    assert_eq!(imported[0].references, vec!["127.0.0.1:5000/tools/box:1".to_owned()]);
    let root = store.rootfs(&digest).expect("root");
    assert!(root.join("bin/sh").is_file() && !root.join("etc/old").exists());

    // The same image named again by its archive: one image, two names, unpacked once.
    let (named, _) = oci_layout(Some("example.com/box:2"));
    let both = store.import(&named[..], None).expect("second name");
    assert_eq!(both[0].references, vec!["127.0.0.1:5000/tools/box:1".to_owned(), "example.com/box:2".to_owned()]);
    assert_eq!(store.list().expect("list").len(), 1);
}

#[test]
fn bad_archives_are_refused_without_leftovers() {
    let data = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(data.path()).expect("open");
    let (corrupted, _) = oci_layout_with(Some("example.com/box:1"), true);
    for (name, bytes) in [
        ("not a tar", b"hello".to_vec()),
        ("no image", tar_of(&[("readme", b"x")])),
        ("corrupted", corrupted),
        ("bad manifest.json", tar_of(&[("manifest.json", b"{}")])),
        ("escaping layer path", tar_of(&[("manifest.json", br#"[{"Config":"../../etc/passwd","Layers":[]}]"#)])),
    ] {
        assert!(matches!(store.import(&bytes[..], Some("x:1")), Err(ImageError::Invalid(_))), "{name}");
    }
    assert!(store.list().expect("list").is_empty());
    assert_eq!(fs::read_dir(data.path().join("images/tmp")).expect("tmp").count(), 0, "staging is cleaned");
}

#[test]
fn run_config_reads_the_image_config() {
    let data = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(data.path()).expect("open");
    let imported = store.import(&docker_archive("busybox:cfg")[..], None).expect("import");
    let config = store.run_config(&imported[0].digest).expect("run config");
    assert_eq!(config, RunConfig { cmd: vec!["/bin/sh".to_owned()], ..RunConfig::default() });
    let missing = format!("sha256:{}", "0".repeat(64));
    assert!(matches!(store.run_config(&missing), Err(ImageError::NotFound { .. })));
}

#[test]
fn pull_errors_render_as_catalogued_502s() {
    let error = ImageError::PullFailed {
        reference: "ghcr.io/org/tool:1".into(),
        registry: "ghcr.io".into(),
        reason: "unauthorized".into(),
        http_status: Some(401),
        unreachable: None,
    };
    let error = NimbusError::from(error.duplicate());
    assert_eq!((error.code, error.http_status(), error.is_retryable()), (ErrorCode::SandboxImagePullFailed, 502, true));
    assert_eq!(
        error.detail,
        Some(
            json!({ "reference": "ghcr.io/org/tool:1", "registry": "ghcr.io", "reason": "unauthorized", "httpStatus": 401 })
        )
    );
    // A registry that answered keeps the catalog's "retry with backoff".
    assert!(error.remediation.is_none(), "{:?}", error.remediation);

    // One that could not be reached points to importing the image; the action stays `retry`.
    for (cause, what) in
        [(Unreachable::ConnectionRefused, "refused the connection"), (Unreachable::NameResolution, "did not resolve")]
    {
        let error = NimbusError::from(ImageError::PullFailed {
            reference: "registry.example/org/tool:1".into(),
            registry: "registry.example".into(),
            reason: "error sending request".into(),
            http_status: None,
            unreachable: Some(cause),
        });
        let (action, message) = error.effective_remediation().expect("a remediation");
        assert_eq!(action, nimbus_core::catalog::Action::Retry);
        assert!(message.contains(what), "{message}");
        assert!(message.contains("POST /api/images/import?reference=registry.example/org/tool:1"), "{message}");
        assert!(error.is_retryable());
    }
}

#[test]
fn ensure_answers_stored_images_without_a_registry() {
    let data = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(data.path()).expect("open");
    let imported = store.import(&docker_archive("127.0.0.1:9/box:1")[..], None).expect("import");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let found = runtime.block_on(store.ensure("127.0.0.1:9/box:1")).expect("local");
    assert_eq!(found.digest, imported[0].digest);
    let missing = format!("sha256:{}", "0".repeat(64));
    assert!(matches!(runtime.block_on(store.ensure(&missing)), Err(ImageError::NotFound { .. })));
    assert!(matches!(runtime.block_on(store.ensure("Bad Ref")), Err(ImageError::Reference(_))));
}

#[test]
fn a_bomb_layer_fails_its_import_and_leaves_nothing() {
    let data = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(data.path())
        .expect("open")
        .with_limits(UnpackLimits { layer_bytes: MIB, ..UnpackLimits::unbounded() });
    // 16 MiB of zeros in a blob of a few KiB, under the good image's first layer.
    let (good, _) = layers();
    let bomb = gzip(&zeros_layer(16 * MIB as usize));
    assert!(bomb.len() < 128 * 1024, "{} bytes", bomb.len());
    let error = store.import(&docker_archive_of("box:1", &[good, bomb])[..], None).expect_err("a bomb");
    assert!(matches!(error, ImageError::TooLarge { cap: "image_layer_bytes", limit: MIB, .. }), "{error:?}");
    let error = NimbusError::from(error);
    assert_eq!((error.code, error.http_status(), error.is_retryable()), (ErrorCode::OpCapExceeded, 400, false));
    let detail = error.detail.expect("detail");
    assert_eq!((detail["cap"].as_str(), detail["limit"].as_u64()), (Some("image_layer_bytes"), Some(MIB)));
    assert!(detail["observed"].as_u64().is_some_and(|o| o > 16 * MIB), "{detail}");
    assert_nothing_left(&store, data.path());

    // A good image under the same name imports afterwards.
    let imported = store.import(&docker_archive("box:1")[..], None).expect("a good image");
    assert_eq!(store.resolve("box:1").expect("named").digest, imported[0].digest);
    assert!(store.rootfs(&imported[0].digest).expect("root").join("bin/sh").is_file());
}

#[test]
fn an_archive_is_bounded_as_it_unpacks() {
    let data = tempfile::tempdir().expect("tempdir");
    let open = |limits| ImageStore::open(data.path()).expect("open").with_limits(limits);
    // A docker archive with one layer, then `extra` files.
    let padded = |extra: &[(&str, &[u8])]| {
        let manifest = json!([{ "Config": "config.json", "RepoTags": ["box:2"], "Layers": ["layer.tar"] }]);
        let (manifest, config, layer) = (manifest.to_string(), config(), layers().0);
        let mut files = vec![("manifest.json", manifest.as_bytes()), ("config.json", &config[..])];
        files.push(("layer.tar", &layer[..]));
        files.extend_from_slice(extra);
        tar_of(&files)
    };

    // A gzip archive expanding to 16 MiB, over an archive limit of 1 MiB.
    let zeros = vec![0; 16 * MIB as usize];
    let bomb = gzip(&padded(&[("padding", &zeros)]));
    let store = open(UnpackLimits { archive_bytes: MIB, ..UnpackLimits::unbounded() });
    let error = store.import(&bomb[..], None).expect_err("an archive bomb");
    assert!(matches!(error, ImageError::TooLarge { cap: "image_archive_bytes", limit: MIB, .. }), "{error:?}");
    assert_nothing_left(&store, data.path());

    // Entries: the three files of the archive and one more are allowed, a fifth is not.
    let five = padded(&[("extra", b"x"), ("more", b"y")]);
    let error = open(UnpackLimits { entries: 4, ..UnpackLimits::unbounded() })
        .import(&five[..], None)
        .expect_err("five entries");
    assert!(matches!(error, ImageError::TooLarge { cap: "image_archive_entries", observed: 5, limit: 4 }), "{error:?}");
    assert_nothing_left(&store, data.path());

    // An endless layer: a FIFO (opening it would block the import), or a link to /dev/zero or
    // to a host file. None is read.
    let manifest = json!([{ "Config": "config.json", "RepoTags": ["box:2"], "Layers": ["layer.tar"] }]).to_string();
    for (kind, target) in [
        (tar::EntryType::Fifo, None),
        (tar::EntryType::Symlink, Some("/dev/zero")),
        (tar::EntryType::Symlink, Some("/etc/passwd")),
    ] {
        let mut archive = tar_of(&[("manifest.json", manifest.as_bytes()), ("config.json", &config())]);
        archive.truncate(archive.len() - 1024);
        let mut builder = tar::Builder::new(archive);
        let mut entry = header(0, kind);
        match target {
            Some(target) => builder.append_link(&mut entry, "layer.tar", target).expect("link"),
            None => builder.append_data(&mut entry, "layer.tar", &[][..]).expect("fifo"),
        }
        let archive = builder.into_inner().expect("finish");
        let error = open(UnpackLimits::unbounded()).import(&archive[..], None).expect_err("an endless layer");
        assert!(
            matches!(&error, ImageError::Invalid(reason) if reason.contains("lacks layer.tar")),
            "{target:?}: {error:?}"
        );
        assert_nothing_left(&store, data.path());
    }

    // Within its limits the same archive imports.
    let imported = open(UnpackLimits { archive_bytes: 64 * 1024, entries: 4, ..UnpackLimits::unbounded() })
        .import(&padded(&[])[..], None)
        .expect("within the limits");
    assert_eq!(imported[0].references, vec!["docker.io/library/box:2".to_owned()]);
}
