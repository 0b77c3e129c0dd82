//! Errors of the admin API: always a JSON body `{"error": {"code", "message", "field"?}}`
//! with the HTTP status that says what happened — never "200 with an error inside".
//!
//! Codes are stable (scripts and `adminctl` match on them); messages are for people and
//! name the field and the rule that was broken. Validation failures also carry the full
//! list of broken fields in `errors` (`[{"field", "message"}]`, with `line` for imports).

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use storage::StoreError;

/// One broken field (a row of an import adds its 1-based `line`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// 1-based row of an import request (absent for single-register calls).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// Field name as in the request (`rnm`, `owner_inn`, `fn_number`, ...).
    pub field: String,
    /// The rule that was broken, for people.
    pub message: String,
}

impl FieldError {
    /// A broken field.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { line: None, field: field.into(), message: message.into() }
    }
}

/// An API error.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code.
    pub code: &'static str,
    /// Human message.
    pub message: String,
    /// The field concerned, when there is one.
    pub field: Option<String>,
    /// Extra top-level members of the body (e.g. `errors`, import counters).
    pub extra: Map<String, Value>,
    /// Seconds for a `Retry-After` header (429).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), field: None, extra: Map::new(), retry_after: None }
    }

    /// 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 400 for one invalid parameter.
    pub fn invalid_param(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(StatusCode::BAD_REQUEST, "invalid_parameter", format!("{field}: {message}")).with_field(field)
    }

    /// 404.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    /// 409.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 422 from broken fields: the first names `field`, all are listed in `errors`.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let first = errors.first().cloned();
        let message = match (&first, errors.len()) {
            (Some(e), 1) => format!("{}: {}", e.field, e.message),
            (Some(e), n) => format!("{}: {} (and {} more invalid fields)", e.field, e.message, n - 1),
            (None, _) => "invalid request".to_owned(),
        };
        let mut err = Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message);
        err.field = first.map(|e| e.field);
        err.extra.insert("errors".into(), serde_json::to_value(&errors).unwrap_or(Value::Null));
        err
    }

    /// Names the field concerned.
    pub fn with_field(mut self, field: &str) -> Self {
        self.field = Some(field.to_owned());
        self
    }

    /// Sets the `Retry-After` header.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// Adds a top-level member to the body.
    pub fn with_extra(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_owned(), value);
        self
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let status = match &e {
            StoreError::Conflict(_) => StatusCode::CONFLICT,
            StoreError::NotFound(_) => StatusCode::NOT_FOUND,
            StoreError::Invalid(_) => StatusCode::BAD_REQUEST,
            StoreError::Corrupt(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        let code = match &e {
            StoreError::Conflict(_) => "conflict",
            StoreError::NotFound(_) => "not_found",
            StoreError::Invalid(_) => "invalid_request",
            StoreError::Corrupt(_) => "storage_corrupt",
            _ => "storage_unavailable",
        };
        if status.is_server_error() {
            tracing::warn!(error = %e, "admin API: storage error");
        }
        Self::new(status, code, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut inner = Map::new();
        inner.insert("code".into(), Value::from(self.code));
        inner.insert("message".into(), Value::from(self.message));
        if let Some(f) = self.field {
            inner.insert("field".into(), Value::from(f));
        }
        let retry_after = self.retry_after;
        let mut body = self.extra;
        body.insert("error".into(), Value::Object(inner));
        let mut resp = (self.status, Json(Value::Object(body))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"ofd-admin\""),
            );
        }
        if let Some(secs) = retry_after {
            resp.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
        }
        resp
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

/// `Json<T>` whose rejections are JSON errors (400 `bad_json`, 415 `unsupported_media_type`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Self(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON with Content-Type: application/json",
            )),
            Err(e) => Err(ApiError::bad_request("bad_json", format!("invalid JSON body: {}", e.body_text()))),
        }
    }
}

/// `Query<T>` whose rejections are JSON errors (400 `invalid_parameter`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(q) => Ok(Self(q.0)),
            Err(e) => Err(query_error(&e)),
        }
    }
}

fn query_error(e: &QueryRejection) -> ApiError {
    ApiError::bad_request("invalid_parameter", format!("invalid query parameters: {}", e.body_text()))
}

/// `Path<T>` whose rejections are JSON errors (400 `invalid_parameter`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(p) => Ok(Self(p.0)),
            Err(e) => Err(path_error(&e)),
        }
    }
}

fn path_error(e: &PathRejection) -> ApiError {
    ApiError::bad_request("invalid_parameter", format!("invalid path: {}", e.body_text()))
}
