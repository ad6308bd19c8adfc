//! `nimbus image build-browser`: the browser image of `docs/browser.md` ("The browser image").
//!
//! `mmdebstrap` installs Debian's `chromium` and fonts from the Debian archive and writes the root
//! file system as a tar on its stdout, which streams straight into the one layer of an OCI image
//! layout archive in the cache directory (`browser-<suite>-<recipe>.oci.tar`, written under a
//! temporary name and renamed once whole); the archive is then imported like `nimbus image import`
//! does, through the server that owns the data directory, else on the store under its lock.
//!
//! Idempotent: an image already stored under [`BROWSER_IMAGE_REFERENCE`] is kept and nothing is
//! built; a cached archive is imported without building; `--rebuild` builds again. Concurrent runs
//! on one cache directory build once (a lock file beside the archive).

use std::collections::{BTreeMap, VecDeque};
use std::ffi::OsString;
use std::fs::{self, File, TryLockError};
use std::io::{BufRead, BufReader, BufWriter, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use clap::Args;
use nimbus_core::limits::BROWSER_IMAGE_REFERENCE;
use nimbus_core::{ErrorCode, NimbusError};
use nimbus_sandbox::image::{ImageError, LayoutImage, LayoutWriter, Reference};
use serde_json::{Value, json};

use crate::Failure;
use crate::image::{Progress, StoreArgs, import, list};

/// The packages installed over the `apt` variant's base (the essential packages and apt).
const PACKAGES: &str = "chromium,fonts-liberation,ca-certificates";
/// `config.Env` of the image: Debian's default search path.
const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Where dpkg records what is installed, relative to the root.
const DPKG_STATUS: &str = "var/lib/dpkg/status";
/// The image label recording the exact `chromium` package version the image holds.
const CHROMIUM_VERSION_LABEL: &str = "io.nimbus.browser.chromium-version";
/// The image label recording the Debian suite.
const SUITE_LABEL: &str = "io.nimbus.browser.suite";
/// The image label recording the recipe revision.
const RECIPE_LABEL: &str = "io.nimbus.browser.recipe";
/// Lines of mmdebstrap's output a `--quiet` build keeps to explain its failure.
const FAILURE_TAIL_LINES: usize = 20;
/// Read and write buffers of the archive copy: big enough that 900 MB are a few thousand
/// system calls.
const COPY_BUFFER_BYTES: usize = 1024 * 1024;

/// `nimbus image build-browser`.
#[derive(Args)]
pub struct BuildBrowserArgs {
    /// Build again (and import the new build) even when the store or the cache holds the image.
    #[arg(long)]
    rebuild: bool,
    /// Print no progress (mmdebstrap's, the import's) on stderr.
    #[arg(long)]
    quiet: bool,
    /// Where the built archive is kept for later imports (default `$XDG_CACHE_HOME/nimbus`, else
    /// `$HOME/.cache/nimbus`).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// The recipe [`BROWSER_IMAGE_REFERENCE`] names: its tag is `<suite>-<revision>`.
struct Recipe {
    /// The reference as the store records it (`docker.io/nimbus/browser:bookworm-1`).
    normalized: String,
    /// The tag, `bookworm-1`.
    tag: String,
    /// The Debian suite, `bookworm`.
    suite: String,
    /// The recipe revision, `1`.
    revision: String,
}

impl Recipe {
    fn current() -> Result<Self, Failure> {
        let invalid = || Failure::failed(format!("{BROWSER_IMAGE_REFERENCE} is not a <name>:<suite>-<revision>"));
        let reference = Reference::parse(BROWSER_IMAGE_REFERENCE).map_err(|_| invalid())?;
        let tag = reference.tag.clone().ok_or_else(invalid)?;
        let (suite, revision) = tag.rsplit_once('-').ok_or_else(invalid)?;
        Ok(Recipe {
            normalized: reference.to_string(),
            suite: suite.to_owned(),
            revision: revision.to_owned(),
            tag: tag.clone(),
        })
    }

    /// The cached archive's file name.
    fn archive_name(&self) -> String {
        format!("browser-{}.oci.tar", self.tag)
    }
}

/// Runs `nimbus image build-browser`.
pub fn run(args: BuildBrowserArgs) -> Result<(), Failure> {
    let recipe = Recipe::current()?;
    let say = |message: &str| {
        if !args.quiet {
            eprintln!("{message}");
        }
    };
    if !args.rebuild
        && let Some(digest) = stored_digest(&args.store, &recipe)?
    {
        return report(&args.store, &digest, false);
    }
    let cache = cache_dir(args.cache_dir.clone(), |name| std::env::var_os(name))?;
    fs::create_dir_all(&cache).map_err(|e| Failure::failed(format!("cannot create {}: {e}", cache.display())))?;
    let archive = cache.join(recipe.archive_name());
    let built = {
        let _lock = lock(&cache, &recipe, &say)?;
        // Another run may have built it while this one waited for the lock.
        if args.rebuild || !archive.is_file() {
            say(&format!(
                "building {BROWSER_IMAGE_REFERENCE} from Debian {} with mmdebstrap (about a minute, ~900 MB)",
                recipe.suite
            ));
            build(&archive, &recipe, args.quiet)?;
            true
        } else {
            false
        }
    };
    say(&format!("importing {}", archive.display()));
    let file = File::open(&archive).map_err(|e| Failure::failed(format!("cannot open {}: {e}", archive.display())))?;
    let total = file.metadata().ok().map(|m| m.len());
    let mut progress =
        Progress::new(BufReader::with_capacity(COPY_BUFFER_BYTES, file), total, args.quiet, args.store.json);
    let images = import(&args.store, &mut progress, None)?;
    let digest = digest_named(&images, &recipe).ok_or_else(|| {
        Failure::failed(format!(
            "{} holds no image named {BROWSER_IMAGE_REFERENCE}; build it again with --rebuild",
            archive.display()
        ))
    })?;
    report(&args.store, &digest, built)
}

/// Prints the reference (with `--json`, `{"reference", "digest", "built"}`).
fn report(store: &StoreArgs, digest: &str, built: bool) -> Result<(), Failure> {
    if store.json {
        println!("{}", json!({ "reference": BROWSER_IMAGE_REFERENCE, "digest": digest, "built": built }));
    } else {
        println!("{BROWSER_IMAGE_REFERENCE}");
    }
    Ok(())
}

/// The digest of the stored image named by the recipe's reference, if any.
fn stored_digest(store: &StoreArgs, recipe: &Recipe) -> Result<Option<String>, Failure> {
    Ok(digest_named(&list(store)?, recipe))
}

/// The digest of the image (as the API renders them) named by the recipe's reference.
fn digest_named(images: &[Value], recipe: &Recipe) -> Option<String> {
    images
        .iter()
        .find(|image| image["references"].as_array().into_iter().flatten().any(|r| r == recipe.normalized.as_str()))
        .and_then(|image| image["digest"].as_str())
        .map(str::to_owned)
}

/// `--cache-dir`, else `$XDG_CACHE_HOME/nimbus`, else `$HOME/.cache/nimbus` (`env` reads the
/// environment; a relative value is ignored, as the XDG specification says).
fn cache_dir(flag: Option<PathBuf>, env: impl Fn(&str) -> Option<OsString>) -> Result<PathBuf, Failure> {
    let absolute = |name: &str| env(name).map(PathBuf::from).filter(|p| p.is_absolute());
    flag.or_else(|| absolute("XDG_CACHE_HOME").map(|dir| dir.join("nimbus")))
        .or_else(|| absolute("HOME").map(|home| home.join(".cache/nimbus")))
        .ok_or_else(|| Failure::failed("no cache directory: set XDG_CACHE_HOME or HOME, or pass --cache-dir"))
}

/// Takes the cache's lock for this recipe (waiting for another build to end), and removes what a
/// build interrupted before it left: only the lock's holder writes temporary archives.
fn lock(cache: &Path, recipe: &Recipe, say: &dyn Fn(&str)) -> Result<File, Failure> {
    let path = cache.join(format!("browser-{}.lock", recipe.tag));
    let failed = |e: std::io::Error| Failure::failed(format!("cannot lock {}: {e}", path.display()));
    let file = File::options().create(true).truncate(false).write(true).open(&path).map_err(failed)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            say(&format!("waiting for another build of {BROWSER_IMAGE_REFERENCE} (lock {})", path.display()));
            file.lock().map_err(failed)?;
        }
        Err(TryLockError::Error(e)) => return Err(failed(e)),
    }
    let stale = format!(".{}.", recipe.archive_name());
    for entry in fs::read_dir(cache).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().starts_with(&stale) {
            let _ = fs::remove_file(entry.path());
        }
    }
    Ok(file)
}

