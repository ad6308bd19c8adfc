//! A real OCI registry for pull tests: Debian's `docker-registry` (CNCF distribution) on a free
//! loopback port with its storage in a temporary directory, and images built at test time (a
//! busybox image from Debian's `busybox-static`) pushed to it over the registry HTTP API.
//!
//! Needs `/usr/bin/docker-registry` and `/usr/bin/busybox` (`scripts/test` installs them);
//! [`Registry::start_with_basic_auth`] also needs `/usr/bin/python3` with its `crypt` module
//! (Debian 12's Python 3.11) to make the htpasswd file's bcrypt hash.

#![allow(dead_code)]

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use nimbus_core::NimbusError;
use nimbus_core::limits::MAX_IMAGE_LAYER_EXPANDED_BYTES;
use nimbus_sandbox::image::{ImageError, ImageSource, ImageStore, UnpackLimits};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::harness::Server;

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
const BUSYBOX_BIN: &str = "/usr/bin/busybox";
const PYTHON_BIN: &str = "/usr/bin/python3";
/// Safety net for a registry that never answers; readiness is polled, not waited for blindly.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Applets linked to `busybox` in the test image.
pub const BUSYBOX_APPLETS: &[&str] = &[
    "sh", "ash", "echo", "cat", "sleep", "ip", "nc", "ls", "id", "head", "tail", "yes", "dd", "hostname", "mkdir",
    "rm", "touch", "seq", "true", "false", "kill", "env", "pwd", "wc", "grep", "stat", "ps", "mount", "printf", "test",
    "tr", "wget", "httpd",
];

/// The OCI architecture name of this host.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// A file of an image layer: path (relative), content, mode.
pub type LayerFile = (String, Vec<u8>, u32);

/// A running `docker-registry`, killed (by its own pid) and reaped on drop.
pub struct Registry {
    child: Child,
    port: u16,
    agent: ureq::Agent,
    /// `Basic …`, sent with every request of the fixture when the registry requires auth.
    authorization: Option<String>,
    _dir: TempDir,
}

/// A port nothing listens on right now (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind a free port").port()
}

impl Registry {
    /// Starts a registry on a free loopback port and waits until `GET /v2/` answers.
    pub fn start() -> Registry {
        Registry::start_with(None)
    }

    /// Starts a registry that requires HTTP Basic credentials (`auth: htpasswd`, realm
    /// `nimbus-test`, a bcrypt hash made at test time) for every request, pulls included; the
    /// fixture's own requests (readiness, pushes) send them.
    pub fn start_with_basic_auth(user: &str, password: &str) -> Registry {
        Registry::start_with(Some((user, password)))
    }

