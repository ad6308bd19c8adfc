//! The operator image routes (sandboxes.md §7): import a docker-archive tar, list, remove.

use nimbus_core::limits::{MAX_IMAGE_ARCHIVE_BYTES, MAX_IMAGE_LAYER_EXPANDED_BYTES};
use serde_json::json;

use crate::harness::Server;
use crate::registry::{assert_no_image_files_left, sparse_layer};

fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, bytes) in files {
        let mut header = tar::Header::new_gnu();
        let dir = path.ends_with('/');
        header.set_entry_type(if dir { tar::EntryType::Directory } else { tar::EntryType::Regular });
        header.set_size(bytes.len() as u64);
        header.set_mode(0o755);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        builder.append_data(&mut header, path, *bytes).expect("append");
    }
    builder.into_inner().expect("finish")
}

/// A one-layer image in `docker save` form, named by `tag`.
fn docker_archive(tag: &str) -> Vec<u8> {
    docker_archive_with(tag, &tar_of(&[("bin/", b""), ("bin/hello", b"#!/bin/sh\necho hello\n")]))
}

/// A one-layer image in `docker save` form whose layer is `layer`.
fn docker_archive_with(tag: &str, layer: &[u8]) -> Vec<u8> {
    let config = json!({ "architecture": "amd64", "os": "linux", "config": { "Cmd": ["/bin/hello"] },
                         "rootfs": { "type": "layers", "diff_ids": [] } });
    let manifest = json!([{ "Config": "config.json", "RepoTags": [tag], "Layers": ["layer.tar"] }]);
    tar_of(&[
        ("manifest.json", manifest.to_string().as_bytes()),
        ("config.json", config.to_string().as_bytes()),
        ("layer.tar", layer),
    ])
}

