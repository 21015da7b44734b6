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
    client_tls: Option<rustls::ClientConfig>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
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
        Transport { scheme: "http", acceptor: None, client_tls: None }
    }

    pub fn from_config(tls: Option<&TlsConfig>) -> anyhow::Result<Transport> {
        let Some(tls) = tls else { return Ok(Transport::plain()) };
        let chain = read_certificates(&tls.cert_file)?;
        let key = PrivateKeyDer::from_pem_file(&tls.key_file)
            .with_context(|| format!("reading the private key from {}", tls.key_file.display()))?;
        let server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .context("the certificate and key do not make a TLS identity")?;
        let mut roots = rustls::RootCertStore::empty();
        for authority in read_certificates(&tls.ca_file)? {
            roots.add(authority).context("a CA certificate rustls does not accept")?;
        }
        let client = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Transport { scheme: "https", acceptor: Some(TlsAcceptor::from(Arc::new(server))), client_tls: Some(client) })
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
