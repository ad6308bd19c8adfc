//! Wiring of the sandboxes' egress proxy (`nimbus-egress`): its CA, the operator's policy and
//! upstream roots read at start, and the [`Directory`] through which it asks the sandbox and
//! secret registries about each connection.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use nimbus_compute::sandbox::Sandboxes;
use nimbus_compute::secrets::Secrets;
use nimbus_core::limits::SANDBOX_RETENTION_SWEEP_MS;
use nimbus_egress::ca::EgressCa;
use nimbus_egress::proxy::{Directory, Proxy, Settings};
use nimbus_egress::rules::{Ceiling, EgressRules};
use tokio::task::JoinHandle;

use crate::serve::{EgressOptions, StartError};

/// What the egress proxy is made of, read before the sandboxes open (they need the CA).
pub struct Prepared {
    /// The server's egress CA.
    pub ca: EgressCa,
    /// The operator's ceiling.
    pub ceiling: Option<Ceiling>,
    settings: Settings,
}

/// Opens (or makes) the CA in `<data-dir>/egress-ca/`, reads the policy file and the roots.
pub async fn prepare(data_dir: &Path, options: &EgressOptions) -> Result<Prepared, StartError> {
    let (data_dir, options) = (data_dir.to_owned(), options.clone());
    tokio::task::spawn_blocking(move || {
        let ca = EgressCa::open(&data_dir.join("egress-ca"))?;
        let ceiling = options.policy.as_deref().map(Ceiling::load).transpose()?;
        let upstream_roots = nimbus_egress::upstream_roots(options.upstream_ca.as_deref())?;
        let settings = Settings { allow_internal: options.allow_internal, ceiling: ceiling.clone(), upstream_roots };
        Ok(Prepared { ca, ceiling, settings })
    })
    .await
    .map_err(|e| StartError::Egress(e.to_string()))?
    .map_err(StartError::Egress)
}

/// Starts the proxy on the hand-off socket the container backend's sandboxes connect to.
pub fn start(
    prepared: Prepared,
    sandboxes: Arc<Sandboxes>,
    secrets: Arc<Secrets>,
    socket: &Path,
) -> Result<(Arc<Proxy>, JoinHandle<()>), StartError> {
    let directory = Arc::new(Registries { sandboxes: sandboxes.clone(), secrets });
    let proxy = Proxy::new(prepared.settings, prepared.ca, directory).map_err(StartError::Egress)?;
    let listener = Proxy::bind(socket).map_err(|e| StartError::Egress(format!("bind {}: {e}", socket.display())))?;
    let serving = proxy.clone().serve(listener);
    let logs = proxy.logs().clone();
    let task = tokio::spawn(async move {
        // The decision logs of sandboxes removed by retention or with their tenant go too.
        let pruning = async {
            loop {
                tokio::time::sleep(Duration::from_millis(SANDBOX_RETENTION_SWEEP_MS)).await;
                logs.retain(|id| sandboxes.known(id));
            }
        };
        tokio::select! {
            () = serving => {}
            () = pruning => {}
        }
    });
    Ok((proxy, task))
}

/// The registries, as the proxy's [`Directory`].
struct Registries {
    sandboxes: Arc<Sandboxes>,
    secrets: Arc<Secrets>,
}

impl Directory for Registries {
    fn rules(&self, sandbox: &str) -> Option<(String, EgressRules)> {
        self.sandboxes.egress_rules(sandbox)
    }

    fn secret(&self, tenant: &str, name: &str) -> Option<String> {
        self.secrets.value(tenant, name)
    }

    fn connect_inside(&self, tenant: &str, sandbox: &str, port: u16) -> Option<std::net::TcpStream> {
        let (record, backend) = self.sandboxes.runtime(tenant, sandbox).ok()?;
        if record.private_ports.contains(&port) {
            return None;
        }
        backend.connect(sandbox, port).ok()
    }
}
