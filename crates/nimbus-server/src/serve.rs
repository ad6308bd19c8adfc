//! Start-up and shutdown of the server process.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use nimbus_compute::sandbox::{Backends, NetworkPolicy, Sandboxes};
use nimbus_compute::secrets::Secrets;
use nimbus_compute::service::Services;
use nimbus_compute::session::Sessions;
use nimbus_core::NimbusError;
use nimbus_core::limits::{PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, SANDBOX_STOP_GRACE_MS, SHUTDOWN_GRACE_MS};
use nimbus_core::time::{now_ms, rfc3339_ms};
use nimbus_engine::Engine;
use nimbus_sandbox::backend::Backend;
use nimbus_sandbox::image::ImageStore;
use nimbus_sandbox::krun::KrunBackend;
use nimbus_sandbox::runtime::ContainerBackend;
use nimbus_sandbox::runtime::userns::IdPool;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::auth::AuthState;
use crate::auth::token_file::{self, TokenFileError};
use crate::discovery::{self, ServerRecord};
use crate::routes::router;
use crate::state::AppState;

/// Resolved settings of `nimbus start`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Bind address.
    pub host: String,
    /// Listen port (0 picks a free one).
    pub port: u16,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Admin token file.
    pub token_path: PathBuf,
    /// The operator's service catalog (`--service-catalog`): read-only service definitions.
    pub service_catalog: Option<PathBuf>,
    /// Function limits (`--function-*` flags).
    pub functions: nimbus_functions::Limits,
    /// Stop every sandbox at shutdown (`--stop-sandboxes-on-exit`); by default sandboxes
    /// outlive the server and the next one adopts them.
    pub stop_sandboxes_on_exit: bool,
    /// The host ids sandboxes' user namespaces map onto (`--userns-pool`).
    pub userns_pool: IdPool,
    /// The egress proxy's settings (`--egress-*`).
    pub egress: EgressOptions,
}

