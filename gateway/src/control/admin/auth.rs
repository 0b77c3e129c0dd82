//! Bearer-token authentication and roles.
//!
//! Tokens are never kept in memory as given: each configured secret is its SHA-256, and a
//! presented token is hashed and compared with **every** configured digest using
//! `subtle::ConstantTimeEq` on the fixed 32 bytes (no early exit on a match, no length
//! leak). Sources, all valid at once:
//!
//! * `admin.tokens` in the config file: name, `sha256` (hex), role `admin` or `viewer`;
//! * `GATEWAY_ADMIN_TOKEN` (config `admin_token`): role admin, actor name `env`;
//! * with neither, and `admin.dev_token = true` (the default): `<data_dir>/admin-token`,
//!   created at first start with a random token (mode 0600) and reused afterwards, role
//!   admin, actor name `dev`. Its path is logged, never its content.
//!
//! Tokens never appear in logs, metrics, audit entries or error messages.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use axum::http::{HeaderMap, StatusCode, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::config::Config;

/// Name of the development token file in the data directory.
pub const DEV_TOKEN_FILE: &str = "admin-token";

/// What a token may do. `Admin` includes everything `Viewer` may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Read only.
    Viewer,
    /// Everything.
    Admin,
}

impl Role {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Admin => "admin",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "viewer" => Some(Self::Viewer),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// The authenticated caller of a request (put into the request extensions by the route
/// guard; handlers take it as `Extension<Caller>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Token name (the audit log's actor).
    pub actor: String,
    /// Role of the token.
    pub role: Role,
    /// Peer address.
    pub source: Option<SocketAddr>,
    /// Audit action of the route being called (e.g. `register.suspend`; empty for reads).
    pub action: &'static str,
}

#[derive(Clone)]
struct TokenEntry {
    name: String,
    digest: [u8; 32],
    role: Role,
}

/// The configured tokens.
#[derive(Clone, Default)]
pub struct Auth {
    tokens: Vec<TokenEntry>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").field("tokens", &self.tokens.iter().map(|t| &t.name).collect::<Vec<_>>()).finish()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Path of the development token of a data directory.
pub fn dev_token_path(data_dir: &Path) -> PathBuf {
    data_dir.join(DEV_TOKEN_FILE)
}

/// Reads the development token, creating it (random, mode 0600) when absent.
pub fn ensure_dev_token(data_dir: &Path) -> anyhow::Result<String> {
    use anyhow::Context;
    let path = dev_token_path(data_dir);
    if path.exists() {
        let t = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let t = t.trim();
        anyhow::ensure!(!t.is_empty(), "{} is empty", path.display());
        return Ok(t.to_owned());
    }
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let bytes: [u8; 32] = rand::random();
    let token = hex::encode(bytes);
    crate::tls::write_private(&path, format!("{token}\n").as_bytes())?;
    Ok(token)
}

impl Auth {
    /// Tokens from the configuration (creating the development token when nothing is
    /// configured and `admin.dev_token` allows it).
    pub fn from_config(cfg: &Config) -> Self {
        let mut tokens = Vec::new();
        for t in &cfg.admin.tokens {
            let (Ok(bytes), Some(role)) = (hex::decode(t.sha256.trim()), Role::parse(&t.role)) else {
                // validated at start-up; skip anything that slipped through
                tracing::warn!(name = %t.name, "ignoring an invalid admin token entry");
                continue;
            };
            let Ok(digest) = <[u8; 32]>::try_from(bytes.as_slice()) else {
                tracing::warn!(name = %t.name, "ignoring an admin token whose sha256 is not 32 bytes");
                continue;
            };
            tokens.push(TokenEntry { name: t.name.clone(), digest, role });
        }
        if let Some(t) = cfg.admin_token.as_deref().map(str::trim) {
            if t.is_empty() {
                tracing::warn!("GATEWAY_ADMIN_TOKEN / admin_token is empty and is ignored");
            } else {
                tokens.push(TokenEntry { name: "env".into(), digest: digest(t), role: Role::Admin });
            }
        }
        if tokens.is_empty() {
            if cfg.admin.dev_token {
                match ensure_dev_token(&cfg.data_dir) {
                    Ok(t) => {
                        tracing::info!(
                            path = %dev_token_path(&cfg.data_dir).display(),
                            "no admin token configured: using the development admin token file (adminctl reads it for a local gateway)"
                        );
                        tokens.push(TokenEntry { name: "dev".into(), digest: digest(&t), role: Role::Admin });
                    }
                    Err(e) => tracing::error!(
                        error = %format!("{e:#}"),
                        "cannot create the development admin token; every admin request will be refused"
                    ),
                }
            } else {
                tracing::warn!(
                    "no admin token configured and admin.dev_token is off: every admin request will be refused"
                );
            }
        }
        Self { tokens }
    }

