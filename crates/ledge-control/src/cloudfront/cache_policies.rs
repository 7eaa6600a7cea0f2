//! Cache policies and origin request policies: the managed ones (fixed ids, read-only) and
//! custom CRUD. Both families share one implementation, parameterized by [`Family`].

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ledge_model::policy::{
    managed_cache_policies, managed_origin_request_policies, CachePolicyConfig, CookiesConfig,
    HeadersConfig, OriginRequestPolicyConfig, QueryStringsConfig,
};
use serde_json::{json, Map, Value};

use super::error::policy_error;
use super::validate::items;
use super::{
    decode_body, defaults, if_match, location, max_items, new_etag, now_iso, query_param,
    xml_response, CfError,
};
use crate::store::PolicyKind;
use crate::AppState;

/// ETag of every managed policy (they never change).
const MANAGED_ETAG: &str = "E23ZP02F085DFQ";
/// `LastModifiedTime` reported for managed policies.
const MANAGED_TIME: &str = "2020-06-01T00:00:00.000Z";
/// Most headers, cookies or query strings in one policy.
const MAX_NAMES: usize = 10;

/// One policy family's names.
#[derive(Debug, Clone, Copy)]
struct Family {
    kind: PolicyKind,
    /// `CachePolicy` / `OriginRequestPolicy`: the response object and error-code prefix.
    object: &'static str,
    /// The config shape and root element.
    config: &'static str,
    /// The list shape and root element.
    list: &'static str,
    /// Path segment.
    path: &'static str,
}

const CACHE: Family = Family {
    kind: PolicyKind::Cache,
    object: "CachePolicy",
    config: "CachePolicyConfig",
    list: "CachePolicyList",
    path: "cache-policy",
};

const ORIGIN: Family = Family {
    kind: PolicyKind::OriginRequest,
    object: "OriginRequestPolicy",
    config: "OriginRequestPolicyConfig",
    list: "OriginRequestPolicyList",
    path: "origin-request-policy",
};

/// `{Quantity, Items?}` of names.
fn name_list(names: &[String]) -> Value {
    if names.is_empty() {
        json!({"Quantity": 0})
    } else {
        json!({"Quantity": names.len(), "Items": names})
    }
}

fn headers_form(h: &HeadersConfig) -> Value {
    json!({"HeaderBehavior": h.header_behavior, "Headers": name_list(&h.headers)})
}

fn cookies_form(c: &CookiesConfig) -> Value {
    json!({"CookieBehavior": c.cookie_behavior, "Cookies": name_list(&c.cookies)})
}

fn query_form(q: &QueryStringsConfig) -> Value {
    json!({"QueryStringBehavior": q.query_string_behavior, "QueryStrings": name_list(&q.query_strings)})
}

/// A managed cache policy in botocore's form.
fn cache_form(c: &CachePolicyConfig) -> Value {
    let p = &c.parameters_in_cache_key_and_forwarded_to_origin;
    json!({
        "Comment": c.comment,
        "Name": c.name,
        "DefaultTTL": c.default_ttl,
        "MaxTTL": c.max_ttl,
        "MinTTL": c.min_ttl,
        "ParametersInCacheKeyAndForwardedToOrigin": {
            "EnableAcceptEncodingGzip": p.enable_accept_encoding_gzip,
            "EnableAcceptEncodingBrotli": p.enable_accept_encoding_brotli,
            "HeadersConfig": headers_form(&p.headers_config),
            "CookiesConfig": cookies_form(&p.cookies_config),
            "QueryStringsConfig": query_form(&p.query_strings_config),
        }
    })
}

/// A managed origin request policy in botocore's form.
fn origin_form(c: &OriginRequestPolicyConfig) -> Value {
    json!({
        "Comment": c.comment,
        "Name": c.name,
        "HeadersConfig": headers_form(&c.headers_config),
        "CookiesConfig": cookies_form(&c.cookies_config),
        "QueryStringsConfig": query_form(&c.query_strings_config),
    })
}

/// The managed policies of a family, as `(id, config)`.
fn managed(family: Family) -> Vec<(String, Value)> {
    match family.kind {
        PolicyKind::Cache => managed_cache_policies()
            .iter()
            .map(|(id, c)| ((*id).to_owned(), cache_form(c)))
            .collect(),
        PolicyKind::OriginRequest => managed_origin_request_policies()
            .iter()
            .map(|(id, c)| ((*id).to_owned(), origin_form(c)))
            .collect(),
    }
}

