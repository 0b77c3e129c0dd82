//! The acknowledgment signer chosen by configuration. Only the software signer exists in
//! this repository; an HSM-backed signer is another `ffd::AckSigner`.

use std::sync::Arc;

use anyhow::Context;
use ffd::{AckSigner, SoftwareSigner};

use crate::config::Config;

/// The signer and a fingerprint of its key (the first 8 bytes of the key's SHA-256, hex),
/// which a gateway announces to the others sharing its store: gateways with different
/// keys would sign the same document differently.
pub struct Built {
    /// The signer.
    pub signer: Arc<dyn AckSigner>,
    /// Fingerprint of its key.
    pub fingerprint: String,
}

/// Builds the signer. Without a configured key, a random one is created once in
/// `<data_dir>/signer.key` (mode 0600) so acknowledgments stay stable across restarts.
pub fn build(cfg: &Config) -> anyhow::Result<Built> {
    let key = match &cfg.signer.key_hex {
        Some(k) => hex::decode(k).context("signer.key_hex is not hex")?,
        None => {
            let path = cfg.data_dir.join("signer.key");
            if path.exists() {
                let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
                hex::decode(text.trim()).with_context(|| format!("{} is not hex", path.display()))?
            } else {
                let key: [u8; 32] = rand::random();
                crate::tls::write_private(&path, hex::encode(key).as_bytes())?;
                tracing::info!(path = %path.display(), "created a development acknowledgment-signing key");
                key.to_vec()
            }
        }
    };
    use sha2::Digest;
    let fingerprint = hex::encode(&sha2::Sha256::digest(&key)[..8]);
    Ok(Built { signer: Arc::new(SoftwareSigner::new(&key)), fingerprint })
}
