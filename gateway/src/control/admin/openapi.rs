//! The admin API's OpenAPI 3.1 document, served at `GET /openapi.json` (viewer, like every
//! route). It is generated from the code, so it cannot drift: the paths, methods, path
//! parameters, roles and summaries come from the route table ([`super::route_table`]),
//! the query parameters and request bodies from the handlers' own `ApiQuery<T>` and
//! `ApiJson<T>` types (`utoipa::IntoParams`, `utoipa::ToSchema`), the statuses from what
//! the route guard and the handlers answer, and the error body from [`super::error`].
//!
//! Answers are described by their envelope: a JSON object (lists: `items` and `next`),
//! the error body `{"error": {"code", "message", "field"?}, ...}`, or the media types of a
//! streamed export. `tests/tests/openapi_schemathesis.rs` checks the running gateway
//! against the document with schemathesis.

use axum::Json;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use serde_json::{Map, Value, json};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;

use super::auth::Role;
use super::{Ctx, Route, route_table};

/// Routes of this module.
pub fn routes() -> Vec<Route> {
    vec![Route::get("/openapi.json", Role::Viewer, "This API's OpenAPI 3.1 document", serve)]
}

/// A request body's schema with the schemas it refers to.
#[derive(Clone)]
pub struct BodySchema {
    /// Component name.
    pub name: String,
    /// The schema.
    pub schema: RefOr<Schema>,
    /// Schemas it refers to.
    pub deps: Vec<(String, RefOr<Schema>)>,
}

async fn serve(State(_ctx): State<Ctx>) -> Json<Value> {
    Json(document())
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// What an error status means, for its description.
fn describe(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "malformed query, path or body (`field` names it)",
        401 => "no, malformed or unknown bearer token",
        403 => "the token's role may not call this route",
        404 => "no such register, plan, rule, job or document",
        409 => "already exists, or changed concurrently",
        413 => "too many rows, or a body over 16 MB",
        415 => "the body is not application/json",
        422 => "fields that break a rule (all listed in `errors`)",
        429 => "too many failed authentications from this address (Retry-After)",
        503 => "storage or the audit log unavailable: nothing changed",
        _ => "error",
    }
}

/// The statuses a route answers besides success.
fn error_statuses(r: &Route) -> Vec<StatusCode> {
    let mut out = vec![StatusCode::BAD_REQUEST, StatusCode::UNAUTHORIZED, StatusCode::NOT_FOUND];
    if r.role == Role::Admin {
        out.push(StatusCode::FORBIDDEN);
    }
    if r.method != Method::GET {
        out.extend([StatusCode::CONFLICT, StatusCode::PAYLOAD_TOO_LARGE, StatusCode::UNSUPPORTED_MEDIA_TYPE]);
    }
    out.extend([StatusCode::UNPROCESSABLE_ENTITY, StatusCode::TOO_MANY_REQUESTS, StatusCode::SERVICE_UNAVAILABLE]);
    out
}

fn operation_id(r: &Route) -> String {
    let raw = format!("{}_{}", r.method.as_str().to_ascii_lowercase(), r.path);
    let mut id = String::with_capacity(raw.len());
    for c in raw.chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '_' };
        if c != '_' || !id.ends_with('_') {
            id.push(c);
        }
    }
    id.trim_end_matches('_').to_owned()
}