/// Builds the archive: mmdebstrap's root tar streamed into a temporary archive beside
/// `archive`, renamed over it once whole and on disk.
fn build(archive: &Path, recipe: &Recipe, quiet: bool) -> Result<(), Failure> {
    let name = recipe.archive_name();
    let temporary = archive.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let built = run_mmdebstrap(&temporary, recipe, quiet).and_then(|()| {
        fs::rename(&temporary, archive)
            .and_then(|()| File::open(archive.parent().unwrap_or(Path::new("."))).and_then(|dir| dir.sync_all()))
            .map_err(|e| Failure::failed(format!("cannot store {}: {e}", archive.display())))
    });
    if built.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    built
}

/// Runs mmdebstrap with the root tar on its stdout, written as an image layout to `temporary`.
/// Its progress goes to stderr, unless `quiet`: then its last lines are kept for the error.
fn run_mmdebstrap(temporary: &Path, recipe: &Recipe, quiet: bool) -> Result<(), Failure> {
    let mut child = Command::new("mmdebstrap")
        .args(["--variant=apt", &format!("--include={PACKAGES}"), &recipe.suite, "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(if quiet { Stdio::piped() } else { Stdio::inherit() })
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Failure::from(
                NimbusError::new(
                    ErrorCode::ServiceCapabilityUnavailable,
                    "building the browser image needs mmdebstrap, which is not installed: \
                 install it with `apt-get install mmdebstrap`",
                    Some(json!({ "capability": "image build-browser", "reason": "mmdebstrap is not installed" })),
                )
                .remedy(nimbus_core::remediation::mmdebstrap_missing()),
            ),
            _ => build_failed(format!("cannot start mmdebstrap: {e}")),
        })?;
    // Its output is read while the root streams in: a full stderr pipe would stop it.
    let tail = child.stderr.take().map(|stderr| std::thread::spawn(move || last_lines(stderr)));
    let written = match child.stdout.take() {
        Some(stdout) => write_archive(BufReader::with_capacity(COPY_BUFFER_BYTES, stdout), temporary, recipe),
        None => Err(Written::Failed(Failure::failed("mmdebstrap's output is not readable"))),
    };
    // mmdebstrap's stdout is closed now: one stopped midway by a failed write ends on its own.
    let status = child.wait().map_err(|e| build_failed(format!("cannot wait for mmdebstrap: {e}")))?;
    let tail = tail.and_then(|t| t.join().ok()).unwrap_or_default();
    match written {
        // Not mmdebstrap's fault (a full disk): it only stopped because its output did.
        Err(Written::Failed(failure)) => Err(failure),
        _ if !status.success() => {
            let output = if quiet { format!(": {}", tail.join(" | ")) } else { " (its output is above)".to_owned() };
            Err(build_failed(format!("mmdebstrap failed with {status}{output}")))
        }
        Err(Written::Invalid(reason)) => Err(build_failed(reason)),
        Ok(()) => Ok(()),
    }
}