fn managed_one(family: Family, id: &str) -> Option<Value> {
    managed(family)
        .into_iter()
        .find(|(i, _)| i == id)
        .map(|(_, c)| c)
}

// === impl AppState (policy lookups for distributions) ===

impl AppState {
    /// Whether a managed or custom cache policy has this id.
    pub(crate) async fn cache_policy_exists(&self, id: &str) -> Result<bool, CfError> {
        Ok(managed_one(CACHE, id).is_some()
            || self
                .inner
                .store
                .get_policy(PolicyKind::Cache, id)
                .await?
                .is_some())
    }

    /// Whether a managed or custom origin request policy has this id.
    pub(crate) async fn origin_request_policy_exists(&self, id: &str) -> Result<bool, CfError> {
        Ok(managed_one(ORIGIN, id).is_some()
            || self
                .inner
                .store
                .get_policy(PolicyKind::OriginRequest, id)
                .await?
                .is_some())
    }
}

/// Checks a behavior/list pair: a list only with the behaviors that take one, at most
/// [`MAX_NAMES`] names.
fn check_names(
    config: &Value,
    what: &str,
    behavior_key: &str,
    list_key: &str,
    too_many: &'static str,
) -> Result<(), CfError> {
    let Some(section) = config.get(what) else {
        return Ok(());
    };
    let behavior = section
        .get(behavior_key)
        .and_then(Value::as_str)
        .unwrap_or_default();
    let names = items(section, list_key);
    if names.len() > MAX_NAMES {
        return Err(CfError::BadRequest(
            too_many,
            format!("The number of {list_key} in the policy exceeds the maximum of {MAX_NAMES}."),
        ));
    }
    let takes_list = matches!(
        behavior,
        "whitelist" | "allExcept" | "allViewerAndWhitelistCloudFront"
    );
    if takes_list && names.is_empty() && behavior != "allViewerAndWhitelistCloudFront" {
        return Err(CfError::invalid_argument(format!(
            "The {behavior_key} {behavior} requires at least one item in {list_key}."
        )));
    }
    if !takes_list && !names.is_empty() {
        return Err(CfError::invalid_argument(format!(
            "The {behavior_key} {behavior} does not take {list_key}."
        )));
    }
    Ok(())
}

/// Checks a decoded policy config and fills its defaults.
fn check_config(family: Family, mut config: Value) -> Result<Value, CfError> {
    let name = config
        .get("Name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name_ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !name_ok {
        return Err(CfError::invalid_argument(format!(
            "The policy name {name:?} is not valid: use 1-128 letters, digits, - and _."
        )));
    }
    let comment = config
        .get("Comment")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if comment.chars().count() > 128 {
        return Err(CfError::invalid_argument(
            "The parameter Comment is too long: it must be at most 128 characters.",
        ));
    }
    match family.kind {
        PolicyKind::Cache => {
            defaults::cache_policy(&mut config);
            let ttl = |k: &str| config.get(k).and_then(Value::as_i64).unwrap_or(0);
            let (min, dflt, max) = (ttl("MinTTL"), ttl("DefaultTTL"), ttl("MaxTTL"));
            if min < 0 || min > dflt || dflt > max {
                return Err(CfError::invalid_argument(
                    "The TTLs of the cache policy must satisfy MinTTL <= DefaultTTL <= MaxTTL.",
                ));
            }
            let params = config
                .get("ParametersInCacheKeyAndForwardedToOrigin")
                .cloned()
                .unwrap_or_default();
            check_names(
                &params,
                "HeadersConfig",
                "HeaderBehavior",
                "Headers",
                "TooManyHeadersInCachePolicy",
            )?;
            check_names(
                &params,
                "CookiesConfig",
                "CookieBehavior",
                "Cookies",
                "TooManyCookiesInCachePolicy",
            )?;
            check_names(
                &params,
                "QueryStringsConfig",
                "QueryStringBehavior",
                "QueryStrings",
                "TooManyQueryStringsInCachePolicy",
            )?;
        }
        PolicyKind::OriginRequest => {
            check_names(
                &config,
                "HeadersConfig",
                "HeaderBehavior",
                "Headers",
                "TooManyHeadersInOriginRequestPolicy",
            )?;
            check_names(
                &config,
                "CookiesConfig",
                "CookieBehavior",
                "Cookies",
                "TooManyCookiesInOriginRequestPolicy",
            )?;
            check_names(
                &config,
                "QueryStringsConfig",
                "QueryStringBehavior",
                "QueryStrings",
                "TooManyQueryStringsInOriginRequestPolicy",
            )?;
            let headers = config
                .get("HeadersConfig")
                .map_or(&[][..], |h| items(h, "Headers"));
            if headers.iter().any(|h| {
                h.as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case("authorization"))
            }) {
                return Err(CfError::invalid_argument(
                    "The parameter Headers contains Authorization that is not allowed.",
                ));
            }
        }
    }
    Ok(config)
}

