//! The Lambda API (REST-JSON, 2015-03-31): routes, shared request decoding and the
//! `FunctionConfiguration` response shape. One handler file per resource family.

mod aliases;
mod functions;
pub mod invoke;
pub mod names;
mod tags;
pub mod validate;
mod versions;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::store::VersionRow;
use crate::AppState;
use names::{merge_qualifier, parse_function_ref, FunctionRef, Qualifier};

/// Length limit of `{FunctionName}` for Create/Update/Publish.
const SHORT_NAME: usize = 140;
/// Length limit of `{FunctionName}` for Get/Delete/List/Invoke.
const LONG_NAME: usize = 256;
/// Largest page any list operation returns.
const PAGE: i64 = 50;

/// The Lambda routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/2015-03-31/functions",
            post(functions::create).get(functions::list),
        )
        .route(
            "/2015-03-31/functions/",
            post(functions::create).get(functions::list),
        )
        .route(
            "/2015-03-31/functions/{name}",
            get(functions::get_function).delete(functions::delete),
        )
        .route(
            "/2015-03-31/functions/{name}/configuration",
            get(functions::get_configuration).put(functions::update_configuration),
        )
        .route(
            "/2015-03-31/functions/{name}/code",
            axum::routing::put(functions::update_code),
        )
        .route(
            "/2015-03-31/functions/{name}/versions",
            post(versions::publish).get(versions::list),
        )
        .route(
            "/2015-03-31/functions/{name}/invocations",
            post(invoke::invoke),
        )
        .route(
            "/2015-03-31/functions/{name}/aliases",
            post(aliases::create).get(aliases::list),
        )
        .route(
            "/2015-03-31/functions/{name}/aliases/{alias}",
            get(aliases::get)
                .put(aliases::update)
                .delete(aliases::delete),
        )
        .route(
            "/2017-03-31/tags/{arn}",
            get(tags::list).post(tags::tag).delete(tags::untag),
        )
        .route("/2016-08-19/account-settings", get(tags::account_settings))
        .route("/2016-08-19/account-settings/", get(tags::account_settings))
        .route("/ledge/code/{hex}", get(tags::download_code))
}

/// Parses a JSON request body; an empty body is `{}`.
fn parse_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| {
        ApiError::InvalidRequestContent(format!(
            "Could not parse request body into json: Could not parse payload into json: {e}"
        ))
    })
}

/// A JSON response with a status.
fn json_response(status: StatusCode, value: Value) -> Response {
    (status, axum::Json(value)).into_response()
}

/// `LastModified` for now.
fn now_lambda() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
        .to_string()
}

/// The request's `Host`, for URLs that point back at this server.
fn host(headers: &HeaderMap) -> String {
    headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned()
}

/// A function version selected by name and qualifier.
struct Selected {
    row: VersionRow,
    /// The qualifier as asked (for the ARN), `None` for an unqualified request.
    qualifier: Option<String>,
}

// === impl AppState (Lambda helpers) ===

impl AppState {
    /// Parses a `{FunctionName}` segment for this server's region and account.
    fn function_ref(&self, raw: &str, max_len: usize) -> Result<FunctionRef, ApiError> {
        parse_function_ref(raw, &self.inner.region, &self.inner.account_id, max_len)
    }

    /// Parses a name that must not carry a qualifier (Update*, PublishVersion, aliases...).
    fn unqualified(&self, raw: &str, max_len: usize) -> Result<String, ApiError> {
        let r = self.function_ref(raw, max_len)?;
        if r.qualifier.is_some() {
            return Err(ApiError::InvalidParameter(
                "This operation does not support a qualified function ARN or name.".into(),
            ));
        }
        Ok(r.name)
    }