    /// Auth with explicit (name, token, role) entries (tests).
    pub fn from_tokens(entries: &[(&str, &str, Role)]) -> Self {
        Self {
            tokens: entries
                .iter()
                .map(|(name, token, role)| TokenEntry { name: (*name).to_owned(), digest: digest(token), role: *role })
                .collect(),
        }
    }

    /// Number of configured tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// True when no token is configured (every request is refused).
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Checks the `Authorization: Bearer` header. 401 `unauthenticated` when it is
    /// missing, malformed or matches no token.
    pub fn authenticate(&self, headers: &HeaderMap, source: Option<SocketAddr>) -> Result<Caller, ApiError> {
        let unauthenticated = |why: &str| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                format!("{why}: send Authorization: Bearer <token>"),
            )
        };
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Err(unauthenticated("missing credentials"));
        };
        let Some(token) = value
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, rest) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then_some(rest)
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
        else {
            return Err(unauthenticated("malformed Authorization header"));
        };
        let presented = digest(token);
        let mut found: Option<&TokenEntry> = None;
        for t in &self.tokens {
            // every entry is compared, in constant time over the fixed-length digest
            let eq: bool = t.digest.ct_eq(&presented).into();
            if eq && found.is_none() {
                found = Some(t);
            }
        }
        match found {
            Some(t) => Ok(Caller { actor: t.name.clone(), role: t.role, source, action: "" }),
            None => Err(unauthenticated("invalid token")),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn bearer(t: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, format!("Bearer {t}").parse().unwrap());
        h
    }

    #[test]
    fn tokens_and_roles() {
        let a = Auth::from_tokens(&[("ops", "s3cret", Role::Admin), ("ro", "view", Role::Viewer)]);
        assert_eq!(a.authenticate(&bearer("s3cret"), None).unwrap().role, Role::Admin);
        let v = a.authenticate(&bearer("view"), None).unwrap();
        assert_eq!((v.actor.as_str(), v.role), ("ro", Role::Viewer));
        assert_eq!(a.authenticate(&bearer("s3cre"), None).unwrap_err().status, StatusCode::UNAUTHORIZED);
        assert_eq!(a.authenticate(&HeaderMap::new(), None).unwrap_err().status, StatusCode::UNAUTHORIZED);
        let mut basic = HeaderMap::new();
        basic.insert(header::AUTHORIZATION, "Basic czNjcmV0".parse().unwrap());
        assert!(a.authenticate(&basic, None).is_err());
        assert!(Auth::default().authenticate(&bearer("x"), None).is_err());
    }

    #[test]
    fn configured_digests_and_env_token() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg =
            Config { data_dir: dir.path().to_path_buf(), admin_token: Some("from-env".into()), ..Config::default() };
        cfg.admin.tokens.push(crate::config::TokenConfig {
            name: "viewer1".into(),
            sha256: hex::encode(digest("ro-token")),
            role: "viewer".into(),
        });
        let a = Auth::from_config(&cfg);
        assert_eq!(a.len(), 2);
        assert_eq!(a.authenticate(&bearer("from-env"), None).unwrap().actor, "env");
        assert_eq!(a.authenticate(&bearer("ro-token"), None).unwrap().role, Role::Viewer);
        assert!(!dev_token_path(dir.path()).exists(), "no dev token when tokens are configured");
    }

    #[test]
    fn dev_token_is_created_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config { data_dir: dir.path().to_path_buf(), ..Config::default() };
        let a = Auth::from_config(&cfg);
        let path = dev_token_path(dir.path());
        let token = std::fs::read_to_string(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(a.authenticate(&bearer(token.trim()), None).unwrap().actor, "dev");
        let b = Auth::from_config(&cfg);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), token, "reused");
        assert!(b.authenticate(&bearer(token.trim()), None).is_ok());
        let off = Config {
            data_dir: tempfile::tempdir().unwrap().path().to_path_buf(),
            admin: crate::config::AdminConfig { dev_token: false, ..Default::default() },
            ..Config::default()
        };
        assert!(Auth::from_config(&off).is_empty());
    }
}
