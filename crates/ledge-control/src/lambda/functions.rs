//! CreateFunction, GetFunction, GetFunctionConfiguration, ListFunctions,
//! UpdateFunctionCode, UpdateFunctionConfiguration and DeleteFunction.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use super::validate::{check_config, decode_package, ConfigInput, Package};
use super::{
    decode_marker, encode_marker, host, json_response, now_lambda, parse_body, QueryParams,
    LONG_NAME, SHORT_NAME,
};
use crate::error::ApiError;
use crate::store::{CreateFunctionError, DeleteError, UpdateError, VersionConfig, VersionRow};
use crate::AppState;

/// How long a `Code.Location` URL stays valid.
const CODE_URL_TTL: Duration = Duration::from_secs(600);

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct CodeInput {
    zip_file: Option<String>,
    s3_bucket: Option<String>,
    image_uri: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct EnvironmentInput {
    #[serde(default)]
    variables: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateRequest {
    function_name: Option<String>,
    runtime: Option<String>,
    role: Option<String>,
    handler: Option<String>,
    code: Option<CodeInput>,
    description: Option<String>,
    timeout: Option<i64>,
    memory_size: Option<i64>,
    publish: Option<bool>,
    environment: Option<EnvironmentInput>,
    architectures: Option<Vec<String>>,
    package_type: Option<String>,
    tags: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateCodeRequest {
    zip_file: Option<String>,
    s3_bucket: Option<String>,
    image_uri: Option<String>,
    publish: Option<bool>,
    dry_run: Option<bool>,
    revision_id: Option<String>,
    architectures: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateConfigRequest {
    role: Option<String>,
    handler: Option<String>,
    description: Option<String>,
    timeout: Option<i64>,
    memory_size: Option<i64>,
    environment: Option<EnvironmentInput>,
    runtime: Option<String>,
    revision_id: Option<String>,
}

fn missing(field: &str) -> ApiError {
    ApiError::Validation(format!(
        "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
    ))
}

fn code_source_error() -> ApiError {
    ApiError::InvalidParameter(
        "ledge accepts function code only as ZipFile; S3 and image sources are not supported."
            .into(),
    )
}

fn precondition_failed() -> ApiError {
    ApiError::PreconditionFailed(
        "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
            .into(),
    )
}

/// Refuses a package that would take the account over its code storage quota.
async fn check_storage(state: &AppState, size: usize) -> Result<(), ApiError> {
    let (used, _) = state.inner.store.usage().await?;
    if used.saturating_add(size as i64) > super::tags::TOTAL_CODE_SIZE {
        return Err(ApiError::CodeStorageExceeded(
            "Code storage limit exceeded.".into(),
        ));
    }
    Ok(())
}

/// `POST /2015-03-31/functions`
pub(super) async fn create(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: CreateRequest = parse_body(&body)?;
    let raw_name = req
        .function_name
        .as_deref()
        .ok_or_else(|| missing("functionName"))?;
    let name = state.unqualified(raw_name, SHORT_NAME)?;
    let role = req.role.as_deref().ok_or_else(|| missing("role"))?;
    let code = req.code.as_ref().ok_or_else(|| missing("code"))?;
    if req.package_type.as_deref().is_some_and(|p| p != "Zip") {
        return Err(ApiError::InvalidParameter(
            "ledge supports only PackageType Zip.".into(),
        ));
    }
    let environment = req.environment.as_ref().map(|e| &e.variables);
    check_config(&ConfigInput {
        role: Some(role),
        handler: req.handler.as_deref(),
        description: req.description.as_deref(),
        timeout: req.timeout,
        memory_size: req.memory_size,
        runtime: req.runtime.as_deref(),
        environment,
        architectures: req.architectures.as_deref(),
    })?;
    let runtime = req.runtime.clone().ok_or_else(|| {
        ApiError::InvalidParameter("Runtime and Handler are mandatory parameters for functions created with deployment packages.".into())
    })?;
    let handler = req.handler.clone().ok_or_else(|| {
        ApiError::InvalidParameter("Runtime and Handler are mandatory parameters for functions created with deployment packages.".into())
    })?;
    if code.s3_bucket.is_some() || code.image_uri.is_some() {
        return Err(code_source_error());
    }
    let zip = code.zip_file.as_deref().ok_or_else(code_source_error)?;
    let package = decode_package(zip)?;
    check_storage(&state, package.bytes.len()).await?;
    let row = VersionRow {
        function_name: name.clone(),
        version: 0,
        revision_id: String::new(),
        code_hex: package.hex.clone(),
        code_size: package.bytes.len() as i64,
        config: VersionConfig {
            runtime,
            role: role.to_owned(),
            handler,
            description: req.description.unwrap_or_default(),
            timeout: req.timeout.unwrap_or(3),
            memory_size: req.memory_size.unwrap_or(128),
            environment: environment.cloned().unwrap_or_default(),
            architectures: req
                .architectures
                .unwrap_or_else(|| vec!["x86_64".to_owned()]),
            code_sha256: package.sha256.clone(),
            last_modified: now_lambda(),
        },
    };
    // The blob goes first: a failure after it leaves an orphan for the sweep, never a
    // function without code.
    state.inner.blobs.put(&package.hex, package.bytes).await?;
    let now_millis = chrono::Utc::now().timestamp_millis();
    let created = state
        .inner
        .store
        .create_function(row, req.publish.unwrap_or(false), now_millis)
        .await
        .map_err(|e| match e {
            CreateFunctionError::AlreadyExists => {
                ApiError::Conflict(format!("Function already exist: {name}"))
            }
            CreateFunctionError::Database(e) => e.into(),
        })?;
    if let Some(tags) = req.tags.filter(|t| !t.is_empty()) {
        state.inner.store.tag(&name, &tags).await?;
    }
    let qualifier = AppState::own_qualifier(&created);
    Ok(json_response(
        StatusCode::CREATED,
        state.configuration(&created, qualifier.as_deref(), true),
    ))
}

/// `GET /2015-03-31/functions/{name}`
pub(super) async fn get_function(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let q = QueryParams::parse(query.as_deref());
    let sel = state.select(&raw, q.get("Qualifier")).await?;
    let location = crate::sigv4::presign_get(
        &state.inner.verifier.credentials,
        &host(&headers),
        &format!("/ledge/code/{}", sel.row.code_hex),
        &state.inner.region,
        "lambda",
        SystemTime::now(),
        CODE_URL_TTL,
    );
    let tags = state.inner.store.tags(&sel.row.function_name).await?;
    let mut out = json!({
        "Configuration": state.configuration(&sel.row, sel.qualifier.as_deref(), true),
        "Code": {"RepositoryType": "S3", "Location": location},
    });
    if sel.qualifier.is_none() {
        out["Tags"] = json!(tags);
    }
    Ok(json_response(StatusCode::OK, out))
}

/// `GET /2015-03-31/functions/{name}/configuration`
pub(super) async fn get_configuration(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let q = QueryParams::parse(query.as_deref());
    let sel = state.select(&raw, q.get("Qualifier")).await?;
    Ok(json_response(
        StatusCode::OK,
        state.configuration(&sel.row, sel.qualifier.as_deref(), true),
    ))
}

/// `GET /2015-03-31/functions/`
pub(super) async fn list(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let q = QueryParams::parse(query.as_deref());
    let limit = q.max_items()?;
    let all = match q.get("FunctionVersion").as_deref() {
        None => false,
        Some("ALL") => true,
        Some(other) => {
            return Err(ApiError::Validation(format!(
                "1 validation error detected: Value '{other}' at 'functionVersion' failed to satisfy constraint: Member must satisfy enum value set: [ALL]"
            )))
        }
    };
    if q.get("MasterRegion").is_some() {
        if !all {
            return Err(ApiError::InvalidParameter(
                "The FunctionVersion parameter must be set to ALL when MasterRegion is specified."
                    .into(),
            ));
        }
        // ledge keeps no Lambda@Edge replicas in other regions.
        return Ok(json_response(StatusCode::OK, json!({"Functions": []})));
    }
    let after = q.get("Marker").map(|m| decode_marker(&m)).transpose()?;
    let mut rows = state
        .inner
        .store
        .list_versions(
            None,
            !all,
            after.as_ref().map(|(n, v)| (n.as_str(), *v)),
            limit + 1,
        )
        .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let functions: Vec<_> = rows
        .iter()
        .map(|r| {
            let qualifier = if all {
                Some(AppState::own_qualifier(r).unwrap_or_else(|| "$LATEST".into()))
            } else {
                None
            };
            state.configuration(r, qualifier.as_deref(), false)
        })
        .collect();
    let mut out = json!({ "Functions": functions });
    if more {
        if let Some(last) = rows.last() {
            out["NextMarker"] = json!(encode_marker(&last.function_name, last.version));
        }
    }
    Ok(json_response(StatusCode::OK, out))
}

/// Applies `edit` to `$LATEST` in one transaction (see `Store::update_latest`).
async fn update_latest(
    state: &AppState,
    name: &str,
    expected_revision: Option<&str>,
    publish: bool,
    edit: impl FnOnce(&VersionRow) -> VersionRow,
) -> Result<VersionRow, ApiError> {
    match state
        .inner
        .store
        .update_latest(name, expected_revision, publish, edit)
        .await
    {
        Ok(row) => Ok(row),
        Err(UpdateError::NotFound) => Err(state.not_found(name, None)),
        Err(UpdateError::RevisionMismatch) => Err(precondition_failed()),
        Err(UpdateError::Database(e)) => Err(e.into()),
    }
}

/// `PUT /2015-03-31/functions/{name}/code`
pub(super) async fn update_code(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let name = state.unqualified(&raw, SHORT_NAME)?;
    let req: UpdateCodeRequest = parse_body(&body)?;
    check_config(&ConfigInput {
        architectures: req.architectures.as_deref(),
        ..Default::default()
    })?;
    if req.s3_bucket.is_some() || req.image_uri.is_some() {
        return Err(code_source_error());
    }
    let zip = req.zip_file.as_deref().ok_or_else(code_source_error)?;
    let Package { bytes, hex, sha256 } = decode_package(zip)?;
    let size = bytes.len() as i64;
    if req.dry_run.unwrap_or(false) {
        let current = state
            .inner
            .store
            .get_version(&name, 0)
            .await?
            .ok_or_else(|| state.not_found(&name, None))?;
        return Ok(json_response(
            StatusCode::OK,
            state.configuration(&current, None, true),
        ));
    }
    check_storage(&state, bytes.len()).await?;
    state.inner.blobs.put(&hex, bytes).await?;
    let now = now_lambda();
    let row = update_latest(
        &state,
        &name,
        req.revision_id.as_deref(),
        req.publish.unwrap_or(false),
        |cur| {
            let mut new = cur.clone();
            new.code_hex = hex.clone();
            new.code_size = size;
            new.config.code_sha256 = sha256.clone();
            new.config.last_modified = now.clone();
            if let Some(a) = &req.architectures {
                new.config.architectures = a.clone();
            }
            new
        },
    )
    .await?;
    let qualifier = AppState::own_qualifier(&row);
    Ok(json_response(
        StatusCode::OK,
        state.configuration(&row, qualifier.as_deref(), true),
    ))
}

/// `PUT /2015-03-31/functions/{name}/configuration`
pub(super) async fn update_configuration(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let name = state.unqualified(&raw, SHORT_NAME)?;
    let req: UpdateConfigRequest = parse_body(&body)?;
    let environment = req.environment.as_ref().map(|e| &e.variables);
    check_config(&ConfigInput {
        role: req.role.as_deref(),
        handler: req.handler.as_deref(),
        description: req.description.as_deref(),
        timeout: req.timeout,
        memory_size: req.memory_size,
        runtime: req.runtime.as_deref(),
        environment,
        architectures: None,
    })?;
    let now = now_lambda();
    let row = update_latest(&state, &name, req.revision_id.as_deref(), false, |cur| {
        let mut new = cur.clone();
        let c = &mut new.config;
        if let Some(v) = &req.role {
            c.role = v.clone();
        }
        if let Some(v) = &req.handler {
            c.handler = v.clone();
        }
        if let Some(v) = &req.description {
            c.description = v.clone();
        }
        if let Some(v) = req.timeout {
            c.timeout = v;
        }
        if let Some(v) = req.memory_size {
            c.memory_size = v;
        }
        if let Some(v) = &req.runtime {
            c.runtime = v.clone();
        }
        if let Some(v) = environment {
            c.environment = v.clone();
        }
        c.last_modified = now.clone();
        new
    })
    .await?;
    Ok(json_response(
        StatusCode::OK,
        state.configuration(&row, None, true),
    ))
}

/// `DELETE /2015-03-31/functions/{name}`
pub(super) async fn delete(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let q = QueryParams::parse(query.as_deref());
    let r = state.function_ref(&raw, LONG_NAME)?;
    let qualifier = super::names::merge_qualifier(r.qualifier, q.get("Qualifier"))?;
    let result = match qualifier.as_deref() {
        None => state.inner.store.delete_function(&r.name).await,
        Some(q) => match super::names::Qualifier::parse(q) {
            Some(super::names::Qualifier::Version(n)) => {
                let n = i64::try_from(n).unwrap_or(i64::MAX);
                state.inner.store.delete_version(&r.name, n).await
            }
            Some(super::names::Qualifier::Latest) => {
                return Err(ApiError::InvalidParameter(
                    "$LATEST version cannot be deleted without deleting the function.".into(),
                ))
            }
            _ => {
                return Err(ApiError::InvalidParameter(
                    "Deletion of aliases is not supported by DeleteFunction; use DeleteAlias."
                        .into(),
                ))
            }
        },
    };
    match result {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(DeleteError::NotFound) => Err(state.not_found(&r.name, qualifier.as_deref())),
        Err(DeleteError::AliasReferences(alias)) => Err(ApiError::Conflict(format!(
            "Unable to delete version because the following aliases reference it: [{alias}]"
        ))),
        Err(DeleteError::Replicated(version)) => {
            let arn = state.function_arn(&r.name);
            let arn = match version {
                Some(v) => format!("{arn}:{v}"),
                None => arn,
            };
            Err(ApiError::InvalidParameter(format!(
                "Lambda was unable to delete {arn} because it is a replicated function. \
                 Please see our documentation for Deleting Lambda@Edge Functions and Replicas."
            )))
        }
        Err(DeleteError::Database(e)) => Err(e.into()),
    }
}