    fn start_with(basic: Option<(&str, &str)>) -> Registry {
        let htpasswd = basic.map(|(user, password)| format!("{user}:{}\n", bcrypt_hash(password)));
        let authorization = basic.map(|(user, password)| {
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
        });
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        // A port taken between choosing and binding makes the registry exit: try another.
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("registry tempdir");
            let port = free_port();
            let config = dir.path().join("config.yml");
            let storage = dir.path().join("storage");
            let mut text = format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    \
                 rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                storage.display()
            );
            if let Some(htpasswd) = &htpasswd {
                let path = dir.path().join("htpasswd");
                std::fs::write(&path, htpasswd).expect("write htpasswd");
                text.push_str(&format!("auth:\n  htpasswd:\n    realm: nimbus-test\n    path: {}\n", path.display()));
            }
            std::fs::write(&config, text).expect("write registry config");
            let child = Command::new(REGISTRY_BIN)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {REGISTRY_BIN} (install docker-registry): {e}"));
            let mut registry =
                Registry { child, port, agent: agent.clone(), authorization: authorization.clone(), _dir: dir };
            if registry.wait_ready() {
                return registry;
            }
        }
        panic!("docker-registry did not start");
    }

    /// Polls `GET /v2/` with a short backoff until it answers 200; false if the process exits.
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let mut backoff = Duration::from_millis(10);
        let url = format!("http://{}/v2/", self.host());
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return false;
            }
            if let Ok(response) = self.authorize(self.agent.get(&url)).call()
                && response.status().as_u16() == 200
            {
                return true;
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_millis(200));
        }
        panic!("docker-registry did not answer GET /v2/ within {STARTUP_TIMEOUT:?}");
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Adds the fixture's credentials, if the registry requires them.
    fn authorize<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.authorization {
            Some(value) => request.header("Authorization", value),
            None => request,
        }
    }

    /// Uploads one blob (monolithic: POST an upload, PUT it with its digest); returns the digest.
    pub fn push_blob(&self, name: &str, bytes: &[u8]) -> String {
        let digest = format!("sha256:{}", sha256_hex(bytes));
        let base = format!("http://{}", self.host());
        let response = self
            .authorize(self.agent.post(format!("{base}/v2/{name}/blobs/uploads/")))
            .send_empty()
            .expect("start upload");
        assert_eq!(response.status().as_u16(), 202, "blob upload start");
        let location = response.headers().get("location").and_then(|l| l.to_str().ok()).expect("upload location");
        let mut url = if location.starts_with('/') { format!("{base}{location}") } else { location.to_owned() };
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&format!("digest={digest}"));
        let response = self
            .authorize(self.agent.put(&url))
            .header("Content-Type", "application/octet-stream")
            .send(bytes)
            .expect("finish upload");
        assert_eq!(response.status().as_u16(), 201, "blob upload of {digest}");
        digest
    }

    /// Pushes an image whose layers are the given uncompressed tars (sent gzip-compressed);
    /// fills the config's `rootfs.diff_ids`. Returns the manifest digest.
    pub fn push_layers(&self, repo_tag: &str, layers: Vec<Vec<u8>>, mut config: Value) -> String {
        let (name, tag) = repo_tag.rsplit_once(':').expect("repo:tag");
        let mut descriptors = Vec::new();
        let mut diff_ids = Vec::new();
        for layer in layers {
            diff_ids.push(format!("sha256:{}", sha256_hex(&layer)));
            let compressed = gzip(&layer);
            let digest = self.push_blob(name, &compressed);
            descriptors.push(json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": compressed.len(),
            }));
        }
        config["rootfs"] = json!({ "type": "layers", "diff_ids": diff_ids });
        let config = config.to_string().into_bytes();
        let config_digest = self.push_blob(name, &config);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len() },
            "layers": descriptors,
        })
        .to_string()
        .into_bytes();
        let response = self
            .authorize(self.agent.put(format!("http://{}/v2/{name}/manifests/{tag}", self.host())))
            .header("Content-Type", OCI_MANIFEST)
            .send(&manifest[..])
            .expect("push manifest");
        assert_eq!(response.status().as_u16(), 201, "manifest push of {repo_tag}");
        format!("sha256:{}", sha256_hex(&manifest))
    }

    /// Pushes a one-layer image made of `files` (parent directories added, mode 0755) with the
    /// given config (`rootfs` is filled in). Returns the manifest digest.
    pub fn push_image(&self, repo_tag: &str, files: Vec<LayerFile>, config: Value) -> String {
        self.push_layers(repo_tag, vec![files_layer(&files)], config)
    }

    /// Pushes a busybox image built from the host's `/usr/bin/busybox` (static): `bin/busybox`,
    /// applet links, `etc/passwd` and `etc/group`, empty `tmp proc sys dev root`; config
    /// `Cmd ["sh"]`, `PATH=/bin:/usr/bin`, `WorkingDir /`. Returns the manifest digest.
    pub fn push_busybox(&self, repo_tag: &str) -> String {
        self.push_layers(repo_tag, vec![busybox_layer(&read_busybox(), BUSYBOX_APPLETS)], busybox_config())
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The config of the busybox image (without `rootfs`).
pub fn busybox_config() -> Value {
    json!({
        "architecture": host_arch(),
        "os": "linux",
        "config": { "Cmd": ["sh"], "Env": ["PATH=/bin:/usr/bin"], "WorkingDir": "/" },
    })
}

/// The host's `/usr/bin/busybox` (static).
pub fn read_busybox() -> Vec<u8> {
    std::fs::read(BUSYBOX_BIN).unwrap_or_else(|e| panic!("cannot read {BUSYBOX_BIN} (install busybox-static): {e}"))
}

/// A tar header owned by root with mtime 0.
pub fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}

/// Appends a directory entry (`path` ends in `/`).
pub fn append_dir(builder: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32) {
    builder.append_data(&mut header(tar::EntryType::Directory, 0, mode), path, &[][..]).expect("append dir");
}

/// A layer, uncompressed, made of `files` with their parent directories (mode 0755).
pub fn files_layer(files: &[LayerFile]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut dirs = std::collections::BTreeSet::new();
    for (path, _, _) in files {
        let mut parent = Path::new(path).parent();
        while let Some(dir) = parent.filter(|d| !d.as_os_str().is_empty()) {
            dirs.insert(dir.to_path_buf());
            parent = dir.parent();
        }
    }
    for dir in &dirs {
        append_dir(&mut builder, &format!("{}/", dir.display()), 0o755);
    }
    for (path, bytes, mode) in files {
        let mut header = header(tar::EntryType::Regular, bytes.len() as u64, *mode);
        builder.append_data(&mut header, path, &bytes[..]).expect("append file");
    }
    builder.into_inner().expect("finish tar")
}

