//! The one error type every API response goes through.
//!
//! Each [`ApiError`] variant is one client-visible AWS error code. Handlers and the store
//! return their own small error enums, which convert into `ApiError`; `ApiError` alone knows
//! how to render Lambda's REST-JSON error shape (`x-amzn-ErrorType` plus a JSON body) and
//! CloudFront's REST-XML one. Internal causes are logged here and never sent to clients.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Which wire protocol an error is rendered in, picked from the request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Lambda: REST-JSON, `x-amzn-ErrorType` header.
    Lambda,
    /// CloudFront: REST-XML `<ErrorResponse>` envelope.
    CloudFront,
}

/// A client-visible error: one AWS error code, an HTTP status and a message.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 `ValidationException`: a model constraint was violated.
    #[error("{0}")]
    Validation(String),
    /// 400 `InvalidParameterValueException`: a semantic problem with a parameter.
    #[error("{0}")]
    InvalidParameter(String),
    /// 400 `InvalidRequestContentException`: the body is not parseable.
    #[error("{0}")]
    InvalidRequestContent(String),
    /// 400 `CodeStorageExceededException`: the account's code storage quota is used up.
    #[error("{0}")]
    CodeStorageExceeded(String),
    /// 404 `ResourceNotFoundException`.
    #[error("{0}")]
    NotFound(String),
    /// 409 `ResourceConflictException`.
    #[error("{0}")]
    Conflict(String),
    /// 412 `PreconditionFailedException`: a `RevisionId` did not match.
    #[error("{0}")]
    PreconditionFailed(String),
    /// 413 `RequestEntityTooLargeException`.
    #[error("{0}")]
    TooLarge(String),
    /// 429 `TooManyRequestsException`: throttled.
    #[error("{0}")]
    TooManyRequests(String),
    /// 502: the function's execution environment could not start (`InvalidZipFileException`,
    /// `InvalidRuntimeException`, `ResourceNotReadyException`).
    #[error("{message}")]
    ExecutionEnvironment {
        /// The Lambda error code.
        code: &'static str,
        /// The message.
        message: String,
    },
    /// 404 `UnknownOperationException`: no operation at this method and path.
    #[error("Unknown operation")]
    UnknownOperation,
    /// 403 `InvalidSignatureException` (`SignatureDoesNotMatch` on CloudFront): the signature
    /// did not match, or the request has expired.
    #[error("{0}")]
    InvalidSignature(String),
    /// 403 `UnrecognizedClientException` (`InvalidClientTokenId`): unknown access key or token.
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,
    /// 403 `MissingAuthenticationTokenException`: no credentials at all.
    #[error("Missing Authentication Token")]
    MissingAuthentication,
    /// 403 `IncompleteSignatureException`: an unparseable `Authorization`.
    #[error("{0}")]
    IncompleteSignature(String),
    /// 500 `ServiceException`: an internal failure, whose cause is logged but never sent.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

/// Message sent instead of an internal cause.
const INTERNAL_MESSAGE: &str = "An internal error occurred. Please try again.";

// === impl ApiError ===

