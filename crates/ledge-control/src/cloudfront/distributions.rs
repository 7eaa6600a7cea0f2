//! Distributions: Create (+WithTags), Get, GetConfig, Update, Delete, List.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::validate::{self, Checked};
use super::{
    decode_body, defaults, deploy_status, if_match, location, max_items, new_etag, now_iso,
    query_param, random_id, xml_response, CfError,
};
use crate::store::{DistributionRow, DistributionWrite};
use crate::AppState;

/// A decoded write: the config with defaults, what it references, and tags (WithTags).
struct Command {
    config: Value,
    checked: Checked,
    tags: Vec<(String, String)>,
}

// === impl AppState (CloudFront distribution helpers) ===

impl AppState {
    /// `arn:aws:cloudfront::ACCOUNT:distribution/ID`.
    pub(crate) fn distribution_arn(&self, id: &str) -> String {
        format!(
            "arn:aws:cloudfront::{}:distribution/{id}",
            self.inner.account_id
        )
    }

    /// Decodes, validates and completes a `DistributionConfig`, resolving its references
    /// (Lambda versions, policies) against the store.
    async fn distribution_command(&self, config: Value) -> Result<Command, CfError> {
        let checked = validate::distribution(&config, &self.inner.region, &self.inner.account_id)?;
        for a in &checked.associations {
            let row = self
                .inner
                .store
                .get_version(&a.function, a.version)
                .await?
                .ok_or_else(|| {
                    CfError::BadRequest(
                        "InvalidLambdaFunctionAssociation",
                        format!("The function does not exist. ARN: {}", a.arn),
                    )
                })?;
            validate::lambda_version(a, &row)?;
        }
        for id in &checked.cache_policies {
            if !self.cache_policy_exists(id).await? {
                return Err(CfError::NotFound(
                    "NoSuchCachePolicy",
                    format!("The cache policy does not exist: {id}"),
                ));
            }
        }
        for id in &checked.origin_request_policies {
            if !self.origin_request_policy_exists(id).await? {
                return Err(CfError::NotFound(
                    "NoSuchOriginRequestPolicy",
                    format!("The origin request policy does not exist: {id}"),
                ));
            }
        }
        let mut config = config;
        defaults::distribution(&mut config);
        // The edge's typed form must come out of it, or the feed could not carry it.
        if let Err(e) = ledge_model::api_form::distribution_config_from_api(&config) {
            return Err(CfError::invalid_argument(format!(
                "The distribution config is not valid: {e}"
            )));
        }
        Ok(Command {
            config,
            checked,
            tags: Vec::new(),
        })
    }

    /// The `Distribution` response object of a row.
    async fn distribution_value(
        &self,
        row: &DistributionRow,
        fresh: bool,
    ) -> Result<Value, CfError> {
        let deployed = self.inner.store.deployed_version().await?;
        let status = if fresh {
            "InProgress"
        } else {
            deploy_status(deployed, row.config_version, "Deployed")
        };
        let batches = self
            .inner
            .store
            .invalidations_in_progress(&row.id, deployed)
            .await?;
        Ok(json!({
            "Id": row.id,
            "ARN": self.distribution_arn(&row.id),
            "Status": status,
            "LastModifiedTime": row.last_modified,
            "InProgressInvalidationBatches": batches,
            "DomainName": row.domain_name,
            "ActiveTrustedSigners": {"Enabled": false, "Quantity": 0},
            "ActiveTrustedKeyGroups": {"Enabled": false, "Quantity": 0},
            "DistributionConfig": row.config,
        }))
    }

    async fn distribution_or_404(&self, id: &str) -> Result<DistributionRow, CfError> {
        self.inner
            .store
            .get_distribution(id)
            .await?
            .ok_or_else(CfError::no_such_distribution)
    }
}

fn write_of(cmd: &Command) -> DistributionWrite {
    let mut policies = cmd.checked.cache_policies.clone();
    policies.extend(cmd.checked.origin_request_policies.iter().cloned());
    DistributionWrite {
        config: cmd.config.clone(),
        etag: new_etag(),
        last_modified: now_iso(),
        aliases: cmd.checked.aliases.clone(),
        lambda: cmd
            .checked
            .associations
            .iter()
            .map(|a| (a.function.clone(), a.version))
            .collect(),
        policies,
    }
}

