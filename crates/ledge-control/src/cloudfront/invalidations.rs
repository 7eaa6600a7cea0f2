//! Invalidations: Create (idempotent by CallerReference), Get, List.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::{
    decode_body, deploy_status, location, max_items, now_iso, query_param, random_id, xml_response,
    CfError,
};
use crate::store::InvalidationRow;
use crate::AppState;

/// Most paths in one batch.
const MAX_BATCH: usize = 3000;
/// Longest path.
const MAX_PATH: usize = 4000;

fn no_such_invalidation() -> CfError {
    CfError::NotFound(
        "NoSuchInvalidation",
        "The specified invalidation does not exist.".into(),
    )
}

/// Checks the paths of a batch (`apis.md` §3.5).
fn check_paths(batch: &Value) -> Result<(), CfError> {
    let paths = batch.get("Paths").map_or(&[][..], |p| {
        p.get("Items")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
    });
    if paths.is_empty() {
        return Err(CfError::invalid_argument(
            "An invalidation batch must contain at least one path.",
        ));
    }
    if paths.len() > MAX_BATCH {
        return Err(CfError::TooLarge(
            "BatchTooLarge",
            format!("Invalidation batch specified is too large: at most {MAX_BATCH} paths."),
        ));
    }
    for p in paths {
        let p = p.as_str().unwrap_or_default();
        if p.is_empty() || p.chars().count() > MAX_PATH || p.chars().any(char::is_control) {
            return Err(CfError::invalid_argument(format!(
                "The invalidation path {p:?} is not valid."
            )));
        }
    }
    Ok(())
}

fn invalidation_value(row: &InvalidationRow, status: &str) -> Value {
    json!({
        "Id": row.id,
        "Status": status,
        "CreateTime": row.create_time,
        "InvalidationBatch": {
            "Paths": row.paths,
            "CallerReference": row.caller_reference,
        }
    })
}

/// `POST /2020-05-31/distribution/{id}/invalidation`
pub(super) async fn create(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, CfError> {
    if state.inner.store.get_distribution(&id).await?.is_none() {
        return Err(CfError::no_such_distribution());
    }
    let batch = decode_body(&body, "InvalidationBatch", "InvalidationBatch")?;
    check_paths(&batch)?;
    let deployed = state.inner.store.deployed_version().await?;
    let row = InvalidationRow {
        id: random_id("I", 13, false),
        distribution_id: id.clone(),
        caller_reference: batch
            .get("CallerReference")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        paths: batch.get("Paths").cloned().unwrap_or_default(),
        create_time: now_iso(),
        config_version: 0,
    };
    let (row, fresh) = state
        .inner
        .store
        .create_invalidation(&row, deployed)
        .await?;
    let status = if fresh {
        "InProgress"
    } else {
        deploy_status(deployed, row.config_version, "Completed")
    };
    xml_response(
        StatusCode::CREATED,
        "Invalidation",
        "Invalidation",
        &invalidation_value(&row, status),
        &[(
            "Location",
            location(
                &headers,
                &format!("/2020-05-31/distribution/{id}/invalidation/{}", row.id),
            ),
        )],
    )
}

/// `GET /2020-05-31/distribution/{id}/invalidation/{inv}`
pub(super) async fn get(
    State(state): State<AppState>,
    Path((id, inv)): Path<(String, String)>,
) -> Result<Response, CfError> {
    if state.inner.store.get_distribution(&id).await?.is_none() {
        return Err(CfError::no_such_distribution());
    }
    let row = state
        .inner
        .store
        .get_invalidation(&id, &inv)
        .await?
        .ok_or_else(no_such_invalidation)?;
    let deployed = state.inner.store.deployed_version().await?;
    xml_response(
        StatusCode::OK,
        "Invalidation",
        "Invalidation",
        &invalidation_value(
            &row,
            deploy_status(deployed, row.config_version, "Completed"),
        ),
        &[],
    )
}

/// `GET /2020-05-31/distribution/{id}/invalidation?Marker=&MaxItems=`
pub(super) async fn list(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, CfError> {
    if state.inner.store.get_distribution(&id).await?.is_none() {
        return Err(CfError::no_such_distribution());
    }
    let limit = max_items(query.as_deref())?;
    let marker = query_param(query.as_deref(), "Marker").unwrap_or_default();
    let mut rows = state
        .inner
        .store
        .list_invalidations(
            &id,
            Some(marker.as_str()).filter(|m| !m.is_empty()),
            limit + 1,
        )
        .await?;
    let truncated = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let deployed = state.inner.store.deployed_version().await?;
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "Id": r.id,
                "CreateTime": r.create_time,
                "Status": deploy_status(deployed, r.config_version, "Completed"),
            })
        })
        .collect();
    let mut out = json!({
        "Marker": marker,
        "MaxItems": limit,
        "IsTruncated": truncated,
        "Quantity": items.len(),
    });
    if truncated {
        if let Some(last) = rows.last() {
            out["NextMarker"] = json!(last.id);
        }
    }
    if !items.is_empty() {
        out["Items"] = Value::Array(items);
    }
    xml_response(
        StatusCode::OK,
        "InvalidationList",
        "InvalidationList",
        &out,
        &[],
    )
}
