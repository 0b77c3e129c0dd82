//! TLS material for the TLS and QUIC listeners and the admin API: a configured
//! certificate, or a self-signed ECDSA P-256 development certificate created in the data
//! directory (so that `loadgen`, `adminctl` and tests can trust it), and the rustls server
//! configurations built from it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{ClientAuth, Config};

/// ALPN protocol of the QUIC listener (and offered, not required, over TLS).
pub const ALPN: &[u8] = b"ofd";

/// Certificate chain and key.
#[derive(Debug)]
pub struct TlsMaterial {
    /// Chain, leaf first.
    pub certs: Vec<CertificateDer<'static>>,
    /// Private key.
    pub key: PrivateKeyDer<'static>,
    /// Where the development certificate was written, when one is used.
    pub dev_cert: Option<PathBuf>,
}

/// Path of the development certificate in a data directory.
pub fn dev_cert_path(data_dir: &Path) -> PathBuf {
    data_dir.join("tls").join("dev-cert.pem")
}

/// Loads the configured certificate or creates/reuses the development one.
pub fn load(cfg: &Config) -> anyhow::Result<TlsMaterial> {
    if let (Some(cert), Some(key)) = (&cfg.tls.cert, &cfg.tls.key) {
        let certs = CertificateDer::pem_file_iter(cert)
            .with_context(|| format!("reading tls.cert {}", cert.display()))?
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("parsing tls.cert {}", cert.display()))?;
        if certs.is_empty() {
            bail!("tls.cert {} holds no certificate", cert.display());
        }
        let key = PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading tls.key {}", key.display()))?;
        return Ok(TlsMaterial { certs, key, dev_cert: None });
    }
    let cert_path = dev_cert_path(&cfg.data_dir);
    let key_path = cert_path.with_file_name("dev-key.pem");
    if !cert_path.exists() || !key_path.exists() {
        let dir = cert_path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
        let ck = rcgen::generate_simple_self_signed(names).context("generating the development certificate")?;
        write_private(&key_path, ck.signing_key.serialize_pem().as_bytes())?;
        std::fs::write(&cert_path, ck.cert.pem()).with_context(|| format!("writing {}", cert_path.display()))?;
    }
    let certs = CertificateDer::pem_file_iter(&cert_path)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(&key_path)?;
    Ok(TlsMaterial { certs, key, dev_cert: Some(cert_path) })
}

/// Writes a file readable by its owner only.
pub fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(contents).with_context(|| format!("writing {}", path.display()))?;
    f.sync_all().with_context(|| format!("syncing {}", path.display()))?;
    Ok(())
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls server configuration. `quic` restricts it to TLS 1.3 and requires ALPN.
pub fn server_config(cfg: &Config, m: &TlsMaterial, quic: bool) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let mut sc = build(m, cfg.tls.client_auth, cfg.tls.client_ca.as_deref(), "tls.client_ca", quic)?;
    sc.alpn_protocols = vec![ALPN.to_vec()];
    if quic {
        sc.max_early_data_size = 0;
    }
    Ok(Arc::new(sc))
}

/// The admin API's rustls configuration: the same certificate, its own client-certificate
/// policy (`admin.client_auth`, `admin.client_ca`), HTTP/1.1.
pub fn admin_server_config(cfg: &Config, m: &TlsMaterial) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let mut sc = build(m, cfg.admin.client_auth, cfg.admin.client_ca.as_deref(), "admin.client_ca", false)?;
    sc.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(sc))
}

fn build(
    m: &TlsMaterial,
    client_auth: ClientAuth,
    client_ca: Option<&Path>,
    ca_field: &str,
    quic: bool,
) -> anyhow::Result<rustls::ServerConfig> {
    let versions: &[&rustls::SupportedProtocolVersion] =
        if quic { &[&rustls::version::TLS13] } else { rustls::DEFAULT_VERSIONS };
    let builder = rustls::ServerConfig::builder_with_provider(provider()).with_protocol_versions(versions)?;
    let builder = match (client_auth, client_ca) {
        (ClientAuth::None, _) | (_, None) => builder.with_no_client_auth(),
        (policy, Some(ca)) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in
                CertificateDer::pem_file_iter(ca).with_context(|| format!("reading {ca_field} {}", ca.display()))?
            {
                roots.add(cert?).context("adding a client CA")?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
            let verifier = if policy == ClientAuth::Optional { verifier.allow_unauthenticated() } else { verifier };
            builder.with_client_cert_verifier(verifier.build().context("building the client verifier")?)
        }
    };
    let mut sc = builder.with_single_cert(m.certs.clone(), m.key.clone_key()).context("loading the certificate")?;
    // resumption: stateless tickets (no per-session memory on the server)
    sc.ticketer = rustls::crypto::ring::Ticketer::new().context("creating the ticketer")?;
    sc.send_tls13_tickets = 1;
    Ok(sc)
}
