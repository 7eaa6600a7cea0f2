//! Tags on distributions: TagResource, UntagResource, ListTagsForResource
//! (`/2020-05-31/tagging?Operation=Tag|Untag&Resource=ARN`).

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::distributions::tag_pairs;
use super::{decode_body, query_param, xml_response, CfError};
use crate::AppState;

/// The distribution id of a `Resource` ARN that exists.
async fn resource(state: &AppState, query: Option<&str>) -> Result<String, CfError> {
    let arn = query_param(query, "Resource").unwrap_or_default();
    let prefix = format!(
        "arn:aws:cloudfront::{}:distribution/",
        state.inner.account_id
    );
    let Some(id) = arn.strip_prefix(&prefix) else {
        return Err(CfError::invalid_argument(format!(
            "The resource ARN {arn:?} is not a distribution of this account."
        )));
    };
    if state.inner.store.get_distribution(id).await?.is_none() {
        return Err(CfError::NotFound(
            "NoSuchResource",
            "The specified resource does not exist.".into(),
        ));
    }
    Ok(id.to_owned())
}

/// `POST /2020-05-31/tagging?Operation=Tag|Untag&Resource=ARN`
pub(super) async fn change(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, CfError> {
    let operation = query_param(query.as_deref(), "Operation").unwrap_or_default();
    if !matches!(operation.as_str(), "Tag" | "Untag") {
        return Err(CfError::NotFound("NotFound", "Unknown operation.".into()));
    }
    let id = resource(&state, query.as_deref()).await?;
    if operation == "Tag" {
        let tags = decode_body(&body, "Tags", "Tags")?;
        let pairs = tag_pairs(Some(&tags))?;
        let existing = state.inner.store.distribution_tags(&id).await?;
        let merged = existing
            .iter()
            .map(|(k, _)| k)
            .chain(pairs.iter().map(|(k, _)| k))
            .collect::<std::collections::HashSet<_>>()
            .len();
        if merged > 50 {
            return Err(CfError::BadRequest(
                "InvalidTagging",
                "A resource can have at most 50 tags.".into(),
            ));
        }
        state
            .inner
            .store
            .change_distribution_tags(&id, &pairs, &[])
            .await?;
    } else {
        let keys = decode_body(&body, "TagKeys", "TagKeys")?;
        let keys: Vec<String> = keys
            .get("Items")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        state
            .inner
            .store
            .change_distribution_tags(&id, &[], &keys)
            .await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /2020-05-31/tagging?Resource=ARN`
pub(super) async fn list(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, CfError> {
    let id = resource(&state, query.as_deref()).await?;
    let tags = state.inner.store.distribution_tags(&id).await?;
    let items: Vec<Value> = tags
        .iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect();
    xml_response(
        StatusCode::OK,
        "Tags",
        "Tags",
        &json!({ "Items": items }),
        &[],
    )
}