    /// The unqualified ARN of a function.
    fn function_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{name}",
            self.inner.region, self.inner.account_id
        )
    }

    /// The not-found error for a function, with the ARN as asked.
    fn not_found(&self, name: &str, qualifier: Option<&str>) -> ApiError {
        let arn = self.function_arn(name);
        ApiError::NotFound(match qualifier {
            Some(q) => format!("Function not found: {arn}:{q}"),
            None => format!("Function not found: {arn}"),
        })
    }

    /// Resolves a name (with optional qualifier in it or in `query_qualifier`) to a version.
    async fn select(
        &self,
        raw: &str,
        query_qualifier: Option<String>,
    ) -> Result<Selected, ApiError> {
        let r = self.function_ref(raw, LONG_NAME)?;
        let qualifier = merge_qualifier(r.qualifier, query_qualifier)?;
        let version = match qualifier.as_deref() {
            None => 0,
            Some(q) => match Qualifier::parse(q) {
                Some(Qualifier::Latest) => 0,
                Some(Qualifier::Version(n)) => i64::try_from(n).unwrap_or(i64::MAX),
                Some(Qualifier::Alias(alias)) => {
                    let a = self
                        .inner
                        .store
                        .get_alias(&r.name, &alias)
                        .await?
                        .ok_or_else(|| self.not_found(&r.name, Some(q)))?;
                    match Qualifier::parse(&a.function_version) {
                        Some(Qualifier::Version(n)) => i64::try_from(n).unwrap_or(i64::MAX),
                        _ => 0,
                    }
                }
                None => {
                    return Err(ApiError::Validation(format!(
                        "1 validation error detected: Value '{q}' at 'qualifier' failed to satisfy constraint: Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)"
                    )))
                }
            },
        };
        let row = self
            .inner
            .store
            .get_version(&r.name, version)
            .await?
            .ok_or_else(|| self.not_found(&r.name, qualifier.as_deref()))?;
        Ok(Selected { row, qualifier })
    }

    /// The FunctionConfiguration JSON of a version. `arn_qualifier` is appended to the ARN;
    /// `full` adds the state members that ListFunctions leaves out.
    fn configuration(&self, row: &VersionRow, arn_qualifier: Option<&str>, full: bool) -> Value {
        let c = &row.config;
        let arn = match arn_qualifier {
            Some(q) => format!("{}:{q}", self.function_arn(&row.function_name)),
            None => self.function_arn(&row.function_name),
        };
        let version = if row.version == 0 {
            "$LATEST".to_owned()
        } else {
            row.version.to_string()
        };
        let mut out = Map::new();
        out.insert("FunctionName".into(), json!(row.function_name));
        out.insert("FunctionArn".into(), json!(arn));
        out.insert("Runtime".into(), json!(c.runtime));
        out.insert("Role".into(), json!(c.role));
        out.insert("Handler".into(), json!(c.handler));
        out.insert("CodeSize".into(), json!(row.code_size));
        out.insert("Description".into(), json!(c.description));
        out.insert("Timeout".into(), json!(c.timeout));
        out.insert("MemorySize".into(), json!(c.memory_size));
        out.insert("LastModified".into(), json!(c.last_modified));
        out.insert("CodeSha256".into(), json!(c.code_sha256));
        out.insert("Version".into(), json!(version));
        if !c.environment.is_empty() {
            out.insert("Environment".into(), json!({ "Variables": c.environment }));
        }
        out.insert("TracingConfig".into(), json!({"Mode": "PassThrough"}));
        out.insert("RevisionId".into(), json!(row.revision_id));
        if full {
            out.insert("State".into(), json!("Active"));
            out.insert("LastUpdateStatus".into(), json!("Successful"));
        }
        out.insert("PackageType".into(), json!("Zip"));
        out.insert("Architectures".into(), json!(c.architectures));
        out.insert("EphemeralStorage".into(), json!({"Size": 512}));
        out.insert(
            "SnapStart".into(),
            json!({"ApplyOn": "None", "OptimizationStatus": "Off"}),
        );
        out.insert(
            "LoggingConfig".into(),
            json!({"LogFormat": "Text", "LogGroup": format!("/aws/lambda/{}", row.function_name)}),
        );
        Value::Object(out)
    }

    /// The ARN qualifier of a version's own configuration (`None` for `$LATEST`).
    fn own_qualifier(row: &VersionRow) -> Option<String> {
        (row.version != 0).then(|| row.version.to_string())
    }
}

/// Encodes a list position as an opaque marker.
fn encode_marker(name: &str, version: i64) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{version}:{name}"))
}

/// Decodes a marker made by [`encode_marker`].
fn decode_marker(marker: &str) -> Result<(String, i64), ApiError> {
    use base64::Engine as _;
    let invalid = || ApiError::InvalidParameter(format!("Invalid marker: {marker}"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(marker)
        .map_err(|_| invalid())?;
    let raw = String::from_utf8(raw).map_err(|_| invalid())?;
    let (version, name) = raw.split_once(':').ok_or_else(invalid)?;
    Ok((name.to_owned(), version.parse().map_err(|_| invalid())?))
}

/// Checks `MaxItems` (1..=10000) and returns the page size.
fn page_size(max_items: Option<i64>) -> Result<i64, ApiError> {
    match max_items {
        None => Ok(PAGE),
        Some(n) if (1..=10_000).contains(&n) => Ok(n.min(PAGE)),
        Some(n) => Err(ApiError::Validation(format!(
            "1 validation error detected: Value '{n}' at 'maxItems' failed to satisfy constraint: Member must have value {}",
            if n < 1 { "greater than or equal to 1" } else { "less than or equal to 10000" }
        ))),
    }
}

/// Decoded query parameters.
struct QueryParams(Vec<(String, String)>);

// === impl QueryParams ===

impl QueryParams {
    fn parse(raw: Option<&str>) -> Self {
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        Self(
            raw.unwrap_or_default()
                .split('&')
                .filter(|item| !item.is_empty())
                .map(|item| {
                    let (n, v) = item.split_once('=').unwrap_or((item, ""));
                    (decode(n), decode(v))
                })
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    fn get_all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn max_items(&self) -> Result<i64, ApiError> {
        let n = match self.get("MaxItems") {
            None => None,
            Some(s) => Some(s.parse::<i64>().map_err(|_| {
                ApiError::Validation(format!(
                    "1 validation error detected: Value '{s}' at 'maxItems' failed to satisfy constraint: Member must be a number"
                ))
            })?),
        };
        page_size(n)
    }
}