/// Why writing the archive failed.
enum Written {
    /// What mmdebstrap produced is not the expected root (a truncated tar, no chromium).
    Invalid(String),
    /// The archive could not be written.
    Failed(Failure),
}

/// Writes the root tar `rootfs` as the one layer of an image layout archive at `path` (created,
/// synced), its config labelled with the chromium version the root's dpkg status records.
fn write_archive(rootfs: impl Read, path: &Path, recipe: &Recipe) -> Result<(), Written> {
    let failed = |e: std::io::Error| Written::Failed(Failure::failed(format!("cannot write {}: {e}", path.display())));
    let layout_error = |e: ImageError| match e {
        ImageError::Io { context, source } => {
            Written::Failed(Failure::failed(format!("{context} to {} failed: {source}", path.display())))
        }
        other => Written::Invalid(other.to_string()),
    };
    let file = File::create_new(path).map_err(failed)?;
    let mut writer = LayoutWriter::new(BufWriter::with_capacity(COPY_BUFFER_BYTES, file)).map_err(layout_error)?;
    let mut version = None;
    writer
        .add_layer(rootfs, |entry, content| {
            if entry == Path::new(DPKG_STATUS) {
                version = package_version(content, "chromium")?;
            }
            Ok(())
        })
        .map_err(layout_error)?;
    let version =
        version.ok_or_else(|| Written::Invalid(format!("the built root's {DPKG_STATUS} lists no chromium")))?;
    let image = LayoutImage {
        reference: BROWSER_IMAGE_REFERENCE.to_owned(),
        env: vec![PATH_ENV.to_owned()],
        labels: BTreeMap::from([
            (CHROMIUM_VERSION_LABEL.to_owned(), version),
            (SUITE_LABEL.to_owned(), recipe.suite.clone()),
            (RECIPE_LABEL.to_owned(), recipe.revision.clone()),
        ]),
    };
    let (out, _) = writer.finish(&image).map_err(layout_error)?;
    let file = out.into_inner().map_err(|e| failed(e.into_error()))?;
    file.sync_all().map_err(failed)
}

