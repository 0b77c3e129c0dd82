//! The admin API client and the error → exit-code mapping.

use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

/// Exit codes scripts can rely on.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// The server answered with an error (validation, conflict, storage), or could not be
    /// reached.
    pub const SERVER: u8 = 1;
    /// Usage error (bad flags, missing `--yes`, unreadable file): nothing was sent.
    pub const USAGE: u8 = 2;
    /// Authentication or permission refused (401/403), or too many failed
    /// authentications from this address (429).
    pub const AUTH: u8 = 3;
    /// Not found (404; `documents verify`: no such receipt).
    pub const NOT_FOUND: u8 = 4;
}

/// A failed command.
#[derive(Debug)]
pub struct CliError {
    /// Exit code.
    pub code: u8,
    /// Message for stderr.
    pub message: String,
    /// The server's JSON error body, if any (printed with `-o json|yaml`).
    pub body: Option<Value>,
}

impl CliError {
    /// A usage error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self { code: exit::USAGE, message: message.into(), body: None }
    }

    /// Any error with a code.
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), body: None }
    }
}

/// Result of a command.
pub type CliResult<T> = Result<T, CliError>;

/// TLS material for an `https://` admin API (from a context).
#[derive(Debug, Clone, Default)]
pub struct Tls {
    /// PEM of the CA (or self-signed certificate) to trust.
    pub ca: Option<Vec<u8>>,
    /// PEM of a client certificate followed by its key.
    pub identity: Option<Vec<u8>>,
    /// The context they come from (for messages).
    pub context: Option<String>,
}

/// Talks to one admin API.
#[derive(Debug, Clone)]
pub struct Client {
    base: Url,
    token: Option<String>,
    token_hint: String,
    http: reqwest::Client,
    timeout: Duration,
}

impl Client {
    /// A client for `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: Url, token: Option<String>, token_hint: String, timeout: Duration, tls: &Tls) -> CliResult<Self> {
        let whose = tls.context.as_deref().map(|c| format!("context {c:?}: ")).unwrap_or_default();
        let mut builder =
            reqwest::Client::builder().timeout(timeout).user_agent(concat!("adminctl/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &tls.ca {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| CliError::usage(format!("{whose}ca: not a PEM certificate: {e}")))?;
            if certs.is_empty() {
                return Err(CliError::usage(format!("{whose}ca: no certificate in the file")));
            }
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        if let Some(pem) = &tls.identity {
            let id = reqwest::Identity::from_pem(pem).map_err(|e| {
                CliError::usage(format!("{whose}client_cert/client_key: not a PEM certificate and key: {e}"))
            })?;
            builder = builder.identity(id);
        }
        let http =
            builder.build().map_err(|e| CliError::new(exit::SERVER, format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { base, token, token_hint, http, timeout })
    }

    /// The server address.
    pub fn base(&self) -> &Url {
        &self.base
    }

    fn url(&self, path: &str, query: &[(&str, String)]) -> CliResult<Url> {
        let mut url = self
            .base
            .join(path.trim_start_matches('/'))
            .map_err(|e| CliError::usage(format!("bad path {path}: {e}")))?;
        {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                if !v.is_empty() {
                    pairs.append_pair(k, v);
                }
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        Ok(url)
    }

    /// The per-request timeout (`--timeout`); for a stream, the longest wait for a chunk.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// GET whose body is read as a stream by the caller (no overall deadline; the caller
    /// bounds each chunk by [`Client::timeout`]). An error answer is a `CliError`.
    pub async fn get_stream(&self, path: &str, query: &[(&str, String)]) -> CliResult<reqwest::Response> {
        let url = self.url(path, query)?;
        let mut req = self.http.get(url.clone()).timeout(Duration::from_secs(7 * 86_400));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| self.transport_error(&url, &e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let text = resp.text().await.unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Err(self.api_error(status, value))
    }

    /// GET with query parameters (empty values are left out).
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> CliResult<Value> {
        self.send(Method::GET, self.url(path, query)?, None).await
    }

    /// DELETE (no body).
    pub async fn delete(&self, path: &str) -> CliResult<Value> {
        self.send(Method::DELETE, self.url(path, &[])?, None).await
    }

    /// POST a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> CliResult<Value> {
        self.send(Method::POST, self.url(path, &[])?, Some(body)).await
    }

    /// POST a JSON body; an error answer that carries a JSON body is returned as
    /// `Err((status, body))` instead of a `CliError`, for callers that read per-row errors.
    pub async fn post_raw(&self, path: &str, body: &Value) -> CliResult<(StatusCode, Value)> {
        let url = self.url(path, &[])?;
        let mut req = self.http.post(url.clone()).json(body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| self.transport_error(&url, &e))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, value))
    }

    async fn send(&self, method: Method, url: Url, body: Option<&Value>) -> CliResult<Value> {
        let mut req = self.http.request(method, url.clone());
        if let Some(b) = body {
            req = req.json(b);
        }
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| self.transport_error(&url, &e))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status.is_success() {
            return Ok(value);
        }
        Err(self.api_error(status, value))
    }

    fn transport_error(&self, url: &Url, e: &reqwest::Error) -> CliError {
        let what = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "cannot connect"
        } else {
            "request failed"
        };
        let mut cause: &dyn std::error::Error = e;
        while let Some(next) = cause.source() {
            cause = next;
        }
        let tls = url.scheme() == "https" && !e.is_timeout();
        let hint = if tls {
            "is the gateway running, with admin.tls? is its certificate's CA the context's `ca`?"
        } else {
            "is the gateway running? set --server or ADMINCTL_SERVER"
        };
        CliError::new(exit::SERVER, format!("{what}: {} ({cause}; {hint})", url.origin().ascii_serialization()))
    }

    /// Maps an error answer to an exit code and a message naming the field and rule.
    pub fn api_error(&self, status: StatusCode, body: Value) -> CliError {
        let code = match status {
            // 429: too many failed authentications from this address
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS => exit::AUTH,
            StatusCode::NOT_FOUND => exit::NOT_FOUND,
            _ => exit::SERVER,
        };
        let mut message = error_message(status, &body);
        if status == StatusCode::UNAUTHORIZED {
            message.push_str(&format!("\nhint: {}", self.token_hint));
        }
        CliError { code, message, body: Some(body) }
    }
}

/// "code: message" of an error body, then every listed field error on its own line.
pub fn error_message(status: StatusCode, body: &Value) -> String {
    let err = body.get("error");
    let code = err.and_then(|e| e.get("code")).and_then(Value::as_str).unwrap_or("error");
    let msg =
        err.and_then(|e| e.get("message")).and_then(Value::as_str).map(str::to_owned).unwrap_or_else(|| match body {
            Value::String(s) if !s.is_empty() => s.clone(),
            _ => status.to_string(),
        });
    let mut out = format!("{msg} [{} {code}]", status.as_u16());
    if let Some(list) = body.get("errors").and_then(Value::as_array)
        && list.len() > 1
    {
        for e in list {
            let field = e.get("field").and_then(Value::as_str).unwrap_or("?");
            let m = e.get("message").and_then(Value::as_str).unwrap_or("");
            match e.get("line").and_then(Value::as_u64) {
                Some(l) => out.push_str(&format!("\n  line {l}: {field}: {m}")),
                None => out.push_str(&format!("\n  {field}: {m}")),
            }
        }
    }
    out
}
