//! `nimbus image import|pull|list|rm|build-browser`. When a running server holds the data
//! directory's lock, the commands go through its `/api/images` routes; otherwise they take the
//! lock themselves and work on the store directly. `build-browser` is in `browser_image.rs`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use nimbus_core::NimbusError;
use nimbus_core::limits::DEFAULT_DATA_DIR;
use nimbus_sandbox::image::{ImageRecord, ImageStore};
use nimbus_server::StartError;
use nimbus_server::serve::lock_data_dir;
use nimbus_server::wire::{image_in_use, image_json};
use serde_json::{Value, json};

use crate::client::{self, Live};
use crate::{EXIT_NO_SERVER, Failure};

/// Where the image store is.
#[derive(Args)]
pub struct StoreArgs {
    /// Data directory of the store.
    #[arg(long, env = "NIMBUS_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// URL of the server that owns the data directory (else the discovery file).
    #[arg(long, env = "NIMBUS_ENDPOINT")]
    url: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// The image subcommands.
#[derive(Subcommand)]
pub enum ImageCommand {
    /// Import an OCI-layout or docker-archive tar (gzip allowed); `-` reads stdin.
    Import {
        /// The archive, or `-` for stdin.
        file: String,
        /// Name for images the archive leaves unnamed.
        #[arg(long)]
        reference: Option<String>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Pull an image from its registry into the store (kept as it is when already stored).
    Pull {
        /// The image reference (`registry/name:tag`, `name@sha256:…`).
        reference: String,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List stored images.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Remove an image by reference or `sha256:` digest.
    Rm {
        /// Reference or digest.
        reference: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Build the browser image (Debian's Chromium, with mmdebstrap) and import it; print its
    /// reference. Kept as it is when already stored; a cached build is imported.
    BuildBrowser(crate::browser_image::BuildBrowserArgs),
}

impl ImageCommand {
    /// Whether `--json` was given.
    pub fn json(&self) -> bool {
        match self {
            ImageCommand::Import { store, .. }
            | ImageCommand::Pull { store, .. }
            | ImageCommand::List { store }
            | ImageCommand::Rm { store, .. } => store.json,
            ImageCommand::BuildBrowser(args) => args.store.json,
        }
    }
}

/// Where the command works: through the server, or on the store under its lock.
enum Target {
    Live(Live),
    /// The store under the data directory's lock, with the number of recorded sandboxes that
    /// use each image digest (they may run without a server).
    Offline {
        store: ImageStore,
        users: BTreeMap<String, usize>,
        _lock: File,
    },
}

fn target(args: &StoreArgs) -> Result<Target, Failure> {
    if let Some(url) = &args.url {
        return Live::connect(url.clone()).map(Target::Live);
    }
    match lock_data_dir(&args.data_dir) {
        Ok(lock) => {
            let store = ImageStore::open(&args.data_dir).map_err(|e| Failure::from(NimbusError::from(e)))?;
            let users = nimbus_compute::sandbox::stored_image_users(&args.data_dir).map_err(Failure::from)?;
            Ok(Target::Offline { store, users, _lock: lock })
        }
        Err(StartError::DataDirLocked(dir)) => match client::discover(None) {
            Some(url) => Live::connect(url).map(Target::Live),
            None => Err(Failure::with(
                EXIT_NO_SERVER,
                NimbusError::new(
                    nimbus_core::ErrorCode::ServiceUnavailable,
                    format!("{} is locked by a server this command cannot find; pass --url", dir.display()),
                    None,
                ),
            )),
        },
        Err(other) => Err(Failure::failed(other.to_string())),
    }
}

/// The progress line of long image operations: `done / total  rate` on stderr, redrawn at
/// most every 100 ms, drawn only when stderr is a terminal and neither `--json` nor `--quiet`
/// was given.
struct Bar {
    started: Instant,
    drawn: Instant,
    visible: bool,
}

impl Bar {
    fn new(quiet: bool, json: bool) -> Self {
        let now = Instant::now();
        Bar { started: now, drawn: now, visible: std::io::stderr().is_terminal() && !quiet && !json }
    }

    /// Redraws the line (at once when `last`, which also ends it).
    fn draw(&mut self, done: u64, total: Option<u64>, last: bool) {
        if !self.visible || !(last || self.drawn.elapsed() >= Duration::from_millis(100)) {
            return;
        }
        self.drawn = Instant::now();
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let rate = mib(done) / self.started.elapsed().as_secs_f64().max(0.001);
        let total = total.map_or(String::new(), |t| format!(" / {:.1} MiB", mib(t)));
        eprint!("\r{:.1} MiB{total}  {rate:.1} MiB/s ", mib(done));
        if last {
            eprintln!();
        }
        let _ = std::io::stderr().flush();
    }
}

/// Counts bytes read and draws them on a [`Bar`].
pub(crate) struct Progress<R> {
    inner: R,
    done: u64,
    total: Option<u64>,
    bar: Bar,
}

impl<R> Progress<R> {
    /// Reads `inner` (of `total` bytes, when known), drawing a bar unless `quiet` or `json`.
    pub(crate) fn new(inner: R, total: Option<u64>, quiet: bool, json: bool) -> Self {
        Progress { inner, done: 0, total, bar: Bar::new(quiet, json) }
    }
}

impl<R: Read> Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        self.bar.draw(self.done, self.total, n == 0);
        Ok(n)
    }
}

fn print_images(images: &[Value], json: bool, key: &str) {
    if json {
        println!("{}", json!({ key: images }));
        return;
    }
    for image in images {
        let digest = image["digest"].as_str().unwrap_or_default();
        let names: Vec<&str> = image["references"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        println!("{}  {digest}", if names.is_empty() { "<none>".to_owned() } else { names.join(",") });
    }
}

fn print_table(images: &[Value]) {
    println!("{:<48} {:<12} {:>10} {:<7} USED BY", "REFERENCE", "DIGEST", "SIZE", "SOURCE");
    for image in images {
        let digest = image["digest"].as_str().unwrap_or_default();
        let short = digest.strip_prefix("sha256:").unwrap_or(digest).chars().take(12).collect::<String>();
        let size = image["sizeBytes"].as_u64().unwrap_or(0) as f64 / (1024.0 * 1024.0);
        let names: Vec<&str> = image["references"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        let source = image["source"].as_str().unwrap_or_default();
        let used = image["usedBy"].as_u64().unwrap_or(0);
        for name in if names.is_empty() { vec!["<none>"] } else { names } {
            println!("{name:<48} {short:<12} {:>8.1}MB {source:<7} {used}", size);
        }
    }
}

/// Runs an image subcommand.
pub fn run(command: ImageCommand) -> Result<(), Failure> {
    match command {
        ImageCommand::Import { file, reference, quiet, store } => {
            let (reader, total): (Box<dyn Read>, Option<u64>) = if file == "-" {
                (Box::new(std::io::stdin().lock()), None)
            } else {
                let opened = File::open(&file).map_err(|e| Failure::failed(format!("cannot open {file}: {e}")))?;
                let total = opened.metadata().ok().map(|m| m.len());
                (Box::new(opened), total)
            };
            let mut progress = Progress::new(reader, total, quiet, store.json);
            let images = import(&store, &mut progress, reference.as_deref())?;
            print_images(&images, store.json, "images");
        }
        ImageCommand::Pull { reference, quiet, store } => {
            let image = pull(&reference, Bar::new(quiet, store.json), &store)?;
            if store.json {
                println!("{image}");
            } else {
                print_images(&[image], false, "");
            }
        }
        ImageCommand::List { store } => {
            let images = list(&store)?;
            if store.json {
                print_images(&images, true, "items");
            } else {
                print_table(&images);
            }
        }
        ImageCommand::Rm { reference, store } => {
            match target(&store)? {
                Target::Live(live) => {
                    live.call("DELETE", &format!("/api/images?reference={}", encode(&reference)), None)?;
                }
                Target::Offline { store: images, users, .. } => {
                    let image = images.resolve(&reference).map_err(|e| Failure::from(NimbusError::from(e)))?;
                    if let Some(&count) = users.get(&image.digest) {
                        return Err(Failure::from(image_in_use(&reference, count)));
                    }
                    images.remove(&reference).map_err(|e| Failure::from(NimbusError::from(e)))?;
                }
            }
            if store.json {
                println!("{}", json!({ "removed": reference }));
            } else {
                println!("removed {reference}");
            }
        }
        ImageCommand::BuildBrowser(args) => crate::browser_image::run(args)?,
    }
    Ok(())
}

/// Imports the archive `reader` reads (through the server, else on the store); the imported
/// images as the API renders them.
pub(crate) fn import(store: &StoreArgs, reader: &mut dyn Read, reference: Option<&str>) -> Result<Vec<Value>, Failure> {
    Ok(match target(store)? {
        Target::Live(live) => {
            let path = match reference {
                Some(r) => format!("/api/images/import?reference={}", encode(r)),
                None => "/api/images/import".to_owned(),
            };
            let answer = live.call("POST", &path, Some(("application/x-tar", reader)))?;
            answer["images"].as_array().cloned().unwrap_or_default()
        }
        Target::Offline { store: images, users, .. } => images
            .import(reader, reference)
            .map_err(|e| Failure::from(NimbusError::from(e)))?
            .iter()
            .map(|i| image_json(i, users.get(&i.digest).copied().unwrap_or(0)))
            .collect(),
    })
}

/// Every stored image (through the server, else on the store), as the API renders them.
pub(crate) fn list(store: &StoreArgs) -> Result<Vec<Value>, Failure> {
    Ok(match target(store)? {
        Target::Live(live) => live.call("GET", "/api/images", None)?["items"].as_array().cloned().unwrap_or_default(),
        Target::Offline { store: images, users, .. } => images
            .list()
            .map_err(|e| Failure::from(NimbusError::from(e)))?
            .iter()
            .map(|i| image_json(i, users.get(&i.digest).copied().unwrap_or(0)))
            .collect(),
    })
}

/// `pull`: through the server's streamed `POST /api/images/pull` (its progress events drawn on
/// `bar`), else on the store itself; the stored image.
fn pull(reference: &str, mut bar: Bar, store: &StoreArgs) -> Result<Value, Failure> {
    let mut last = None;
    let mut draw = |done: u64, total: u64| {
        bar.draw(done, (total > 0).then_some(total), false);
        last = Some((done, total));
    };
    let image = match target(store)? {
        Target::Live(live) => {
            let events = live.stream_json("POST", "/api/images/pull", &json!({ "reference": reference }))?;
            let mut ending = None;
            for line in events.lines() {
                let line = line.map_err(|e| Failure::failed(format!("the pull's progress stream broke: {e}")))?;
                let event: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
                match event["event"].as_str() {
                    Some("progress") => {
                        draw(event["bytes"].as_u64().unwrap_or(0), event["totalBytes"].as_u64().unwrap_or(0))
                    }
                    Some("done" | "error") => ending = Some(event),
                    _ => {}
                }
            }
            match ending {
                Some(done) if done["event"] == "done" => done["image"].clone(),
                Some(error) => return Err(client::envelope_failure(json!({ "error": error["error"] }))),
                None => return Err(Failure::failed("the pull's progress stream ended without its outcome")),
            }
        }
        Target::Offline { store: images, users, .. } => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Failure::failed(format!("cannot start the pull: {e}")))?;
            let image: ImageRecord = runtime
                .block_on(images.ensure_reporting(reference, |p| draw(p.bytes, p.total_bytes)))
                .map_err(|e| Failure::from(NimbusError::from(e)))?;
            image_json(&image, users.get(&image.digest).copied().unwrap_or(0))
        }
    };
    if let Some((done, total)) = last {
        bar.draw(done, (total > 0).then_some(total), true);
    }
    Ok(image)
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