#[test]
fn images_import_list_and_remove() {
    let mut server = Server::start();
    let tar = [("content-type", "application/x-tar")];
    let archive = docker_archive("hello:1");
    let resp = server.authed("POST", "/api/images/import", &tar, Some(&archive));
    resp.expect_status(201);
    let image = resp.json["images"][0].clone();
    assert_eq!(image["references"], json!(["docker.io/library/hello:1"]));
    assert_eq!((image["os"].as_str(), image["architecture"].as_str()), (Some("linux"), Some("amd64")));
    assert_eq!(image["source"], "import");
    assert_eq!(image["usedBy"], 0);
    assert!(image["sizeBytes"].as_u64().is_some_and(|s| s > 0));
    let digest = image["digest"].as_str().expect("digest").to_owned();
    assert!(digest.starts_with("sha256:") && digest.len() == 71);
    let root = server.dirs().data().join("images/rootfs").join(&digest[7..]);
    assert!(root.join("bin/hello").is_file(), "the image is unpacked once into its shared root");

    // Importing the same archive again returns the same image; a caller name fills in for an
    // unnamed one; both survive a restart.
    let again = server.authed("POST", "/api/images/import?reference=extra:2", &tar, Some(&archive));
    again.expect_status(201);
    assert_eq!(again.json["images"][0]["digest"], digest.as_str());
    server.stop();
    let server = Server::start_in(&server.dirs());
    let listed = server.get("/api/images");
    listed.expect_status(200);
    assert_eq!(listed.json["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(listed.json["items"][0]["digest"], digest.as_str());

    // Bad input: not an archive, wrong content type, missing reference, bad reference.
    let garbage = server.authed("POST", "/api/images/import", &tar, Some(b"not a tar at all"));
    garbage.expect_status(400);
    assert_eq!(garbage.code(), "op.invalid_input");
    let json_body = server.authed("POST", "/api/images/import", &[("content-type", "text/plain")], Some(&archive));
    json_body.expect_status(415);
    server.delete("/api/images").expect_status(400);
    let bad_name = server.authed("POST", "/api/images/import?reference=Bad%20Name", &tar, Some(&archive));
    bad_name.expect_status(400);
    assert_eq!(bad_name.detail()["field"], "reference");

    // Remove by name: the image, its root and its blobs go; a second remove is 404.
    server.delete("/api/images?reference=hello:1").expect_status(204);
    assert!(server.get("/api/images").json["items"].as_array().is_some_and(Vec::is_empty));
    assert!(!root.exists());
    let gone = server.delete(&format!("/api/images?reference={digest}"));
    gone.expect_status(404);
    assert_eq!(gone.code(), "sandbox.image_not_found");
    assert_eq!(gone.detail()["reference"], digest.as_str());
}

#[test]
fn image_commands_work_offline_and_through_the_server() {
    let dirs = crate::harness::Dirs::new();
    let archive = dirs.root().join("hello.tar");
    std::fs::write(&archive, docker_archive("hello:cli")).expect("write archive");
    let archive = archive.to_str().expect("utf-8 path").to_owned();

    // No server: the commands take the data directory's lock and work on the store directly.
    let imported = dirs.cli(&["image", "import", &archive, "--json"]);
    assert_eq!(imported.code, Some(0), "{imported:?}");
    let digest = imported.json()["images"][0]["digest"].as_str().expect("digest").to_owned();
    let table = dirs.cli(&["image", "list"]);
    assert!(table.stdout.contains("docker.io/library/hello:cli") && table.stdout.contains(&digest[7..19]), "{table:?}");
    let removed = dirs.cli(&["image", "rm", "hello:cli"]);
    assert_eq!(removed.code, Some(0), "{removed:?}");
    let missing = dirs.cli(&["image", "rm", "hello:cli"]);
    assert_eq!(missing.code, Some(1));
    assert!(missing.stderr.contains("[sandbox.image_not_found]"), "{missing:?}");
    let missing_json = dirs.cli(&["image", "rm", "hello:cli", "--json"]);
    let envelope: serde_json::Value = serde_json::from_str(missing_json.stderr.trim()).expect("envelope on stderr");
    assert_eq!(envelope["error"]["code"], "sandbox.image_not_found");

    // With a server owning the data directory, the same commands go through its routes.
    let server = dirs.start();
    let imported = dirs.cli(&["image", "import", &archive, "--quiet"]);
    assert_eq!(imported.code, Some(0), "{imported:?}");
    assert!(imported.stdout.contains(&digest), "{imported:?}");
    let listed = server.get("/api/images");
    assert_eq!(listed.json["items"][0]["digest"], digest.as_str(), "the server sees what the CLI imported");
    let listed_by_cli = dirs.cli(&["image", "list", "--json"]);
    assert_eq!(listed_by_cli.json()["items"][0]["digest"], digest.as_str());
    assert_eq!(dirs.cli(&["image", "rm", &digest]).code, Some(0));
    assert!(server.get("/api/images").json["items"].as_array().is_some_and(Vec::is_empty));
}

#[test]
fn bomb_archives_are_refused_with_their_limit_and_leave_nothing() {
    const TIB: u64 = 1 << 40;
    let server = Server::start();
    let tar = [("content-type", "application/x-tar")];
    // A layer that is one tar header unpacking to a 1 TiB file, in an archive of a few KiB.
    let layer_bomb = docker_archive_with("bomb:1", &sparse_layer("bin/hole", TIB));
    assert!(layer_bomb.len() < 16 * 1024, "{} bytes", layer_bomb.len());
    // The archive itself expanding to 1 TiB in staging: the same header beside a good image.
    let mut archive_bomb = docker_archive("bomb:1");
    archive_bomb.truncate(archive_bomb.len() - 1024);
    archive_bomb.extend_from_slice(&sparse_layer("padding", TIB));
    for (archive, cap, limit) in [
        (&layer_bomb, "image_layer_bytes", MAX_IMAGE_LAYER_EXPANDED_BYTES),
        (&archive_bomb, "image_archive_bytes", MAX_IMAGE_ARCHIVE_BYTES),
    ] {
        let refused = server.authed("POST", "/api/images/import", &tar, Some(archive));
        refused.expect_status(400);
        assert_eq!(refused.code(), "op.cap_exceeded", "{cap}");
        let detail = refused.detail();
        assert_eq!((&detail["cap"], &detail["limit"]), (&json!(cap), &json!(limit)));
        assert!(detail["observed"].as_u64().is_some_and(|o| o > TIB), "{detail}");
        assert_eq!(server.get("/api/images").json["items"], json!([]), "{cap}: no image is recorded");
        assert_no_image_files_left(&server.dirs().data());
    }

    // `nimbus image import` on a data directory no server holds fails the same way.
    let dirs = crate::harness::Dirs::new();
    let path = dirs.root().join("bomb.tar");
    std::fs::write(&path, &layer_bomb).expect("write the archive");
    let offline = dirs.cli(&["image", "import", path.to_str().expect("utf-8 path"), "--json"]);
    assert_eq!(offline.code, Some(1), "{offline:?}");
    let envelope: serde_json::Value = serde_json::from_str(offline.stderr.trim()).expect("envelope on stderr");
    assert_eq!(envelope["error"]["code"], "op.cap_exceeded");
    assert_eq!(envelope["error"]["detail"]["cap"], "image_layer_bytes");
    assert_no_image_files_left(&dirs.data());

    // A good image under the same name imports afterwards.
    let good = server.authed("POST", "/api/images/import", &tar, Some(&docker_archive("bomb:1")));
    good.expect_status(201);
    assert_eq!(good.json["images"][0]["references"], json!(["docker.io/library/bomb:1"]));
}
