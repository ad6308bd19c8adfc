//! `nimbus image build-browser` (browser.md, "The browser image") end to end: the real mmdebstrap
//! build from the Debian archive, cached under the checkout's `target/` so that a checkout builds
//! once and every later test server only imports, then Chromium run from the image in a sandbox.
//! Runs as root, like the other sandbox tests.
//!
//! [`browser_image`] is the helper every test that needs the image uses.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use nimbus_core::limits::BROWSER_IMAGE_REFERENCE;
use serde_json::{Value, json};

use crate::harness::{CliOutput, Dirs};
use crate::sandboxes::{Fixture, id_of};

/// Where `build-browser` keeps the built archive for these tests: the checkout's `target/`,
/// shared by every test process and every run, so the ~1 minute build happens once.
pub fn cache_dir() -> PathBuf {
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).expect("the checkout holds the crate");
    checkout.join("target/nimbus-browser-cache")
}

/// The archive `build-browser` caches (`browser-<tag>.oci.tar`).
fn cached_archive() -> PathBuf {
    let (_, tag) = BROWSER_IMAGE_REFERENCE.rsplit_once(':').expect("the reference has a tag");
    cache_dir().join(format!("browser-{tag}.oci.tar"))
}

fn mmdebstrap_installed() -> bool {
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join("mmdebstrap").is_file()))
}

/// Runs `nimbus image build-browser` with the test cache on `dirs`' data directory (through the
/// server that owns it, if one runs). With `path`, that is the command's `PATH`: a directory
/// without mmdebstrap proves that the run builds nothing.
fn build_browser(dirs: &Dirs, extra: &[&str], path: Option<&Path>) -> CliOutput {
    let mut command = dirs.command();
    command.args(["image", "build-browser", "--cache-dir"]).arg(cache_dir()).arg("--data-dir").arg(dirs.data());
    if let Some(path) = path {
        command.env("PATH", path);
    }
    let output = command.args(extra).stdin(Stdio::null()).output().expect("run nimbus image build-browser");
    CliOutput {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The browser image in the store of `fx`'s server, by `nimbus image build-browser` (which builds
/// it only when the checkout's cache lacks it); its reference. A host that can build nothing (no
/// mmdebstrap, no cached build) fails the test loudly, as the suite does for every tool it needs:
/// it never skips, with or without `NIMBUS_REQUIRE_CONTAINERS`.
pub fn browser_image(fx: &Fixture) -> String {
    assert!(
        cached_archive().is_file() || mmdebstrap_installed(),
        "the browser image cannot be built: mmdebstrap is not installed (apt-get install mmdebstrap; \
         scripts/test installs it) and {} holds no build",
        cache_dir().display()
    );
    let out = build_browser(&fx.dirs, &[], None);
    assert_eq!(out.code, Some(0), "nimbus image build-browser failed: {out:?}");
    assert_eq!(out.stdout, format!("{BROWSER_IMAGE_REFERENCE}\n"), "stdout is exactly the reference");
    BROWSER_IMAGE_REFERENCE.to_owned()
}

/// The stored image `nimbus image list` shows under `reference` (normalized).
fn listed(dirs: &Dirs, reference: &str) -> Value {
    let data = dirs.data();
    let out = dirs.cli(&["image", "list", "--json", "--data-dir", &data.to_string_lossy()]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let items = out.json()["items"].as_array().cloned().unwrap_or_default();
    let named = |i: &&Value| i["references"].as_array().into_iter().flatten().any(|r| r == reference);
    items.iter().find(named).cloned().unwrap_or_else(|| panic!("`image list` lacks {reference}: {items:?}"))
}

#[test]
fn build_browser_stores_the_image_once_and_chromium_runs_from_it() {
    let fx = Fixture::start();
    let reference = browser_image(&fx);
    let normalized = format!("docker.io/{reference}");
    let image = listed(&fx.dirs, &normalized);
    let digest = image["digest"].as_str().expect("digest").to_owned();
    assert_eq!((image["source"].as_str(), image["os"].as_str()), (Some("import"), Some("linux")));

    // Again: the stored image is kept and nothing is built (mmdebstrap is not even on PATH).
    let no_mmdebstrap = fx.dirs.root();
    let again = build_browser(&fx.dirs, &["--json"], Some(&no_mmdebstrap));
    assert_eq!(again.code, Some(0), "{again:?}");
    assert_eq!(again.json(), json!({ "reference": reference, "digest": digest, "built": false }));
    let plain = build_browser(&fx.dirs, &["--quiet"], Some(&no_mmdebstrap));
    assert_eq!((plain.code, plain.stdout.as_str(), plain.stderr.as_str()), (Some(0), &*format!("{reference}\n"), ""));
    assert_eq!(listed(&fx.dirs, &normalized), image, "the stored image is unchanged");

    // Another data directory, with no server: the cached build is imported, not rebuilt.
    let other = Dirs::new();
    let cached = build_browser(&other, &["--json", "--quiet"], Some(&no_mmdebstrap));
    assert_eq!(cached.code, Some(0), "{cached:?}");
    assert_eq!(cached.json(), json!({ "reference": reference, "digest": digest, "built": false }));
    assert_eq!(listed(&other, &normalized)["digest"], digest.as_str());
    drop(other);

    // Chromium runs from the image.
    let id = id_of(&fx.create_from(&reference, &["chromium", "--version"], json!({})));
    let ended = fx.wait_stopped(&id);
    let (stdout, stderr) = (fx.output(&id, "stdout"), fx.output(&id, "stderr"));
    assert_eq!(ended["status"]["exitCode"], 0, "{ended}\nstdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.starts_with("Chromium "), "chromium --version printed {stdout:?} (stderr {stderr:?})");
    fx.delete(&id);
}
