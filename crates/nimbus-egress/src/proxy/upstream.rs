//! Deciding and connecting: a sandbox's rules and the ceiling say whether `host:port` may be
//! reached; the proxy resolves the name itself and connects to an address it accepts.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hyper::header::{HeaderName, HeaderValue};
use nimbus_core::limits::EGRESS_CONNECT_TIMEOUT_MS;
use tokio::net::TcpStream;

use super::Proxy;
use crate::address::is_internal;
use crate::log::Reason;
use crate::rules::AllowRule;
use crate::stream::{Meter, Metered};

/// A header the proxy adds for a credential rule. Its value is never logged or shown.
#[derive(Clone)]
pub struct Credential {
    /// The header.
    pub header: HeaderName,
    /// `prefix + secret value`, marked sensitive.
    pub value: HeaderValue,
    /// The secret's name (for the log).
    pub secret: String,
}

/// What a decision allowed.
pub struct Grant {
    /// The sandbox's tenant.
    pub tenant: String,
    /// The rule that allowed it; `None` for the sandbox's own loopback.
    pub rule: Option<AllowRule>,
    /// The header to add, for a credential host.
    pub credential: Option<Credential>,
}

impl Grant {
    /// Whether the target is the sandbox's own loopback (served inside it, never outside).
    pub fn inside(&self) -> bool {
        self.rule.is_none()
    }
}

/// Whether `host` names the sandbox itself as its `/etc/hosts` does: `localhost` (and its
/// subdomains), 127.0.0.1, ::1, and its host name (the first 63 characters of its id). Clients that ignore `NO_PROXY`
/// (busybox's wget) send requests for these to the proxy, which serves them inside the sandbox
/// when no allow rule names them.
fn names_the_sandbox(sandbox: &str, host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host == "127.0.0.1"
        || host == "::1"
        || host == sandbox.chars().take(63).collect::<String>().to_ascii_lowercase()
}

/// An upstream connection, counted.
pub struct Connected {
    /// The stream.
    pub stream: Metered<TcpStream>,
    /// The address it connected to.
    pub address: SocketAddr,
    /// Its byte counts.
    pub meter: Arc<Meter>,
}

impl Proxy {
    /// Whether `sandbox` may reach `host:port` (`host` normalized), and with which credential.
    /// The tenant comes back with a refusal too, when the sandbox is known.
    pub(super) fn decide(&self, sandbox: &str, host: &str, port: u16) -> Result<Grant, (Option<String>, Reason)> {
        let Some((tenant, rules)) = self.directory.rules(sandbox) else {
            return Err((None, Reason::NotAllowed));
        };
        let refuse = |reason| Err((Some(tenant.clone()), reason));
        let Some(rule) = rules.allowing(host, port) else {
            // Unless a rule sends it out, a name of the sandbox itself stays inside it.
            if names_the_sandbox(sandbox, host) {
                return Ok(Grant { tenant, rule: None, credential: None });
            }
            return refuse(Reason::NotAllowed);
        };
        if self.settings.ceiling.as_ref().is_some_and(|ceiling| !ceiling.permits(host, port)) {
            return refuse(Reason::Ceiling);
        }
        let credential = match rules.credential(host) {
            None => None,
            Some(rule) => {
                let value = self.directory.secret(&tenant, &rule.secret).and_then(|secret| {
                    HeaderValue::from_str(&format!("{}{secret}", rule.prefix.as_deref().unwrap_or(""))).ok()
                });
                let (Some(mut value), Ok(header)) = (value, HeaderName::from_bytes(rule.header.as_bytes())) else {
                    return refuse(Reason::SecretMissing);
                };
                value.set_sensitive(true);
                Some(Credential { header, value, secret: rule.secret.clone() })
            }
        };
        Ok(Grant { tenant: tenant.clone(), rule: Some(rule.clone()), credential })
    }

    /// Connects to what `grant` allowed: the sandbox's own `port` through its supervisor, or
    /// `host:port` outside.
    pub(super) async fn connect(
        &self,
        sandbox: &str,
        grant: &Grant,
        host: &str,
        port: u16,
    ) -> Result<Connected, Reason> {
        if !grant.inside() {
            return self.connect_outside(host, port).await;
        }
        let (directory, tenant, sandbox) = (self.directory.clone(), grant.tenant.clone(), sandbox.to_owned());
        let inside =
            tokio::task::spawn_blocking(move || directory.connect_inside(&tenant, &sandbox, port)).await.ok().flatten();
        let stream = inside
            .and_then(|s| s.set_nonblocking(true).ok().map(|()| s))
            .and_then(|s| TcpStream::from_std(s).ok())
            .ok_or(Reason::ConnectFailed)?;
        let meter = Arc::new(Meter::default());
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        Ok(Connected { stream: Metered::new(stream, meter.clone()), address, meter })
    }

    /// Resolves `host` (unless it is an address), keeps the addresses the operator lets
    /// sandboxes reach, and connects to the first that accepts, all within
    /// `EGRESS_CONNECT_TIMEOUT_MS`.
    async fn connect_outside(&self, host: &str, port: u16) -> Result<Connected, Reason> {
        let deadline = Duration::from_millis(EGRESS_CONNECT_TIMEOUT_MS);
        let attempt = async {
            let addresses: Vec<SocketAddr> = match host.parse::<IpAddr>() {
                Ok(ip) => vec![SocketAddr::new(ip, port)],
                Err(_) => tokio::net::lookup_host((host, port)).await.map_err(|_| Reason::Unresolvable)?.collect(),
            };
            if addresses.is_empty() {
                return Err(Reason::Unresolvable);
            }
            let reachable: Vec<SocketAddr> = addresses
                .into_iter()
                .filter(|address| self.settings.allow_internal || !is_internal(address.ip()))
                .collect();
            if reachable.is_empty() {
                return Err(Reason::InternalAddress);
            }
            for address in reachable {
                if let Ok(stream) = TcpStream::connect(address).await {
                    let _ = stream.set_nodelay(true);
                    let meter = Arc::new(Meter::default());
                    return Ok(Connected { stream: Metered::new(stream, meter.clone()), address, meter });
                }
            }
            Err(Reason::ConnectFailed)
        };
        tokio::time::timeout(deadline, attempt).await.unwrap_or(Err(Reason::ConnectFailed))
    }
}