fn operation(r: &Route, components: &mut Map<String, Value>) -> Value {
    let mut params: Vec<Value> = r
        .path
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string", "minLength": 1}}))
        .collect();
    if let Some(q) = r.query {
        params.extend(q().iter().map(to_json));
    }
    let mut responses = Map::new();
    let ok = match r.ok {
        StatusCode::NO_CONTENT => json!({"description": "done"}),
        _ if r.produces == ["application/json"] => json!({
            "description": "success",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Answer"}}},
        }),
        _ => {
            let content: Map<String, Value> =
                r.produces.iter().map(|m| ((*m).to_owned(), json!({"schema": {"type": "string"}}))).collect();
            json!({"description": "success (streamed)", "content": content})
        }
    };
    responses.insert(r.ok.as_u16().to_string(), ok);
    for s in error_statuses(r) {
        let mut resp = json!({
            "description": describe(s),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        });
        if s == StatusCode::TOO_MANY_REQUESTS {
            resp["headers"] = json!({"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}});
        }
        responses.insert(s.as_u16().to_string(), resp);
    }
    let mut op = json!({
        "operationId": operation_id(r),
        "summary": r.summary,
        "tags": [r.path.trim_start_matches("/v1/").split('/').next().unwrap_or("api")],
        "security": [{"bearer": []}],
        "parameters": params,
        "responses": responses,
    });
    if !r.action.is_empty() {
        op["description"] = Value::from(format!("Role admin; audited as `{}`.", r.action));
    } else {
        op["description"] = Value::from(format!("Role {}.", r.role.as_str()));
    }
    if let Some((body, required)) = r.body {
        let b = body();
        for (name, schema) in &b.deps {
            components.insert(name.clone(), to_json(schema));
        }
        components.insert(b.name.clone(), to_json(&b.schema));
        op["requestBody"] = json!({
            "required": required,
            "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{}", b.name)}}},
        });
    }
    op
}

/// The OpenAPI document of every route of [`route_table`].
pub fn document() -> Value {
    let mut paths: Map<String, Value> = Map::new();
    let mut schemas: Map<String, Value> = Map::new();
    schemas.insert(
        "Error".into(),
        json!({
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string", "description": "stable code, e.g. invalid_field"},
                        "message": {"type": "string"},
                        "field": {"type": "string"},
                    },
                },
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["field", "message"],
                        "properties": {
                            "line": {"type": "integer"},
                            "field": {"type": "string"},
                            "message": {"type": "string"},
                        },
                    },
                },
            },
        }),
    );
    schemas.insert(
        "Answer".into(),
        json!({
            "description": "a JSON object; lists carry `items` and `next` (the cursor of the next page, or null)",
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": {"type": "object"}},
                "next": {"type": ["string", "null"]},
            },
        }),
    );
    for r in route_table() {
        let op = operation(&r, &mut schemas);
        let item = paths.entry(r.path.to_owned()).or_insert_with(|| json!({}));
        item[r.method.as_str().to_ascii_lowercase()] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "OFD gateway admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Registers, tariffs, documents, alerts, FNS forwarding and resend jobs of the OFD gateway. Reference: docs/admin-api.md.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_in_the_document() {
        let doc = document();
        // the schemas of the request types are utoipa's own (their `{}` for "any JSON value"
        // does not read back into utoipa's types, so the document is checked as JSON here
        // and as OpenAPI by schemathesis in tests/tests/openapi_schemathesis.rs)
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(doc["paths"].as_object().expect("paths").len() >= 20);
        let mut ids = std::collections::HashSet::new();
        for r in route_table() {
            let op = &doc["paths"][r.path][r.method.as_str().to_ascii_lowercase()];
            assert!(op.is_object(), "{} {} is missing", r.method, r.path);
            assert!(ids.insert(op["operationId"].as_str().expect("id").to_owned()), "unique operation ids");
            assert!(op["responses"]["401"].is_object(), "{} {}", r.method, r.path);
            assert!(op["responses"][r.ok.as_str()].is_object(), "{} {}", r.method, r.path);
            if r.role == Role::Admin {
                assert!(op["responses"]["403"].is_object());
            }
        }
        // query parameters come from the handlers' types
        let list = &doc["paths"]["/v1/registers"]["get"]["parameters"];
        assert!(list.as_array().expect("params").iter().any(|p| p["name"] == "silent_for"), "{list}");
        let create = &doc["paths"]["/v1/registers"]["post"]["requestBody"];
        assert_eq!(create["required"], true, "{create}");
    }
}