/// The response object (`CachePolicy` / `OriginRequestPolicy`).
fn object(family: Family, id: &str, last_modified: &str, config: &Value) -> Value {
    let mut out = Map::new();
    out.insert("Id".into(), json!(id));
    out.insert("LastModifiedTime".into(), json!(last_modified));
    out.insert(family.config.into(), config.clone());
    Value::Object(out)
}

fn not_found(family: Family) -> CfError {
    policy_error(crate::store::PolicyError::NotFound, family.object)
}

async fn create(
    family: Family,
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, CfError> {
    let config = check_config(family, decode_body(body, family.config, family.config)?)?;
    let name = config
        .get("Name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if managed(family)
        .iter()
        .any(|(_, c)| c.get("Name").and_then(Value::as_str) == Some(name))
    {
        return Err(policy_error(
            crate::store::PolicyError::NameExists,
            family.object,
        ));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let row = state
        .inner
        .store
        .create_policy(family.kind, &id, &config, &new_etag(), &now_iso())
        .await
        .map_err(|e| policy_error(e, family.object))?;
    xml_response(
        StatusCode::CREATED,
        family.object,
        family.object,
        &object(family, &row.id, &row.last_modified, &row.config),
        &[
            (
                "Location",
                location(headers, &format!("/2020-05-31/{}/{id}", family.path)),
            ),
            ("ETag", row.etag),
        ],
    )
}

/// `(config, etag, last_modified)` of a managed or custom policy.
async fn lookup(
    family: Family,
    state: &AppState,
    id: &str,
) -> Result<(Value, String, String), CfError> {
    if let Some(config) = managed_one(family, id) {
        return Ok((config, MANAGED_ETAG.into(), MANAGED_TIME.into()));
    }
    let row = state
        .inner
        .store
        .get_policy(family.kind, id)
        .await?
        .ok_or_else(|| not_found(family))?;
    Ok((row.config, row.etag, row.last_modified))
}

async fn get(
    family: Family,
    state: &AppState,
    id: &str,
    config_only: bool,
) -> Result<Response, CfError> {
    let (config, etag, last_modified) = lookup(family, state, id).await?;
    let (shape, value) = if config_only {
        (family.config, config)
    } else {
        (family.object, object(family, id, &last_modified, &config))
    };
    xml_response(StatusCode::OK, shape, shape, &value, &[("ETag", etag)])
}

async fn update(
    family: Family,
    state: &AppState,
    id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, CfError> {
    if managed_one(family, id).is_some() {
        return Err(CfError::BadRequest(
            "IllegalUpdate",
            "Managed policies cannot be updated.".into(),
        ));
    }
    lookup(family, state, id).await?;
    let etag = if_match(headers)?;
    let config = check_config(family, decode_body(body, family.config, family.config)?)?;
    let row = state
        .inner
        .store
        .update_policy(family.kind, id, &etag, &config, &new_etag(), &now_iso())
        .await
        .map_err(|e| policy_error(e, family.object))?;
    xml_response(
        StatusCode::OK,
        family.object,
        family.object,
        &object(family, &row.id, &row.last_modified, &row.config),
        &[("ETag", row.etag)],
    )
}

async fn delete(
    family: Family,
    state: &AppState,
    id: &str,
    headers: &HeaderMap,
) -> Result<Response, CfError> {
    if managed_one(family, id).is_some() {
        return Err(CfError::BadRequest(
            "IllegalDelete",
            "Managed policies cannot be deleted.".into(),
        ));
    }
    lookup(family, state, id).await?;
    let etag = if_match(headers)?;
    state
        .inner
        .store
        .delete_policy(family.kind, id, &etag)
        .await
        .map_err(|e| policy_error(e, family.object))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list(family: Family, state: &AppState, query: Option<&str>) -> Result<Response, CfError> {
    let limit = usize::try_from(max_items(query)?).unwrap_or(0);
    let kind = query_param(query, "Type");
    let mut all: Vec<(&str, String, String, Value)> = Vec::new();
    if kind.as_deref() != Some("custom") {
        for (id, config) in managed(family) {
            all.push(("managed", id, MANAGED_TIME.to_owned(), config));
        }
    }
    if kind.as_deref() != Some("managed") {
        for row in state.inner.store.list_policies(family.kind).await? {
            all.push(("custom", row.id, row.last_modified, row.config));
        }
    }
    if let Some(k) = kind
        .as_deref()
        .filter(|k| !matches!(*k, "managed" | "custom"))
    {
        return Err(CfError::invalid_argument(format!(
            "Type must be managed or custom, got {k:?}."
        )));
    }
    let start = match query_param(query, "Marker").filter(|m| !m.is_empty()) {
        Some(m) => all
            .iter()
            .position(|(_, id, _, _)| *id == m)
            .map(|p| p + 1)
            .ok_or_else(|| CfError::invalid_argument(format!("Invalid marker: {m}")))?,
        None => 0,
    };
    let page: Vec<_> = all.iter().skip(start).take(limit).collect();
    let more = start + page.len() < all.len();
    let items: Vec<Value> = page
        .iter()
        .map(|(t, id, lm, c)| {
            let mut s = Map::new();
            s.insert("Type".into(), json!(t));
            s.insert(family.object.into(), object(family, id, lm, c));
            Value::Object(s)
        })
        .collect();
    let mut out = json!({"MaxItems": limit, "Quantity": items.len()});
    if more {
        if let Some((_, id, _, _)) = page.last() {
            out["NextMarker"] = json!(id);
        }
    }
    if !items.is_empty() {
        out["Items"] = Value::Array(items);
    }
    xml_response(StatusCode::OK, family.list, family.list, &out, &[])
}

// Route handlers: one per operation and family.

/// `POST /2020-05-31/cache-policy`
pub(super) async fn create_cache(
    State(s): State<AppState>,
    h: HeaderMap,
    b: Bytes,
) -> Result<Response, CfError> {
    create(CACHE, &s, &h, &b).await
}
/// `GET /2020-05-31/cache-policy`
pub(super) async fn list_cache(
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, CfError> {
    list(CACHE, &s, q.as_deref()).await
}
/// `GET /2020-05-31/cache-policy/{id}`
pub(super) async fn get_cache(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, CfError> {
    get(CACHE, &s, &id, false).await
}
/// `GET /2020-05-31/cache-policy/{id}/config`
pub(super) async fn get_cache_config(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, CfError> {
    get(CACHE, &s, &id, true).await
}
/// `PUT /2020-05-31/cache-policy/{id}`
pub(super) async fn update_cache(
    State(s): State<AppState>,
    Path(id): Path<String>,
    h: HeaderMap,
    b: Bytes,
) -> Result<Response, CfError> {
    update(CACHE, &s, &id, &h, &b).await
}
/// `DELETE /2020-05-31/cache-policy/{id}`
pub(super) async fn delete_cache(
    State(s): State<AppState>,
    Path(id): Path<String>,
    h: HeaderMap,
) -> Result<Response, CfError> {
    delete(CACHE, &s, &id, &h).await
}
/// `POST /2020-05-31/origin-request-policy`
pub(super) async fn create_origin(
    State(s): State<AppState>,
    h: HeaderMap,
    b: Bytes,
) -> Result<Response, CfError> {
    create(ORIGIN, &s, &h, &b).await
}
/// `GET /2020-05-31/origin-request-policy`
pub(super) async fn list_origin(
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, CfError> {
    list(ORIGIN, &s, q.as_deref()).await
}
/// `GET /2020-05-31/origin-request-policy/{id}`
pub(super) async fn get_origin(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, CfError> {
    get(ORIGIN, &s, &id, false).await
}
/// `GET /2020-05-31/origin-request-policy/{id}/config`
pub(super) async fn get_origin_config(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, CfError> {
    get(ORIGIN, &s, &id, true).await
}
/// `PUT /2020-05-31/origin-request-policy/{id}`
pub(super) async fn update_origin(
    State(s): State<AppState>,
    Path(id): Path<String>,
    h: HeaderMap,
    b: Bytes,
) -> Result<Response, CfError> {
    update(ORIGIN, &s, &id, &h, &b).await
}
/// `DELETE /2020-05-31/origin-request-policy/{id}`
pub(super) async fn delete_origin(
    State(s): State<AppState>,
    Path(id): Path<String>,
    h: HeaderMap,
) -> Result<Response, CfError> {
    delete(ORIGIN, &s, &id, &h).await
}