/// `Tags{Items[{Key, Value}]}` as pairs, checked as CloudFront does.
pub(super) fn tag_pairs(tags: Option<&Value>) -> Result<Vec<(String, String)>, CfError> {
    let items = tags
        .and_then(|t| t.get("Items"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut out = Vec::with_capacity(items.len());
    for t in items {
        let key = t.get("Key").and_then(Value::as_str).unwrap_or_default();
        let value = t.get("Value").and_then(Value::as_str).unwrap_or_default();
        if key.is_empty() || key.len() > 128 || value.len() > 256 || key.starts_with("aws:") {
            return Err(CfError::BadRequest(
                "InvalidTagging",
                format!("The tag {key:?} is not valid."),
            ));
        }
        out.push((key.to_owned(), value.to_owned()));
    }
    if out.len() > 50 {
        return Err(CfError::BadRequest(
            "InvalidTagging",
            "A resource can have at most 50 tags.".into(),
        ));
    }
    Ok(out)
}

/// `POST /2020-05-31/distribution[?WithTags]`
pub(super) async fn create(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, CfError> {
    let with_tags = query_param(query.as_deref(), "WithTags").is_some();
    let (config, tags) = if with_tags {
        let mut v = decode_body(
            &body,
            "DistributionConfigWithTags",
            "DistributionConfigWithTags",
        )?;
        let tags = tag_pairs(v.get("Tags"))?;
        (
            v.get_mut("DistributionConfig")
                .map(Value::take)
                .unwrap_or_default(),
            tags,
        )
    } else {
        (
            decode_body(&body, "DistributionConfig", "DistributionConfig")?,
            Vec::new(),
        )
    };
    let mut cmd = state.distribution_command(config).await?;
    cmd.tags = tags;
    let caller_reference = cmd
        .config
        .get("CallerReference")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let id = random_id("E", 13, false);
    let domain = format!("{}.{}", random_id("d", 13, true), state.inner.edge_domain);
    let row = state
        .inner
        .store
        .create_distribution(&id, &caller_reference, &domain, &write_of(&cmd), &cmd.tags)
        .await?;
    let value = state.distribution_value(&row, true).await?;
    xml_response(
        StatusCode::CREATED,
        "Distribution",
        "Distribution",
        &value,
        &[
            (
                "Location",
                location(&headers, &format!("/2020-05-31/distribution/{id}")),
            ),
            ("ETag", row.etag.clone()),
        ],
    )
}

/// `GET /2020-05-31/distribution/{id}`
pub(super) async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, CfError> {
    let row = state.distribution_or_404(&id).await?;
    let value = state.distribution_value(&row, false).await?;
    xml_response(
        StatusCode::OK,
        "Distribution",
        "Distribution",
        &value,
        &[("ETag", row.etag.clone())],
    )
}

/// `GET /2020-05-31/distribution/{id}/config`
pub(super) async fn get_config(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, CfError> {
    let row = state.distribution_or_404(&id).await?;
    xml_response(
        StatusCode::OK,
        "DistributionConfig",
        "DistributionConfig",
        &row.config,
        &[("ETag", row.etag.clone())],
    )
}

/// `PUT /2020-05-31/distribution/{id}/config` with `If-Match`
pub(super) async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, CfError> {
    // Unknown ids are reported before a missing If-Match or a bad body.
    state.distribution_or_404(&id).await?;
    let etag = if_match(&headers)?;
    let config = decode_body(&body, "DistributionConfig", "DistributionConfig")?;
    let cmd = state.distribution_command(config).await?;
    let row = state
        .inner
        .store
        .update_distribution(&id, &etag, &write_of(&cmd))
        .await?;
    let value = state.distribution_value(&row, true).await?;
    xml_response(
        StatusCode::OK,
        "Distribution",
        "Distribution",
        &value,
        &[("ETag", row.etag.clone())],
    )
}

/// `DELETE /2020-05-31/distribution/{id}` with `If-Match`
pub(super) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, CfError> {
    state.distribution_or_404(&id).await?;
    let etag = if_match(&headers)?;
    state.inner.store.delete_distribution(&id, &etag).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The `DistributionSummary` of a row.
fn summary(state: &AppState, row: &DistributionRow, deployed: Option<i64>) -> Value {
    let mut out = Map::new();
    out.insert("Id".into(), json!(row.id));
    out.insert("ARN".into(), json!(state.distribution_arn(&row.id)));
    out.insert("ETag".into(), json!(row.etag));
    out.insert(
        "Status".into(),
        json!(deploy_status(deployed, row.config_version, "Deployed")),
    );
    out.insert("LastModifiedTime".into(), json!(row.last_modified));
    out.insert("DomainName".into(), json!(row.domain_name));
    for key in [
        "Aliases",
        "Origins",
        "OriginGroups",
        "DefaultCacheBehavior",
        "CacheBehaviors",
        "CustomErrorResponses",
        "Comment",
        "PriceClass",
        "Enabled",
        "ViewerCertificate",
        "Restrictions",
        "WebACLId",
        "HttpVersion",
        "IsIPV6Enabled",
        "Staging",
        "ConnectionMode",
        "AnycastIpListId",
    ] {
        if let Some(v) = row.config.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    if !out.contains_key("Staging") {
        out.insert("Staging".into(), json!(false));
    }
    Value::Object(out)
}

/// `GET /2020-05-31/distribution?Marker=&MaxItems=`
pub(super) async fn list(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, CfError> {
    let limit = max_items(query.as_deref())?;
    let marker = query_param(query.as_deref(), "Marker").unwrap_or_default();
    let after = if marker.is_empty() {
        0
    } else {
        state
            .inner
            .store
            .get_distribution(&marker)
            .await?
            .map(|r| r.seq)
            .ok_or_else(|| CfError::invalid_argument(format!("Invalid marker: {marker}")))?
    };
    let mut rows = state
        .inner
        .store
        .list_distributions(after, limit + 1)
        .await?;
    let truncated = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let deployed = state.inner.store.deployed_version().await?;
    let items: Vec<Value> = rows.iter().map(|r| summary(&state, r, deployed)).collect();
    let mut list = json!({
        "Marker": marker,
        "MaxItems": limit,
        "IsTruncated": truncated,
        "Quantity": items.len(),
    });
    if truncated {
        if let Some(last) = rows.last() {
            list["NextMarker"] = json!(last.id);
        }
    }
    if !items.is_empty() {
        list["Items"] = Value::Array(items);
    }
    xml_response(
        StatusCode::OK,
        "DistributionList",
        "DistributionList",
        &list,
        &[],
    )
}
