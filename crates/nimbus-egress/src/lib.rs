//! Sandbox egress: the only way out of a sandbox's network namespace.
//!
//! Each sandbox's supervisor listens on the sandbox's loopback (`EGRESS_PROXY_PORT`) and hands
//! every connection, unread, to the server over a unix socket (the descriptor itself, with the
//! sandbox's id). [`proxy::Proxy`] serves them as an HTTP/1.1 forward proxy: `CONNECT` tunnels
//! and plain-HTTP requests, each checked against the sandbox's [`rules::EgressRules`] and the
//! operator's [`rules::Ceiling`], resolved and connected by the proxy itself (internal addresses
//! refused, [`address`]), a tunnel's TLS server name checked, and, for hosts with a credential
//! rule, TLS terminated with the server's [`ca::EgressCa`] so a header carrying a tenant secret
//! can be added. Every decision goes to the sandbox's [`log::DecisionLogs`].
//!
//! Knows no sandbox registry, tenant store or HTTP API: the server answers the proxy's questions
//! through [`proxy::Directory`].

pub mod address;
pub mod ca;
pub mod hop;
pub mod log;
pub mod proxy;
pub mod rules;
mod stream;

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

/// The TLS implementation both sides of the proxy use.
fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The roots upstream certificates are verified against: the system's, plus the PEM bundle
/// `extra` (`--egress-upstream-ca`). The error is a sentence for the operator.
pub fn upstream_roots(extra: Option<&Path>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for err in &native.errors {
        tracing::warn!(%err, "a system CA certificate could not be loaded");
    }
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = extra {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("cannot read the upstream CA bundle {}: {e}", path.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("the upstream CA bundle {} is not PEM: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("the upstream CA bundle {} holds no certificate", path.display()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| format!("the upstream CA bundle {}: {e}", path.display()))?;
        }
    }
    Ok(roots)
}