/// The busybox image's one layer, uncompressed: `bin/busybox` with a link per applet in
/// `applets`, `etc/passwd`, `etc/group`, empty `tmp proc sys dev root`.
pub fn busybox_layer(busybox: &[u8], applets: &[&str]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (dir, mode) in [("bin/", 0o755), ("etc/", 0o755), ("tmp/", 0o1777), ("proc/", 0o555), ("sys/", 0o555)] {
        append_dir(&mut builder, dir, mode);
    }
    for (dir, mode) in [("dev/", 0o755), ("root/", 0o700)] {
        append_dir(&mut builder, dir, mode);
    }
    let mut file = header(tar::EntryType::Regular, busybox.len() as u64, 0o755);
    builder.append_data(&mut file, "bin/busybox", busybox).expect("append busybox");
    for applet in applets {
        let mut link = header(tar::EntryType::Symlink, 0, 0o777);
        builder.append_link(&mut link, format!("bin/{applet}"), "busybox").expect("append applet link");
    }
    let passwd = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n";
    let group = b"root:x:0:\nnobody:x:65534:\n";
    for (path, bytes) in [("etc/passwd", &passwd[..]), ("etc/group", &group[..])] {
        builder.append_data(&mut header(tar::EntryType::Regular, bytes.len() as u64, 0o644), path, bytes).expect("etc");
    }
    builder.into_inner().expect("finish busybox layer")
}

/// A layer holding one file of `size` zeros: a few KiB once gzip-compressed.
pub fn zeros_layer(path: &str, size: usize) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut file = header(tar::EntryType::Regular, size as u64, 0o644);
    builder.append_data(&mut file, path, std::io::repeat(0).take(size as u64)).expect("append zeros");
    builder.into_inner().expect("finish zeros layer")
}

/// A layer holding one GNU sparse file `length` bytes long that stores none of them: one 512-byte
/// header that unpacks to `length` bytes.
pub fn sparse_layer(path: &str, length: u64) -> Vec<u8> {
    let mut file = header(tar::EntryType::GNUSparse, 0, 0o644);
    file.set_path(path).expect("sparse path");
    let gnu = file.as_gnu_mut().expect("a GNU header");
    gnu.set_real_size(length);
    gnu.sparse[0].set_offset(length);
    gnu.sparse[0].set_length(0);
    file.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&file, &[][..]).expect("append sparse");
    builder.into_inner().expect("finish sparse layer")
}

/// Nothing of a failed pull or import is left in a data directory: no unpacked root, nothing
/// staged.
pub fn assert_no_image_files_left(data: &Path) {
    for dir in ["images/rootfs", "images/tmp"] {
        let left: Vec<_> =
            std::fs::read_dir(data.join(dir)).expect("read an image dir").flatten().map(|e| e.path()).collect();
        assert!(left.is_empty(), "{dir} holds {left:?}");
    }
}

/// A bcrypt hash of `password` for an htpasswd file (docker-registry accepts only bcrypt), made
/// by Python's `crypt` module (gone in Python 3.13; Debian 12 has 3.11): the test crate has no
/// bcrypt dependency.
fn bcrypt_hash(password: &str) -> String {
    use std::io::Write;
    let mut child = Command::new(PYTHON_BIN)
        .args(["-W", "ignore", "-c"])
        .arg("import crypt, sys; print(crypt.crypt(sys.stdin.read(), crypt.mksalt(crypt.METHOD_BLOWFISH)))")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {PYTHON_BIN} to hash the htpasswd password: {e}"));
    child.stdin.take().expect("python stdin").write_all(password.as_bytes()).expect("write the password");
    let output = child.wait_with_output().expect("wait for python");
    let hash = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert!(
        output.status.success() && hash.starts_with("$2"),
        "{PYTHON_BIN} made no bcrypt hash ({:?}): {hash} {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    hash
}

// ---------------------------------------------------------------------------------------------
// SHA-256 and gzip, by hand: the test crate has no hashing or compression dependency.
// ---------------------------------------------------------------------------------------------

const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
    0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
    0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
    0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
];

/// SHA-256 of `data`, lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// `data` gzip-compressed.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).expect("gzip");
    encoder.finish().expect("gzip")
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime")
}

