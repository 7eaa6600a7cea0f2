//! CreateAlias, GetAlias, ListAliases, UpdateAlias and DeleteAlias.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::names::{is_name, Qualifier};
use super::{json_response, parse_body, QueryParams, LONG_NAME, SHORT_NAME};
use crate::error::{ApiError, Violations};
use crate::store::{AliasError, AliasRow};
use crate::AppState;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateRequest {
    name: Option<String>,
    function_version: Option<String>,
    description: Option<String>,
    routing_config: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateRequest {
    function_version: Option<String>,
    description: Option<String>,
    routing_config: Option<Value>,
    revision_id: Option<String>,
}

fn check_alias_name(name: &str) -> Result<(), ApiError> {
    let mut v = Violations::default();
    if !is_name(name, 128) || name.bytes().all(|b| b.is_ascii_digit()) {
        v.add(
            name,
            "name",
            "Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)",
        );
    }
    v.finish()
}

fn check_version(version: &str) -> Result<(), ApiError> {
    let mut v = Violations::default();
    if !matches!(
        Qualifier::parse(version),
        Some(Qualifier::Latest | Qualifier::Version(_))
    ) {
        v.add(
            version,
            "functionVersion",
            r"Member must satisfy regular expression pattern: (\$LATEST|[0-9]+)",
        );
    }
    v.finish()
}

fn check_description(d: Option<&str>) -> Result<(), ApiError> {
    let mut v = Violations::default();
    if let Some(d) = d.filter(|d| d.chars().count() > 256) {
        v.add(
            d,
            "description",
            "Member must have length less than or equal to 256",
        );
    }
    v.finish()
}

// === impl AppState (aliases) ===

impl AppState {
    fn alias_json(&self, a: &AliasRow) -> Value {
        let mut out = json!({
            "AliasArn": format!("{}:{}", self.function_arn(&a.function_name), a.name),
            "Name": a.name,
            "FunctionVersion": a.function_version,
            "Description": a.description,
            "RevisionId": a.revision_id,
        });
        if let Some(rc) = a
            .routing_config
            .as_deref()
            .and_then(|s| serde_json::from_str::<Value>(s).ok())
        {
            out["RoutingConfig"] = rc;
        }
        out
    }

    fn alias_not_found(&self, function: &str, alias: &str) -> ApiError {
        ApiError::NotFound(format!(
            "Alias not found: {}:{alias}",
            self.function_arn(function)
        ))
    }

    fn alias_error(&self, function: &str, alias: &str, version: &str, e: AliasError) -> ApiError {
        match e {
            AliasError::FunctionNotFound => self.not_found(function, None),
            AliasError::AliasNotFound => self.alias_not_found(function, alias),
            AliasError::VersionNotFound => self.not_found(function, Some(version)),
            AliasError::AlreadyExists => ApiError::Conflict(format!(
                "Alias already exists: {}:{alias}",
                self.function_arn(function)
            )),
            AliasError::RevisionMismatch => ApiError::PreconditionFailed(
                "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id".into(),
            ),
            AliasError::Database(e) => e.into(),
        }
    }
}

/// `POST /2015-03-31/functions/{name}/aliases`
pub(super) async fn create(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let function = state.unqualified(&raw, SHORT_NAME)?;
    let req: CreateRequest = parse_body(&body)?;
    let name = req.name.ok_or_else(|| {
        ApiError::Validation("1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null".into())
    })?;
    let version = req.function_version.ok_or_else(|| {
        ApiError::Validation("1 validation error detected: Value null at 'functionVersion' failed to satisfy constraint: Member must not be null".into())
    })?;
    check_alias_name(&name)?;
    check_version(&version)?;
    check_description(req.description.as_deref())?;
    let row = AliasRow {
        function_name: function.clone(),
        name: name.clone(),
        function_version: version.clone(),
        description: req.description.unwrap_or_default(),
        routing_config: req.routing_config.map(|v| v.to_string()),
        revision_id: String::new(),
    };
    let created = state
        .inner
        .store
        .create_alias(row)
        .await
        .map_err(|e| state.alias_error(&function, &name, &version, e))?;
    Ok(json_response(
        StatusCode::CREATED,
        state.alias_json(&created),
    ))
}

/// `GET /2015-03-31/functions/{name}/aliases/{alias}`
pub(super) async fn get(
    State(state): State<AppState>,
    Path((raw, alias)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let function = state.unqualified(&raw, SHORT_NAME)?;
    let row = state
        .inner
        .store
        .get_alias(&function, &alias)
        .await?
        .ok_or_else(|| state.alias_not_found(&function, &alias))?;
    Ok(json_response(StatusCode::OK, state.alias_json(&row)))
}

/// `GET /2015-03-31/functions/{name}/aliases`
pub(super) async fn list(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let function = state.unqualified(&raw, LONG_NAME)?;
    let q = QueryParams::parse(query.as_deref());
    let limit = q.max_items()?;
    if state.inner.store.get_version(&function, 0).await?.is_none() {
        return Err(state.not_found(&function, None));
    }
    let after = q.get("Marker").unwrap_or_default();
    let version = q.get("FunctionVersion");
    let mut rows = state
        .inner
        .store
        .list_aliases(&function, version.as_deref(), &after, limit + 1)
        .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let aliases: Vec<_> = rows.iter().map(|a| state.alias_json(a)).collect();
    let mut out = json!({ "Aliases": aliases });
    if more {
        if let Some(last) = rows.last() {
            out["NextMarker"] = json!(last.name);
        }
    }
    Ok(json_response(StatusCode::OK, out))
}

/// `PUT /2015-03-31/functions/{name}/aliases/{alias}`
pub(super) async fn update(
    State(state): State<AppState>,
    Path((raw, alias)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let function = state.unqualified(&raw, SHORT_NAME)?;
    let req: UpdateRequest = parse_body(&body)?;
    if let Some(v) = &req.function_version {
        check_version(v)?;
    }
    check_description(req.description.as_deref())?;
    let current = state
        .inner
        .store
        .get_alias(&function, &alias)
        .await?
        .ok_or_else(|| state.alias_not_found(&function, &alias))?;
    let base = match &req.revision_id {
        Some(r) if r != &current.revision_id => {
            return Err(state.alias_error(&function, &alias, "", AliasError::RevisionMismatch))
        }
        Some(r) => r.clone(),
        None => current.revision_id.clone(),
    };
    let new = AliasRow {
        function_version: req
            .function_version
            .clone()
            .unwrap_or(current.function_version.clone()),
        description: req.description.unwrap_or(current.description.clone()),
        routing_config: match req.routing_config {
            Some(v) => Some(v.to_string()),
            None => current.routing_config.clone(),
        },
        ..current
    };
    let version = new.function_version.clone();
    let updated = state
        .inner
        .store
        .update_alias(&base, new)
        .await
        .map_err(|e| state.alias_error(&function, &alias, &version, e))?;
    Ok(json_response(StatusCode::OK, state.alias_json(&updated)))
}

/// `DELETE /2015-03-31/functions/{name}/aliases/{alias}`
pub(super) async fn delete(
    State(state): State<AppState>,
    Path((raw, alias)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let function = state.unqualified(&raw, SHORT_NAME)?;
    // Lambda answers 204 whether or not the alias existed.
    state.inner.store.delete_alias(&function, &alias).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
