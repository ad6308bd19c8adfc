//! `nimbus image import|list|rm`. When a running server holds the data directory's lock, the
//! commands go through its `/api/images` routes; otherwise they take the lock themselves and
//! work on the store directly.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use nimbus_core::NimbusError;
use nimbus_core::limits::DEFAULT_DATA_DIR;
use nimbus_sandbox::image::ImageStore;
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
    json: bool,
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
}

impl ImageCommand {
    /// Whether `--json` was given.
    pub fn json(&self) -> bool {
        match self {
            ImageCommand::Import { store, .. } | ImageCommand::List { store } | ImageCommand::Rm { store, .. } => {
                store.json
            }
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

/// Counts bytes read and, on a terminal, draws `done / total, rate` on stderr.
struct Progress<R> {
    inner: R,
    done: u64,
    total: Option<u64>,
    started: Instant,
    drawn: Instant,
    visible: bool,
}

impl<R: Read> Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if self.visible && (n == 0 || self.drawn.elapsed() >= Duration::from_millis(100)) {
            self.drawn = Instant::now();
            let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
            let rate = mib(self.done) / self.started.elapsed().as_secs_f64().max(0.001);
            let total = self.total.map_or(String::new(), |t| format!(" / {:.1} MiB", mib(t)));
            eprint!("\r{:.1} MiB{total}  {rate:.1} MiB/s ", mib(self.done));
            if n == 0 {
                eprintln!();
            }
            let _ = std::io::stderr().flush();
        }
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
            let visible = std::io::stderr().is_terminal() && !quiet && !store.json;
            let now = Instant::now();
            let mut progress = Progress { inner: reader, done: 0, total, started: now, drawn: now, visible };
            let images = match target(&store)? {
                Target::Live(live) => {
                    let path = match &reference {
                        Some(r) => format!("/api/images/import?reference={}", encode(r)),
                        None => "/api/images/import".to_owned(),
                    };
                    let answer = live.call("POST", &path, Some(("application/x-tar", &mut progress)))?;
                    answer["images"].as_array().cloned().unwrap_or_default()
                }
                Target::Offline { store: images, users, .. } => images
                    .import(&mut progress, reference.as_deref())
                    .map_err(|e| Failure::from(NimbusError::from(e)))?
                    .iter()
                    .map(|i| image_json(i, users.get(&i.digest).copied().unwrap_or(0)))
                    .collect(),
            };
            print_images(&images, store.json, "images");
        }
        ImageCommand::List { store } => {
            let images = match target(&store)? {
                Target::Live(live) => {
                    live.call("GET", "/api/images", None)?["items"].as_array().cloned().unwrap_or_default()
                }
                Target::Offline { store: images, users, .. } => images
                    .list()
                    .map_err(|e| Failure::from(NimbusError::from(e)))?
                    .iter()
                    .map(|i| image_json(i, users.get(&i.digest).copied().unwrap_or(0)))
                    .collect(),
            };
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
    }
    Ok(())
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