#[test]
fn registry_pull_resolves_once_and_reports_missing() {
    let registry = Registry::start();
    let host = registry.host();
    let busybox_digest = registry.push_busybox("nimbus-test/busybox:1");
    let other_digest = registry.push_image(
        "nimbus-test/other:1",
        vec![("bin/hello".into(), b"#!/bin/sh\necho hello\n".to_vec(), 0o755)],
        json!({ "architecture": host_arch(), "os": "linux", "config": { "Entrypoint": ["/bin/hello"], "User": "65534" } }),
    );
    let data = tempfile::tempdir().expect("data dir");
    let store = ImageStore::open(data.path()).expect("open the store");
    let rt = runtime();

    // A pull: stored under its normalized reference with the pushed digest, unpacked.
    let reference = format!("{host}/nimbus-test/busybox:1");
    let image = rt.block_on(store.ensure(&reference)).expect("pull busybox");
    assert_eq!(image.digest, busybox_digest);
    assert_eq!(image.source, ImageSource::Pull);
    assert_eq!(image.references, vec![reference.clone()]);
    assert_eq!((image.os.as_str(), image.architecture.as_str()), ("linux", host_arch()));
    let root = store.rootfs(&image.digest).expect("root path");
    assert!(root.join("bin/busybox").is_file(), "the root holds bin/busybox");
    assert_eq!(std::fs::read_link(root.join("bin/sh")).expect("sh link"), Path::new("busybox"));
    let config = store.run_config(&image.digest).expect("run config");
    assert_eq!(config.cmd, vec!["sh".to_owned()]);
    assert_eq!(config.env, vec!["PATH=/bin:/usr/bin".to_owned()]);
    assert_eq!(config.working_dir.as_deref(), Some("/"));
    assert!(config.entrypoint.is_empty() && config.user.is_none());

    // Eight concurrent callers needing one fresh image: one stored image, one name, one root.
    let store_ref = &store;
    let other = format!("{host}/nimbus-test/other:1");
    let results = rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let store = store_ref.clone();
            let other = other.clone();
            tasks.spawn(async move { store.ensure(&other).await.map(|r| r.digest) });
        }
        tasks.join_all().await
    });
    for result in results {
        assert_eq!(result.expect("concurrent ensure"), other_digest);
    }
    let images = store.list().expect("list");
    assert_eq!(images.len(), 2, "{images:?}");
    let stored_other = images.iter().find(|i| i.digest == other_digest).expect("other stored");
    assert_eq!(stored_other.references, vec![other.clone()]);
    let other_config = store.run_config(&other_digest).expect("other config");
    assert_eq!((other_config.entrypoint, other_config.user.as_deref()), (vec!["/bin/hello".to_owned()], Some("65534")));
    assert!(other_config.cmd.is_empty() && other_config.working_dir.is_none());

    // Missing tag and missing repository: 404 sandbox.image_not_found.
    for missing in [format!("{host}/nimbus-test/busybox:nope"), format!("{host}/nimbus-test/absent:1")] {
        let error = rt.block_on(store.ensure(&missing)).expect_err("missing image");
        assert!(matches!(error, ImageError::NotFound { .. }), "{error:?}");
        let error = NimbusError::from(error);
        assert_eq!(
            (error.code.as_str(), error.http_status(), error.is_retryable()),
            ("sandbox.image_not_found", 404, false)
        );
        let detail = error.detail.expect("detail");
        assert_eq!(detail["reference"], missing.as_str());
        assert!(detail["reason"].as_str().is_some_and(|r| !r.is_empty()), "{detail}");
    }

    // Stored images resolve without the registry.
    drop(registry);
    let again = rt.block_on(store.ensure(&reference)).expect("resolved from the local store");
    assert_eq!(again.digest, busybox_digest);
    let by_digest = rt.block_on(store.ensure(&busybox_digest)).expect("by bare digest");
    assert_eq!(by_digest.digest, busybox_digest);

    // A registry that does not listen: 502 sandbox.image_pull_failed, retryable, no httpStatus.
    let unreachable_host = format!("127.0.0.1:{}", free_port());
    let unreachable = format!("{unreachable_host}/nimbus-test/busybox:1");
    let error = rt.block_on(store.ensure(&unreachable)).expect_err("nothing listens");
    assert!(
        matches!(
            error,
            ImageError::PullFailed {
                http_status: None,
                unreachable: Some(nimbus_sandbox::image::Unreachable::ConnectionRefused),
                ..
            }
        ),
        "{error:?}"
    );
    let error = NimbusError::from(error);
    assert_eq!(
        (error.code.as_str(), error.http_status(), error.is_retryable()),
        ("sandbox.image_pull_failed", 502, true)
    );
    let detail = error.detail.expect("detail");
    assert_eq!(detail["reference"], unreachable.as_str());
    assert_eq!(detail["registry"], unreachable_host.as_str());
    assert!(detail["reason"].as_str().is_some_and(|r| !r.is_empty()), "{detail}");
    assert!(detail.get("httpStatus").is_none(), "{detail}");
    assert_eq!(store.list().expect("list").len(), 2, "failed pulls store nothing");
}

