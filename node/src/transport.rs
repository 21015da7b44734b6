//! How this node talks HTTP: plain, or TLS (rustls, ring provider) with the certificates from
//! `[tls]` in its config. One place builds the server's acceptor and every outgoing client
//! (peer RPC, forwarding, federation), so they all agree on the scheme and trust the same
//! authorities.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use config::limits::CLIENT_POOL_IDLE_TIMEOUT;
use config::TlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

#[derive(Clone)]
pub struct Transport {
    /// `http` or `https`: what this node serves, and so what it calls its peers with.
    pub scheme: &'static str,
    acceptor: Option<TlsAcceptor>,
    /// The identity the acceptor presents; replaced in place by `reload_identity`.
    identity: Option<Arc<ServedIdentity>>,
    /// The authorities this node trusts: its own certificate must chain to one of them too.
    roots: Option<Arc<rustls::RootCertStore>>,
    client_tls: Option<rustls::ClientConfig>,
}

/// The certificate chain and key a server presents, swappable while it serves: connections
/// made after a swap get the new one, those open keep theirs.
#[derive(Debug)]
struct ServedIdentity {
    current: std::sync::RwLock<Arc<rustls::sign::CertifiedKey>>,
}

impl rustls::server::ResolvesServerCert for ServedIdentity {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone())
    }
}

/// The chain and key of `tls` as one identity, checked to belong together, to chain to `roots`
/// and to be valid now.
fn load_identity(tls: &TlsConfig, roots: &Arc<rustls::RootCertStore>) -> anyhow::Result<rustls::sign::CertifiedKey> {
    let chain = read_certificates(&tls.cert_file)?;
    crate::certificate::check_chain(&chain, roots, rustls::pki_types::UnixTime::now())
        .with_context(|| format!("{} against the CA of {}", tls.cert_file.display(), tls.ca_file.display()))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key_file)
        .with_context(|| format!("reading the private key from {}", tls.key_file.display()))?;
    let identity = rustls::sign::CertifiedKey::from_der(chain, key, &provider())
        .context("the certificate and key do not make a TLS identity")?;
    Ok(identity)
}

/// The one crypto provider (ring) of every TLS configuration and check.
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certificates = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading certificates from {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} holds a malformed certificate", path.display()))?;
    anyhow::ensure!(!certificates.is_empty(), "{} holds no PEM certificate", path.display());
    Ok(certificates)
}

impl Transport {
    pub fn plain() -> Transport {
        Transport { scheme: "http", acceptor: None, identity: None, roots: None, client_tls: None }
    }

    pub fn from_config(tls: Option<&TlsConfig>) -> anyhow::Result<Transport> {
        let Some(tls) = tls else { return Ok(Transport::plain()) };
        let mut roots = rustls::RootCertStore::empty();
        for authority in read_certificates(&tls.ca_file)? {
            roots.add(authority).context("a CA certificate rustls does not accept")?;
        }
        let roots = Arc::new(roots);
        let identity =
            Arc::new(ServedIdentity { current: std::sync::RwLock::new(Arc::new(load_identity(tls, &roots)?)) });
        let server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_cert_resolver(identity.clone());
        let client = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        Ok(Transport {
            scheme: "https",
            acceptor: Some(TlsAcceptor::from(Arc::new(server))),
            identity: Some(identity),
            roots: Some(roots),
            client_tls: Some(client),
        })
    }

    /// Reads the certificate and key again (a renewed certificate, on SIGHUP) and presents them
    /// to every connection from now on. A pair that does not load, a certificate not from the
    /// CA or not valid now, changes nothing. The authorities trusted for calls to other nodes
    /// are read at start only: a new CA is a rolling restart.
    pub fn reload_identity(&self, tls: Option<&TlsConfig>) -> anyhow::Result<()> {
        let (Some(identity), Some(roots), Some(tls)) = (&self.identity, &self.roots, tls) else { return Ok(()) };
        let renewed = Arc::new(load_identity(tls, roots)?);
        *identity.current.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = renewed;
        Ok(())
    }

    /// When the certificate served now ends, as a Unix time (for `xietong_tls_certificate_expires_at_timestamp_seconds`).
    pub fn certificate_expires_at(&self) -> Option<i64> {
        let identity = self.identity.as_ref()?;
        let current = identity.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        crate::certificate::not_after(current.cert.first()?.as_ref())
    }

    pub fn acceptor(&self) -> Option<TlsAcceptor> {
        self.acceptor.clone()
    }

    /// A client builder for calling other nodes: the right TLS roots, and pooled connections
    /// dropped before the server's idle close (`CLIENT_POOL_IDLE_TIMEOUT`).
    pub fn client(&self) -> reqwest::ClientBuilder {
        let builder = reqwest::Client::builder().tcp_nodelay(true).pool_idle_timeout(CLIENT_POOL_IDLE_TIMEOUT);
        match &self.client_tls {
            Some(tls) => builder.use_preconfigured_tls(tls.clone()),
            None => builder,
        }
    }

    /// `scheme://addr` for a node's `host:port`.
    pub fn base_url(&self, addr: &str) -> String {
        format!("{}://{addr}", self.scheme)
    }
}

/// `Transport::reload_identity` for a SIGHUP handler: the outcome goes to the log.
pub fn reload_identity_logged(transport: &Transport, tls: Option<&TlsConfig>) {
    let Some(tls) = tls else { return };
    match transport.reload_identity(Some(tls)) {
        Ok(()) => tracing::info!(file = %tls.cert_file.display(), "TLS certificate reloaded"),
        Err(error) => {
            tracing::error!(file = %tls.cert_file.display(), error = %format!("{error:#}"), "TLS certificate refused; the one in force stays")
        }
    }
}
