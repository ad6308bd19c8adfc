//! The server's egress CA: made at first start in `<data-dir>/egress-ca/` and kept (sandboxes
//! that trust it outlive the server), and the certificates it issues for the hosts whose TLS the
//! proxy terminates to add a credential.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Leaf configurations kept before the cache starts over: one per credential host in use.
const LEAF_CACHE_ENTRIES: usize = 1024;

/// The per-server CA.
pub struct EgressCa {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
    /// One key for every leaf: generating a key per host buys nothing, the CA vouches for all.
    leaf_key: KeyPair,
    leaves: Mutex<HashMap<String, Arc<ServerConfig>>>,
}

/// The CA's fixed subject and key usages (rebuilt the same way at every start, so the issuer
/// the stored key signs with matches the stored certificate).
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "Nimbus egress CA");
    name.push(DnType::OrganizationName, "Nimbus");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params
}

impl EgressCa {
    /// Loads the CA from `dir`, making it first when absent (the key file 0600, the directory
    /// 0700). The error is a sentence for the operator.
    pub fn open(dir: &Path) -> Result<Self, String> {
        let fail = |what: &str, e: &dyn std::fmt::Display| format!("egress CA in {}: {what}: {e}", dir.display());
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| fail("create", &e))?;
        let key_path = dir.join("ca.key");
        let cert_path = dir.join("ca.pem");
        let key = match std::fs::read_to_string(&key_path) {
            Ok(pem) => KeyPair::from_pem(&pem).map_err(|e| fail("read ca.key", &e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = KeyPair::generate().map_err(|e| fail("generate a key", &e))?;
                write_new(&key_path, key.serialize_pem().as_bytes()).map_err(|e| fail("write ca.key", &e))?;
                key
            }
            Err(e) => return Err(fail("read ca.key", &e)),
        };
        let cert_pem = match std::fs::read_to_string(&cert_path) {
            Ok(pem) => pem,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let cert = ca_params().self_signed(&key).map_err(|e| fail("sign the certificate", &e))?;
                write_new(&cert_path, cert.pem().as_bytes()).map_err(|e| fail("write ca.pem", &e))?;
                cert.pem()
            }
            Err(e) => return Err(fail("read ca.pem", &e)),
        };
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| fail("parse ca.pem", &e))?;
        let leaf_key = KeyPair::generate().map_err(|e| fail("generate a key", &e))?;
        Ok(Self {
            cert_pem,
            cert_der,
            issuer: Issuer::new(ca_params(), key),
            leaf_key,
            leaves: Mutex::new(HashMap::new()),
        })
    }

    /// The CA certificate, PEM: what sandboxes add to their trust.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A TLS server configuration presenting a certificate for `host` (a DNS name or an IP
    /// literal), HTTP/1.1 only.
    pub fn server_config(&self, host: &str) -> Result<Arc<ServerConfig>, String> {
        if let Some(config) = self.leaves.lock().unwrap_or_else(PoisonError::into_inner).get(host) {
            return Ok(config.clone());
        }
        let mut params = CertificateParams::new(vec![host.to_owned()]).map_err(|e| e.to_string())?;
        params.distinguished_name.push(DnType::CommonName, host);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let leaf = params.signed_by(&self.leaf_key, &self.issuer).map_err(|e| e.to_string())?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key.serialize_der()));
        let mut config = ServerConfig::builder_with_provider(crate::crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone(), self.cert_der.clone()], key)
            .map_err(|e| e.to_string())?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let config = Arc::new(config);
        let mut leaves = self.leaves.lock().unwrap_or_else(PoisonError::into_inner);
        if leaves.len() >= LEAF_CACHE_ENTRIES {
            leaves.clear();
        }
        leaves.insert(host.to_owned(), config.clone());
        Ok(config)
    }
}

/// Writes a new file, 0600, durably (temporary name, fsync, rename), so a crash leaves either
/// no file or a whole one.
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let partial = path.with_extension("partial");
    let mut file = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&partial)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&partial, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_ca_is_made_once_kept_private_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca_dir = dir.path().join("egress-ca");
        let first = EgressCa::open(&ca_dir).expect("make");
        let mode = std::fs::metadata(ca_dir.join("ca.key")).expect("key").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = EgressCa::open(&ca_dir).expect("reopen");
        assert_eq!(first.cert_pem(), again.cert_pem(), "the CA survives restarts");
        assert!(first.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        first.server_config("api.example.com").expect("leaf for a name");
        first.server_config("127.0.0.2").expect("leaf for an address");
    }
}