#[test]
fn a_decompression_bomb_fails_its_pull_and_a_good_image_follows() {
    const MIB: u64 = 1024 * 1024;
    let registry = Registry::start();
    // 32 MiB of zeros behind a gzip blob of some KiB, against a layer limit of 4 MiB (room for
    // the busybox layer that follows).
    registry.push_layers("nimbus-test/bomb:1", vec![zeros_layer("bomb", 32 * MIB as usize)], busybox_config());
    let data = tempfile::tempdir().expect("data dir");
    let limits = UnpackLimits { layer_bytes: 4 * MIB, ..UnpackLimits::default() };
    let store = ImageStore::open(data.path()).expect("open the store").with_limits(limits);
    let rt = runtime();
    let reference = format!("{}/nimbus-test/bomb:1", registry.host());

    let error = rt.block_on(store.ensure(&reference)).expect_err("a bomb");
    let error = NimbusError::from(error);
    assert_eq!((error.code.as_str(), error.http_status(), error.is_retryable()), ("op.cap_exceeded", 400, false));
    let detail = error.detail.expect("detail");
    assert_eq!((detail["cap"].as_str(), detail["limit"].as_u64()), (Some("image_layer_bytes"), Some(4 * MIB)));
    assert!(detail["observed"].as_u64().is_some_and(|o| o > 32 * MIB), "{detail}");
    assert!(store.list().expect("list").is_empty(), "nothing is recorded");
    assert_no_image_files_left(data.path());

    // The same reference, now a good image: the next pull stores it.
    let digest = registry.push_busybox("nimbus-test/bomb:1");
    let image = rt.block_on(store.ensure(&reference)).expect("a good image");
    assert_eq!((image.digest.as_str(), image.references.clone()), (digest.as_str(), vec![reference]));
    assert!(store.rootfs(&digest).expect("root").join("bin/busybox").is_file());
}

#[test]
fn a_layer_bomb_fails_sandbox_creation_with_its_limit_and_leaves_nothing() {
    const TIB: u64 = 1 << 40;
    let registry = Registry::start();
    // One tar header that unpacks to a 1 TiB file, after an ordinary layer.
    let config = json!({ "architecture": host_arch(), "os": "linux" });
    let layers = vec![zeros_layer("bin/zeros", 4096), sparse_layer("bin/hole", TIB)];
    registry.push_layers("nimbus-test/bomb:1", layers, config.clone());
    let server = Server::start();
    server.create_tenant("bombs");
    let reference = format!("{}/nimbus-test/bomb:1", registry.host());
    let body = json!({ "spec": { "root": { "kind": "oci_image", "source": { "kind": "reference", "reference": reference } } } });

    let refused = server.post_json("/api/tenants/bombs/sandboxes", &body);
    refused.expect_status(400);
    assert_eq!(refused.code(), "op.cap_exceeded");
    let detail = refused.detail();
    assert_eq!(detail["cap"], "image_layer_bytes");
    assert_eq!(detail["limit"], MAX_IMAGE_LAYER_EXPANDED_BYTES);
    assert!(detail["observed"].as_u64().is_some_and(|o| o > TIB), "{detail}");
    assert_eq!(server.get("/api/images").json["items"], json!([]), "no image is recorded");
    assert_eq!(server.get("/api/tenants/bombs/sandboxes").json["items"], json!([]), "no sandbox is left");
    assert_no_image_files_left(&server.dirs().data());

    // A good image under the same reference is pulled by the next create, which then fails only
    // because the image names no command (no container starts).
    let digest = registry.push_image("nimbus-test/bomb:1", vec![("bin/hello".into(), b"hi".to_vec(), 0o755)], config);
    let pulled = server.post_json("/api/tenants/bombs/sandboxes", &body);
    pulled.expect_status(400);
    assert_eq!((pulled.code(), &pulled.detail()["field"]), ("op.invalid_input", &json!("spec.process.argv")));
    let images = server.get("/api/images").json["items"].clone();
    assert_eq!((&images[0]["digest"], &images[0]["references"]), (&json!(digest), &json!([reference])));
    assert!(server.dirs().data().join("images/rootfs").join(&digest[7..]).join("bin/hello").is_file());
}
