//! TagResource, UntagResource, ListTags, GetAccountSettings, and the package download that
//! `GetFunction`'s `Code.Location` points at.

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use super::{json_response, parse_body, validate, QueryParams, LONG_NAME};
use crate::error::ApiError;
use crate::AppState;

/// Per-account code storage quota (75 GB).
pub(super) const TOTAL_CODE_SIZE: i64 = 80_530_636_800;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagRequest {
    tags: Option<BTreeMap<String, String>>,
}

// === impl AppState (tags) ===

impl AppState {
    /// The function named by a tagging ARN, which must be a full, unqualified function ARN.
    async fn tagged_function(&self, arn: &str) -> Result<String, ApiError> {
        if !arn.starts_with("arn:") {
            return Err(ApiError::Validation(format!(
                "1 validation error detected: Value '{arn}' at 'resource' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*):lambda:[a-z]{{2}}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{{1}}:\\d{{12}}:function:[a-zA-Z0-9-_]+(:(\\$LATEST|[a-zA-Z0-9-_]+))?"
            )));
        }
        let name = self.unqualified(arn, LONG_NAME)?;
        if self.inner.store.get_version(&name, 0).await?.is_none() {
            return Err(self.not_found(&name, None));
        }
        Ok(name)
    }
}

/// `GET /2017-03-31/tags/{arn}`
pub(super) async fn list(
    State(state): State<AppState>,
    Path(arn): Path<String>,
) -> Result<Response, ApiError> {
    let name = state.tagged_function(&arn).await?;
    let tags = state.inner.store.tags(&name).await?;
    Ok(json_response(StatusCode::OK, json!({ "Tags": tags })))
}

/// `POST /2017-03-31/tags/{arn}`
pub(super) async fn tag(
    State(state): State<AppState>,
    Path(arn): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let name = state.tagged_function(&arn).await?;
    let req: TagRequest = parse_body(&body)?;
    let tags = req.tags.ok_or_else(|| {
        ApiError::Validation("1 validation error detected: Value null at 'tags' failed to satisfy constraint: Member must not be null".into())
    })?;
    if let Some((k, _)) = tags
        .iter()
        .find(|(k, v)| k.is_empty() || k.len() > 128 || v.len() > 256 || k.starts_with("aws:"))
    {
        return Err(ApiError::InvalidParameter(format!(
            "Invalid tag key or value: {k}"
        )));
    }
    if !state.inner.store.tag(&name, &tags).await? {
        return Err(state.not_found(&name, None));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /2017-03-31/tags/{arn}?tagKeys=…`
pub(super) async fn untag(
    State(state): State<AppState>,
    Path(arn): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let name = state.tagged_function(&arn).await?;
    let keys = QueryParams::parse(query.as_deref()).get_all("tagKeys");
    if !state.inner.store.untag(&name, &keys).await? {
        return Err(state.not_found(&name, None));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /2016-08-19/account-settings/`
pub(super) async fn account_settings(State(state): State<AppState>) -> Result<Response, ApiError> {
    let (code_size, functions) = state.inner.store.usage().await?;
    Ok(json_response(
        StatusCode::OK,
        json!({
            "AccountLimit": {
                "TotalCodeSize": TOTAL_CODE_SIZE,
                "CodeSizeUnzipped": validate::MAX_UNZIPPED,
                "CodeSizeZipped": 52_428_800,
                "ConcurrentExecutions": 1000,
                "UnreservedConcurrentExecutions": 1000,
            },
            "AccountUsage": {
                "TotalCodeSize": code_size,
                "FunctionCount": functions,
            },
        }),
    ))
}

/// `GET /ledge/code/{hex}` (presigned): the package bytes.
pub(super) async fn download_code(
    State(state): State<AppState>,
    Path(hex): Path<String>,
) -> Result<Response, ApiError> {
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::NotFound("No such package".into()));
    }
    let bytes = match state.inner.blobs.get(&hex).await {
        Ok(b) => b,
        Err(object_store::Error::NotFound { .. }) => {
            return Err(ApiError::NotFound("No such package".into()))
        }
        Err(e) => return Err(e.into()),
    };
    Ok(([(header::CONTENT_TYPE, "application/zip")], bytes).into_response())
}
