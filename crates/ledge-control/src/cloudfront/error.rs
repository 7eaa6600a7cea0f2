//! CloudFront's client-visible errors and their REST-XML rendering.
//!
//! A handler returns a [`CfError`]; its `IntoResponse` sets the status and leaves a
//! [`PendingXmlError`] in the response's extensions. The authentication middleware, which
//! owns the request id, turns that into the `<ErrorResponse>` body
//! ([`render_pending`]), so the body's `<RequestId>` and the `x-amzn-RequestId` header agree.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::store::{
    ChangeDistributionError, CreateDistributionError, CreateInvalidationError, PolicyError,
};

/// A CloudFront error: an error code of `apis.md` §3.8, its HTTP status, and a message.
#[derive(Debug, thiserror::Error)]
pub enum CfError {
    /// 400 with the given code (`InvalidArgument`, `MalformedXML`, `TooManyOrigins`, …).
    #[error("{1}")]
    BadRequest(&'static str, String),
    /// 404 with the given code (`NoSuchDistribution`, `NoSuchOrigin`, …).
    #[error("{1}")]
    NotFound(&'static str, String),
    /// 409 with the given code (`DistributionAlreadyExists`, `CNAMEAlreadyExists`, …).
    #[error("{1}")]
    Conflict(&'static str, String),
    /// 412 `PreconditionFailed`: the If-Match value is not the current ETag.
    #[error("The If-Match version is missing or not valid for the resource.")]
    PreconditionFailed,
    /// 413 with the given code (`BatchTooLarge`).
    #[error("{1}")]
    TooLarge(&'static str, String),
    /// 500 `InternalError`: logged, never described to the client.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

/// The error a handler produced, waiting for the middleware to render it with the request id.
#[derive(Debug, Clone)]
pub struct PendingXmlError {
    /// The `<Code>`.
    pub code: &'static str,
    /// The `<Message>`.
    pub message: String,
}

// === impl CfError ===

impl CfError {
    /// Wraps an internal failure.
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        Self::Internal(err.into())
    }

    /// `InvalidArgument` (400).
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::BadRequest("InvalidArgument", message.into())
    }

    /// `NoSuchDistribution` (404).
    pub fn no_such_distribution() -> Self {
        Self::NotFound(
            "NoSuchDistribution",
            "The specified distribution does not exist.".into(),
        )
    }

    /// `InvalidIfMatchVersion` (400): no If-Match header.
    pub fn missing_if_match() -> Self {
        Self::BadRequest(
            "InvalidIfMatchVersion",
            "The If-Match version is missing or not valid for the resource.".into(),
        )
    }

    /// HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(..) => StatusCode::BAD_REQUEST,
            Self::NotFound(..) => StatusCode::NOT_FOUND,
            Self::Conflict(..) => StatusCode::CONFLICT,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::TooLarge(..) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The CloudFront error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(code, _)
            | Self::NotFound(code, _)
            | Self::Conflict(code, _)
            | Self::TooLarge(code, _) => code,
            Self::PreconditionFailed => "PreconditionFailed",
            Self::Internal(_) => "InternalError",
        }
    }
}

impl IntoResponse for CfError {
    fn into_response(self) -> Response {
        let message = match &self {
            Self::Internal(cause) => {
                tracing::error!(error = %format!("{cause:#}"), "internal error");
                "An internal error occurred. Please try again.".to_owned()
            }
            other => other.to_string(),
        };
        let mut resp = self.status().into_response();
        resp.extensions_mut().insert(PendingXmlError {
            code: self.code(),
            message,
        });
        resp
    }
}

impl From<sqlx::Error> for CfError {
    fn from(err: sqlx::Error) -> Self {
        Self::internal(err)
    }
}

impl From<ledge_restxml::XmlError> for CfError {
    fn from(err: ledge_restxml::XmlError) -> Self {
        Self::BadRequest(err.code(), err.to_string())
    }
}

impl From<CreateDistributionError> for CfError {
    fn from(err: CreateDistributionError) -> Self {
        match err {
            CreateDistributionError::CallerReferenceExists(id) => Self::Conflict(
                "DistributionAlreadyExists",
                format!("The caller reference that you are using to create a distribution is associated with another distribution. Already exists: {id}"),
            ),
            CreateDistributionError::CnameExists(alias) => cname_exists(&alias),
            CreateDistributionError::VersionGone(v) => version_gone(&v),
            CreateDistributionError::Database(e) => e.into(),
        }
    }
}

impl From<ChangeDistributionError> for CfError {
    fn from(err: ChangeDistributionError) -> Self {
        match err {
            ChangeDistributionError::NotFound => Self::no_such_distribution(),
            ChangeDistributionError::PreconditionFailed => Self::PreconditionFailed,
            ChangeDistributionError::CallerReferenceChanged => Self::BadRequest(
                "IllegalUpdate",
                "The CallerReference of a distribution cannot be changed.".into(),
            ),
            ChangeDistributionError::CnameExists(alias) => cname_exists(&alias),
            ChangeDistributionError::VersionGone(v) => version_gone(&v),
            ChangeDistributionError::NotDisabled => Self::Conflict(
                "DistributionNotDisabled",
                "The distribution you are trying to delete has not been disabled.".into(),
            ),
            ChangeDistributionError::Database(e) => e.into(),
        }
    }
}

impl From<CreateInvalidationError> for CfError {
    fn from(err: CreateInvalidationError) -> Self {
        match err {
            CreateInvalidationError::NoSuchDistribution => Self::no_such_distribution(),
            CreateInvalidationError::AlreadyExists => Self::Conflict(
                "InvalidationBatchAlreadyExists",
                "An invalidation batch with this CallerReference already exists with different paths.".into(),
            ),
            CreateInvalidationError::TooManyInProgress => Self::BadRequest(
                "TooManyInvalidationsInProgress",
                "Processing your request will cause you to exceed the maximum number of in-progress wildcard invalidations (15) or in-progress file invalidations (3000).".into(),
            ),
            CreateInvalidationError::Database(e) => e.into(),
        }
    }
}

/// Maps a policy store error for a family whose codes start with `prefix`
/// (`CachePolicy` or `OriginRequestPolicy`).
pub fn policy_error(err: PolicyError, prefix: &'static str) -> CfError {
    let cache = prefix == "CachePolicy";
    match err {
        PolicyError::NotFound => CfError::NotFound(
            if cache {
                "NoSuchCachePolicy"
            } else {
                "NoSuchOriginRequestPolicy"
            },
            format!("The {} does not exist.", human(prefix)),
        ),
        PolicyError::NameExists => CfError::Conflict(
            if cache {
                "CachePolicyAlreadyExists"
            } else {
                "OriginRequestPolicyAlreadyExists"
            },
            format!("A {} with this name already exists.", human(prefix)),
        ),
        PolicyError::TooMany => CfError::BadRequest(
            if cache {
                "TooManyCachePolicies"
            } else {
                "TooManyOriginRequestPolicies"
            },
            format!(
                "You have reached the maximum number of {}s for this account.",
                human(prefix)
            ),
        ),
        PolicyError::PreconditionFailed => CfError::PreconditionFailed,
        PolicyError::InUse => CfError::Conflict(
            if cache {
                "CachePolicyInUse"
            } else {
                "OriginRequestPolicyInUse"
            },
            format!(
                "Cannot delete the {} because it is attached to one or more cache behaviors.",
                human(prefix)
            ),
        ),
        PolicyError::Database(e) => e.into(),
    }
}

fn human(prefix: &str) -> &'static str {
    if prefix == "CachePolicy" {
        "cache policy"
    } else {
        "origin request policy"
    }
}

fn version_gone(version: &str) -> CfError {
    CfError::BadRequest(
        "InvalidLambdaFunctionAssociation",
        format!("The function does not exist. Function: {version}"),
    )
}

fn cname_exists(alias: &str) -> CfError {
    CfError::Conflict(
        "CNAMEAlreadyExists",
        format!("One or more of the CNAMEs you provided are already associated with a different resource. CNAME: {alias}"),
    )
}

/// Renders a pending error (see the module docs) into the `<ErrorResponse>` body.
pub fn render_pending(resp: &mut Response, request_id: &str) {
    let Some(pending) = resp.extensions_mut().remove::<PendingXmlError>() else {
        return;
    };
    let kind = if resp.status().is_server_error() {
        "Receiver"
    } else {
        "Sender"
    };
    let esc = |s: &str| quick_xml::escape::escape(s).into_owned();
    let body = format!(
        "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"{}\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        ledge_restxml::CLOUDFRONT_NAMESPACE,
        pending.code,
        esc(&pending.message),
        esc(request_id)
    );
    *resp.body_mut() = axum::body::Body::from(body);
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("text/xml"));
    resp.headers_mut().remove("content-length");
}