/// The operator's egress settings.
#[derive(Debug, Clone, Default)]
pub struct EgressOptions {
    /// Let allowed names resolve to internal addresses (`--egress-allow-internal`).
    pub allow_internal: bool,
    /// The ceiling file (`--egress-policy`).
    pub policy: Option<PathBuf>,
    /// Extra upstream roots, PEM (`--egress-upstream-ca`).
    pub upstream_ca: Option<PathBuf>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Another process holds the data directory.
    #[error("data directory {0} is in use by another nimbus process")]
    DataDirLocked(PathBuf),
    /// The data directory could not be prepared.
    #[error("cannot prepare data directory {path}: {source}")]
    DataDir {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The token file is unusable.
    #[error(transparent)]
    Token(#[from] TokenFileError),
    /// Storage could not be opened.
    #[error(transparent)]
    Storage(#[from] nimbus_engine::engine::OpenError),
    /// The image store could not be opened.
    #[error("cannot open the image store: {0}")]
    Images(#[from] nimbus_sandbox::image::ImageError),
    /// The sandbox registry could not be opened.
    #[error("cannot open the sandbox registry: {0}")]
    Sandboxes(nimbus_core::NimbusError),
    /// The service catalog file is unreadable or invalid.
    #[error("invalid service catalog {path}: {reason}")]
    ServiceCatalog {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the entry and field.
        reason: String,
    },
    /// The service registry could not be opened.
    #[error("cannot open the service registry: {0}")]
    Services(nimbus_core::NimbusError),
    /// The session registry could not be opened.
    #[error("cannot open the session registry: {0}")]
    Sessions(nimbus_core::NimbusError),
    /// The secret registry could not be opened.
    #[error("cannot open the secret registry: {0}")]
    Secrets(nimbus_core::NimbusError),
    /// The egress proxy could not be set up (its CA, policy file, upstream roots or socket).
    #[error("cannot set up the egress proxy: {0}")]
    Egress(String),
    /// The address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Creates the data directory with [`PRIVATE_DIR_MODE`] (missing parents with the usual mode),
/// or tightens an existing one that lets other users in. No process-wide umask: image roots and
/// files written into sandboxes keep their own modes.
fn make_data_dir_private(data_dir: &Path) -> std::io::Result<()> {
    if let Some(parent) = data_dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    match DirBuilder::new().mode(PRIVATE_DIR_MODE).create(data_dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let mode = std::fs::metadata(data_dir)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        std::fs::set_permissions(data_dir, Permissions::from_mode(PRIVATE_DIR_MODE))?;
        tracing::info!(dir = ?data_dir, from = format_args!("{mode:04o}"), "tightened the data directory's mode to 0700");
    }
    Ok(())
}

/// Takes the exclusive data-directory lock; held while the returned file lives. The server holds
/// it while it runs; offline CLI commands take it to work on the data directory directly.
pub fn lock_data_dir(data_dir: &Path) -> Result<File, StartError> {
    let io = |source| StartError::DataDir { path: data_dir.to_owned(), source };
    make_data_dir_private(data_dir).map_err(io)?;
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(PRIVATE_FILE_MODE)
        .open(data_dir.join(".lock"))
        .map_err(io)?;
    // One an older version created with the usual 0644.
    if file.metadata().map_err(io)?.permissions().mode() & 0o077 != 0 {
        file.set_permissions(Permissions::from_mode(PRIVATE_FILE_MODE)).map_err(io)?;
    }
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Err(StartError::DataDirLocked(data_dir.to_owned())),
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    file.set_len(0).map_err(io)?;
    writeln!(file, "{}", std::process::id()).map_err(io)?;
    Ok(file)
}

/// Waits for SIGINT or SIGTERM.
async fn signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}

/// Runs the server until SIGINT, SIGTERM or `POST /api/system/shutdown`, then shuts down
/// gracefully: stops accepting, lets in-flight requests finish (bounded), drains the writers and
/// removes the discovery file.
pub async fn run(config: ServerConfig) -> Result<(), StartError> {
    let _lock = lock_data_dir(&config.data_dir)?;
    let token = token_file::load_or_create(&config.token_path)?;
    let engine = Arc::new(Engine::open(&config.data_dir)?);
    let images = Arc::new(ImageStore::open(&config.data_dir)?);
    // Before the sandboxes: the egress proxy of the sandboxes re-adopted there reads secrets.
    let secrets = {
        let data_dir = config.data_dir.clone();
        tokio::task::spawn_blocking(move || Secrets::open(&data_dir))
            .await
            .map_err(|_| StartError::Secrets(NimbusError::internal()))?
            .map_err(StartError::Secrets)?
    };
    let egress = crate::egress::prepare(&config.data_dir, &config.egress).await?;
    let network = NetworkPolicy { ceiling: egress.ceiling.clone(), secrets: secrets.clone() };
    let (sandboxes, backend_status, egress_socket) =
        open_sandboxes(&config.data_dir, config.userns_pool, images.clone(), egress.ca.cert_pem().to_owned(), network)
            .await?;
    let (egress, egress_task) = crate::egress::start(egress, sandboxes.clone(), secrets.clone(), &egress_socket)?;
    let services = open_services(&config, sandboxes.clone()).await?;
    let sessions = {
        let (data_dir, sandboxes) = (config.data_dir.clone(), sandboxes.clone());
        tokio::task::spawn_blocking(move || Sessions::open(&data_dir, sandboxes))
            .await
            .map_err(|_| StartError::Sessions(NimbusError::internal()))?
            .map_err(StartError::Sessions)?
    };
    services.set_sessions(sessions.clone());
    let address = format!("{}:{}", config.host, config.port);
    let listener =
        TcpListener::bind(&address).await.map_err(|source| StartError::Bind { address: address.clone(), source })?;
    let local: SocketAddr =
        listener.local_addr().map_err(|source| StartError::Bind { address: address.clone(), source })?;

    // Before serving: interrupted jobs go back to pending, then the scheduler starts.
    let scheduler = nimbus_scheduler::Scheduler::new(engine.clone(), Arc::new(nimbus_scheduler::SystemClock));
    // Functions before the scheduler starts: due function targets need their runner.
    let functions = crate::functions::NimbusHost::start(engine.clone(), scheduler.clone(), config.functions.clone());
    scheduler.recover().await;
    scheduler.start();
    let shutdown = Arc::new(Notify::new());
    let auth = AuthState::new(config.token_path.clone(), token, local.port());
    let state = AppState {
        engine: engine.clone(),
        realtime: crate::routes::realtime_registry(engine.clone(), &functions),
        images,
        sandboxes: sandboxes.clone(),
        services: services.clone(),
        sessions: sessions.clone(),
        secrets,
        egress,
        auth,
        scheduler: scheduler.clone(),
        functions,
        shutdown: shutdown.clone(),
    };
    // Before serving: deletions a crash interrupted are finished, so nothing of a deleted
    // tenant resumes below or reaches a new tenant with its id.
    crate::tenant_removal::finish_interrupted(&state).await;
    let retention = tokio::spawn(sandboxes.clone().retain());
    // Before serving: services that were running resume (their probe loops, restart policies).
    services.resume().await;
    let session_sweeper = tokio::spawn(sessions.sweep());

    let discovery_path = discovery::path();
    if let Some(path) = &discovery_path {
        let record = ServerRecord {
            pid: std::process::id(),
            address: local.to_string(),
            started_at: rfc3339_ms(now_ms()),
            version: env!("CARGO_PKG_VERSION").into(),
            protocol_versions: vec!["nimbus.v2".into()],
        };
        if let Err(e) = discovery::write(path, &record) {
            tracing::warn!(path = ?path, error = %e, "cannot write the discovery file");
        }
    }
    if !local.ip().is_loopback() {
        eprintln!(
            "warning: listening on a non-loopback address; anyone who can reach it and holds the token has full access"
        );
    }
    eprintln!("nimbus {} listening on http://{local}", env!("CARGO_PKG_VERSION"));
    eprintln!("data directory: {}", config.data_dir.display());
    eprintln!("admin token file: {} (print it with `nimbus auth token`)", config.token_path.display());
    eprintln!("sandbox backend: {backend_status}");

    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let stop = async move {
        tokio::select! {
            _ = signal() => {}
            _ = shutdown.notified() => {}
        }
        eprintln!("shutting down");
        let _ = stopping_tx.send(());
        // A second signal exits at once.
        tokio::spawn(async {
            signal().await;
            std::process::exit(130);
        });
    };
    // Small JSON answers on keep-alive connections: send each at once instead of waiting on
    // Nagle's algorithm for the client's delayed ACK.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    let server = axum::serve(listener, router(state)).with_graceful_shutdown(stop);
    let grace = async {
        if stopping_rx.await.is_ok() {
            tokio::time::sleep(Duration::from_millis(SHUTDOWN_GRACE_MS)).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = server => {
            if let Err(e) = result {
                tracing::error!(error = %e, "server error");
            }
        }
        _ = grace => tracing::warn!("in-flight requests did not finish in time; stopping anyway"),
    }
    retention.abort();
    services.shutdown();
    if config.stop_sandboxes_on_exit {
        eprintln!("stopping every sandbox (--stop-sandboxes-on-exit)");
        sandboxes.stop_all(Duration::from_millis(SANDBOX_STOP_GRACE_MS)).await;
    }
    session_sweeper.abort();
    egress_task.abort();
    scheduler.stop().await;
    engine.shutdown().await;
    if let Some(path) = &discovery_path {
        discovery::remove_own(path);
    }
    Ok(())
}

/// Opens the sandbox registry with its backends and re-adopts the sandboxes that outlived the
/// last server (before serving, as sandboxes.md §8 requires). Returns it with a one-line status
/// of the container backend for the start-up banner.
async fn open_sandboxes(
    data_dir: &Path,
    userns_pool: IdPool,
    images: Arc<ImageStore>,
    egress_ca_pem: String,
    network: NetworkPolicy,
) -> Result<(Arc<Sandboxes>, String, PathBuf), StartError> {
    let data_dir = data_dir.to_owned();
    tokio::task::spawn_blocking(move || {
        let supervisor = std::env::current_exe().map_err(|e| {
            tracing::error!(error = %e, "cannot find the nimbus executable for sandbox supervisors");
            StartError::Sandboxes(NimbusError::internal())
        })?;
        let container = ContainerBackend::new(data_dir.join("sandboxes"), supervisor, userns_pool)
            .map_err(StartError::Sandboxes)?
            .with_egress(egress_ca_pem);
        let egress_socket = container.egress_socket();
        let status = match container.availability() {
            Ok(()) => "container (available)".to_owned(),
            Err(reason) => format!("container unavailable: {reason} (sandbox routes answer 501)"),
        };
        let backends = Backends { container: Arc::new(container), krun: Arc::new(KrunBackend::new()) };
        let sandboxes = Sandboxes::open(&data_dir, images, backends, network).map_err(StartError::Sandboxes)?;
        Ok((sandboxes, status, egress_socket))
    })
    .await
    .map_err(|_| StartError::Sandboxes(NimbusError::internal()))?
}

/// Reads the operator's service catalog (if any) and opens the service registry with it. The
/// catalog is validated as on create; any error is a start-up failure naming the entry.
async fn open_services(config: &ServerConfig, sandboxes: Arc<Sandboxes>) -> Result<Arc<Services>, StartError> {
    let statics = match &config.service_catalog {
        None => Vec::new(),
        Some(path) => {
            let invalid = |reason: String| StartError::ServiceCatalog { path: path.clone(), reason };
            let bytes = tokio::fs::read(path).await.map_err(|e| invalid(e.to_string()))?;
            crate::service_wire::parse_catalog(&bytes).map_err(|e| invalid(e.message))?
        }
    };
    let data_dir = config.data_dir.clone();
    let health = Arc::new(crate::health_check::HttpHealthCheck::new());
    tokio::task::spawn_blocking(move || Services::open(&data_dir, sandboxes, health, statics))
        .await
        .map_err(|_| StartError::Services(NimbusError::internal()))?
        .map_err(StartError::Services)
}
