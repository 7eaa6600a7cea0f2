//! PublishVersion and ListVersionsByFunction.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use super::{
    decode_marker, encode_marker, json_response, now_lambda, parse_body, QueryParams, LONG_NAME,
    SHORT_NAME,
};
use crate::error::{ApiError, Violations};
use crate::store::PublishError;
use crate::AppState;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PublishRequest {
    code_sha256: Option<String>,
    description: Option<String>,
    revision_id: Option<String>,
}

/// `POST /2015-03-31/functions/{name}/versions`
pub(super) async fn publish(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let name = state.unqualified(&raw, SHORT_NAME)?;
    let req: PublishRequest = parse_body(&body)?;
    if let Some(d) = &req.description {
        let mut v = Violations::default();
        if d.chars().count() > 256 {
            v.add(
                d,
                "description",
                "Member must have length less than or equal to 256",
            );
        }
        v.finish()?;
    }
    let version = state
        .inner
        .store
        .publish(
            &name,
            req.code_sha256.as_deref(),
            req.revision_id.as_deref(),
            req.description,
            &now_lambda(),
        )
        .await
        .map_err(|e| match e {
            PublishError::NotFound => state.not_found(&name, None),
            PublishError::CodeShaMismatch { current } => ApiError::InvalidParameter(format!(
                "CodeSHA256 ({}) is different from current CodeSHA256 in $LATEST ({current}). Please try again with the CodeSHA256 in $LATEST.",
                req.code_sha256.as_deref().unwrap_or_default()
            )),
            PublishError::RevisionMismatch => ApiError::PreconditionFailed(
                "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id".into(),
            ),
            PublishError::Database(e) => e.into(),
        })?;
    let qualifier = version.version.to_string();
    Ok(json_response(
        StatusCode::CREATED,
        state.configuration(&version, Some(&qualifier), true),
    ))
}

/// `GET /2015-03-31/functions/{name}/versions`
pub(super) async fn list(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let name = state.unqualified(&raw, LONG_NAME)?;
    let q = QueryParams::parse(query.as_deref());
    let limit = q.max_items()?;
    let after = q.get("Marker").map(|m| decode_marker(&m)).transpose()?;
    let after = match &after {
        Some((n, v)) if n == &name => Some((n.as_str(), *v)),
        Some(_) => return Err(ApiError::InvalidParameter("Invalid marker".into())),
        None => None,
    };
    let mut rows = state
        .inner
        .store
        .list_versions(Some(&name), false, after, limit + 1)
        .await?;
    if rows.is_empty() && after.is_none() {
        return Err(state.not_found(&name, None));
    }
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let versions: Vec<_> = rows
        .iter()
        .map(|r| {
            let qualifier = AppState::own_qualifier(r).unwrap_or_else(|| "$LATEST".into());
            state.configuration(r, Some(&qualifier), false)
        })
        .collect();
    let mut out = json!({ "Versions": versions });
    if more {
        if let Some(last) = rows.last() {
            out["NextMarker"] = json!(encode_marker(&last.function_name, last.version));
        }
    }
    Ok(json_response(StatusCode::OK, out))
}