impl ApiError {
    /// Wraps an internal failure (database, blob store): logged, answered as a 500.
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        Self::Internal(err.into())
    }

    /// HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_)
            | Self::InvalidParameter(_)
            | Self::InvalidRequestContent(_)
            | Self::CodeStorageExceeded(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) | Self::UnknownOperation => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::ExecutionEnvironment { .. } => StatusCode::BAD_GATEWAY,
            Self::InvalidSignature(_)
            | Self::UnrecognizedClient
            | Self::MissingAuthentication
            | Self::IncompleteSignature(_) => StatusCode::FORBIDDEN,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The Lambda error code (`x-amzn-ErrorType`).
    pub fn lambda_code(&self) -> &'static str {
        match self {
            Self::Validation(_) => "ValidationException",
            Self::InvalidParameter(_) => "InvalidParameterValueException",
            Self::InvalidRequestContent(_) => "InvalidRequestContentException",
            Self::CodeStorageExceeded(_) => "CodeStorageExceededException",
            Self::NotFound(_) => "ResourceNotFoundException",
            Self::Conflict(_) => "ResourceConflictException",
            Self::PreconditionFailed(_) => "PreconditionFailedException",
            Self::TooLarge(_) => "RequestEntityTooLargeException",
            Self::TooManyRequests(_) => "TooManyRequestsException",
            Self::ExecutionEnvironment { code, .. } => code,
            Self::UnknownOperation => "UnknownOperationException",
            Self::InvalidSignature(_) => "InvalidSignatureException",
            Self::UnrecognizedClient => "UnrecognizedClientException",
            Self::MissingAuthentication => "MissingAuthenticationTokenException",
            Self::IncompleteSignature(_) => "IncompleteSignatureException",
            Self::Internal(_) => "ServiceException",
        }
    }

    /// The CloudFront error code (`<Code>`), for the errors both APIs share.
    pub fn cloudfront_code(&self) -> &'static str {
        match self {
            Self::InvalidSignature(_) => "SignatureDoesNotMatch",
            Self::UnrecognizedClient => "InvalidClientTokenId",
            Self::MissingAuthentication => "MissingAuthenticationToken",
            Self::IncompleteSignature(_) => "IncompleteSignature",
            Self::Internal(_) => "InternalError",
            Self::NotFound(_) | Self::UnknownOperation => "NotFound",
            Self::Conflict(_) => "Conflict",
            Self::PreconditionFailed(_) => "PreconditionFailed",
            Self::TooLarge(_) => "RequestEntityTooLarge",
            Self::TooManyRequests(_) => "Throttling",
            Self::ExecutionEnvironment { .. } => "InternalError",
            Self::Validation(_) | Self::InvalidRequestContent(_) => "MalformedInput",
            Self::InvalidParameter(_) | Self::CodeStorageExceeded(_) => "InvalidArgument",
        }
    }

    /// The message sent to the client (internal causes are replaced by a generic one).
    pub fn client_message(&self) -> String {
        match self {
            Self::Internal(_) => INTERNAL_MESSAGE.to_owned(),
            other => other.to_string(),
        }
    }

    /// Renders this error in the given protocol, with the given request id.
    pub fn render(&self, protocol: Protocol, request_id: &str) -> Response {
        if let Self::Internal(cause) = self {
            tracing::error!(request_id, error = %format!("{cause:#}"), "internal error");
        }
        let status = self.status();
        let message = self.client_message();
        match protocol {
            Protocol::Lambda => {
                let code = self.lambda_code();
                let kind = if status.is_server_error() {
                    "Service"
                } else {
                    "User"
                };
                // The model names the member `Message` on these two shapes, `message` elsewhere.
                let key = match self {
                    Self::NotFound(_) | Self::Internal(_) => "Message",
                    _ => "message",
                };
                let mut body = serde_json::Map::new();
                if !self.is_auth() {
                    body.insert("Type".into(), kind.into());
                }
                body.insert(key.into(), message.into());
                let mut resp =
                    (status, axum::Json(serde_json::Value::Object(body))).into_response();
                resp.headers_mut()
                    .insert("x-amzn-ErrorType", HeaderValue::from_static(code));
                resp
            }
            Protocol::CloudFront => {
                let kind = if status.is_server_error() {
                    "Receiver"
                } else {
                    "Sender"
                };
                let body = format!(
                    "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"http://cloudfront.amazonaws.com/doc/2020-05-31/\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
                    self.cloudfront_code(),
                    xml_escape(&message),
                    xml_escape(request_id)
                );
                let mut resp = (status, body).into_response();
                resp.headers_mut()
                    .insert("content-type", HeaderValue::from_static("text/xml"));
                resp
            }
        }
    }

    fn is_auth(&self) -> bool {
        matches!(
            self,
            Self::InvalidSignature(_)
                | Self::UnrecognizedClient
                | Self::MissingAuthentication
                | Self::IncompleteSignature(_)
        )
    }
}

impl IntoResponse for ApiError {
    /// Handlers return Lambda errors; the request-id middleware fills in `x-amzn-RequestId`.
    fn into_response(self) -> Response {
        self.render(Protocol::Lambda, "")
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        Self::internal(err)
    }
}

impl From<object_store::Error> for ApiError {
    fn from(err: object_store::Error) -> Self {
        Self::internal(err)
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Builds the `N validation error(s) detected: ...` message Lambda uses for model violations.
#[derive(Debug, Default)]
pub struct Violations(Vec<String>);

// === impl Violations ===

impl Violations {
    /// Records that `value` at member `field` failed `constraint`.
    pub fn add(&mut self, value: &str, field: &str, constraint: &str) {
        self.0.push(format!(
            "Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"
        ));
    }

    /// `Ok` when nothing was recorded, else one `ValidationException` listing everything.
    pub fn finish(self) -> Result<(), ApiError> {
        match self.0.len() {
            0 => Ok(()),
            1 => Err(ApiError::Validation(format!(
                "1 validation error detected: {}",
                self.0[0]
            ))),
            n => Err(ApiError::Validation(format!(
                "{n} validation errors detected: {}",
                self.0.join("; ")
            ))),
        }
    }
}