/// The `Version` of `package` in a dpkg status file (stanzas of `Field: value` lines separated
/// by blank lines), if it lists the package.
fn package_version(status: impl Read, package: &str) -> std::io::Result<Option<String>> {
    let mut reader = BufReader::new(status);
    let mut line = Vec::new();
    let mut in_package = false;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(None);
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end();
        if text.is_empty() {
            in_package = false;
        } else if let Some(name) = text.strip_prefix("Package:") {
            in_package = name.trim() == package;
        } else if in_package && let Some(version) = text.strip_prefix("Version:") {
            return Ok(Some(version.trim().to_owned()));
        }
    }
}

/// Reads a stream to its end; its last [`FAILURE_TAIL_LINES`] non-empty lines.
fn last_lines(stream: impl Read) -> Vec<String> {
    let mut tail = VecDeque::with_capacity(FAILURE_TAIL_LINES);
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
        let text = String::from_utf8_lossy(&line).trim().to_owned();
        line.clear();
        if text.is_empty() {
            continue;
        }
        if tail.len() == FAILURE_TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(text);
    }
    tail.into()
}

/// A failed build: the root could not be made from the Debian archive.
fn build_failed(reason: String) -> Failure {
    Failure::from(NimbusError::new(
        ErrorCode::SandboxImagePullFailed,
        format!("building image '{BROWSER_IMAGE_REFERENCE}' from the Debian archive failed: {reason}"),
        Some(json!({ "reference": BROWSER_IMAGE_REFERENCE, "registry": "the Debian archive", "reason": reason })),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recipe_comes_from_the_reference() {
        let Ok(recipe) = Recipe::current() else { panic!("{BROWSER_IMAGE_REFERENCE} names no recipe") };
        assert_eq!(recipe.normalized, format!("docker.io/{BROWSER_IMAGE_REFERENCE}"));
        assert_eq!(format!("{}-{}", recipe.suite, recipe.revision), recipe.tag);
        assert_eq!(recipe.archive_name(), format!("browser-{}.oci.tar", recipe.tag));
    }

    #[test]
    fn the_package_version_is_read_from_its_own_stanza() {
        let status = "Package: chromium-common\nVersion: 9\n\nPackage: libc6\nStatus: install ok installed\n\
                      Version: 2.36\n\nPackage: chromium\nStatus: install ok installed\nVersion: 156.0-1~deb12u1\n";
        assert_eq!(package_version(status.as_bytes(), "chromium").expect("read").as_deref(), Some("156.0-1~deb12u1"));
        assert_eq!(package_version(status.as_bytes(), "libc6").expect("read").as_deref(), Some("2.36"));
        assert_eq!(package_version(status.as_bytes(), "bash").expect("read"), None);
    }

    #[test]
    fn a_quiet_failure_keeps_the_last_lines() {
        let output: String = (1..=30).map(|i| format!("line {i}\n\n")).collect();
        let tail = last_lines(output.as_bytes());
        assert_eq!(tail.len(), FAILURE_TAIL_LINES);
        assert_eq!((tail[0].as_str(), tail[FAILURE_TAIL_LINES - 1].as_str()), ("line 11", "line 30"));
    }

    #[test]
    fn the_cache_is_the_flag_else_xdg_else_home() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| OsString::from(v))
        };
        let all = env(&[("XDG_CACHE_HOME", "/xdg"), ("HOME", "/home/u")]);
        let dir = |flag: Option<&str>, env| cache_dir(flag.map(PathBuf::from), env).ok();
        assert_eq!(dir(Some("/flag"), all), Some(PathBuf::from("/flag")));
        assert_eq!(dir(None, all), Some(PathBuf::from("/xdg/nimbus")));
        let relative = env(&[("XDG_CACHE_HOME", "xdg"), ("HOME", "/home/u")]);
        assert_eq!(dir(None, relative), Some(PathBuf::from("/home/u/.cache/nimbus")));
        assert!(dir(None, env(&[])).is_none());
    }
}
