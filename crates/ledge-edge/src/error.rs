//! Edge errors and the one place that turns them into CloudFront's answers.
//!
//! Every failure in the pipeline becomes an [`EdgeError`]: a [`ErrorKind`] (what the viewer is
//! told), an [`ErrorSource`] (whose fault it is) and the cause (for logs only).
//! [`EdgeError::status`] is the single mapping from kind to HTTP status, and
//! `response::error_page` renders the CloudFront error page for it.

use std::fmt;

use http::StatusCode;

/// Whose side a failure comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    /// The viewer sent something the edge refuses.
    Viewer,
    /// The origin could not be reached or answered badly.
    Origin,
    /// An edge function failed.
    Function,
    /// A bug or resource problem inside the edge.
    Internal,
}

/// What went wrong, in CloudFront's vocabulary; each kind maps to one status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Malformed request (invalid Host, smuggling attempt): 400.
    InvalidRequest,
    /// No distribution answers to the Host: 403.
    NoSuchDistribution,
    /// The distribution is disabled: 403.
    DistributionDisabled,
    /// Method not in the behavior's `AllowedMethods`: 403.
    InvalidRequestMethod,
    /// `https-only` behavior reached over HTTP, or a redirect impossible on HTTP/1.0: 403.
    ProtocolNotAllowed,
    /// A `GET`/`HEAD` carrying a body: 403.
    BodyNotAllowed,
    /// Request line and headers over 20,480 bytes, or URL over 8,192: 413.
    RequestHeaderTooLarge,
    /// Request body over the configured cap: 413.
    RequestBodyTooLarge,
    /// The origin's name does not resolve, or the connection was refused or reset: 502.
    OriginConnectError,
    /// Every connection attempt timed out: 504.
    OriginConnectTimeout,
    /// No response head, or a stall in the body, within `OriginReadTimeout`: 504.
    OriginReadTimeout,
    /// The origin sent something that is not HTTP, or closed mid-response: 502.
    OriginInvalidResponse,
    /// A function returned an invalid result: 502.
    LambdaValidationError,
    /// A function failed or timed out: 503.
    LambdaExecutionError,
    /// A function was throttled (concurrency or rate limit): 503.
    LambdaLimitExceeded,
    /// An internal failure: 500.
    Internal,
}

/// A failure while serving one request.
#[derive(Debug)]
pub struct EdgeError {
    kind: ErrorKind,
    source: ErrorSource,
    cause: Option<Box<dyn std::error::Error + Send + Sync>>,
    context: &'static str,
    /// The specific reason the error page shows, when there is one (§5.3).
    reason: Option<Box<str>>,
}

// === impl ErrorKind ===

impl ErrorKind {
    /// The status CloudFront gives the viewer for this kind.
    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::NoSuchDistribution
            | Self::DistributionDisabled
            | Self::InvalidRequestMethod
            | Self::ProtocolNotAllowed
            | Self::BodyNotAllowed => StatusCode::FORBIDDEN,
            Self::RequestHeaderTooLarge | Self::RequestBodyTooLarge => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Self::OriginConnectError
            | Self::OriginInvalidResponse
            | Self::LambdaValidationError => StatusCode::BAD_GATEWAY,
            Self::OriginConnectTimeout | Self::OriginReadTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::LambdaExecutionError | Self::LambdaLimitExceeded => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The source a kind belongs to by default.
    pub fn default_source(self) -> ErrorSource {
        match self {
            Self::InvalidRequest
            | Self::NoSuchDistribution
            | Self::DistributionDisabled
            | Self::InvalidRequestMethod
            | Self::ProtocolNotAllowed
            | Self::BodyNotAllowed
            | Self::RequestHeaderTooLarge
            | Self::RequestBodyTooLarge => ErrorSource::Viewer,
            Self::OriginConnectError
            | Self::OriginConnectTimeout
            | Self::OriginReadTimeout
            | Self::OriginInvalidResponse => ErrorSource::Origin,
            Self::LambdaValidationError
            | Self::LambdaExecutionError
            | Self::LambdaLimitExceeded => ErrorSource::Function,
            Self::Internal => ErrorSource::Internal,
        }
    }

    /// The access log's `x-edge-detailed-result-type` for this kind.
    pub fn detailed_result_type(self) -> &'static str {
        match self {
            Self::InvalidRequest => "InvalidRequest",
            Self::NoSuchDistribution | Self::DistributionDisabled => "Error",
            Self::InvalidRequestMethod => "InvalidRequestMethod",
            Self::ProtocolNotAllowed | Self::BodyNotAllowed => "InvalidRequest",
            Self::RequestHeaderTooLarge => "InvalidRequestHeader",
            Self::RequestBodyTooLarge => "InvalidRequest",
            Self::OriginConnectError | Self::OriginConnectTimeout => "OriginConnectError",
            Self::OriginReadTimeout => "OriginReadError",
            Self::OriginInvalidResponse => "OriginInvalidResponseError",
            Self::LambdaValidationError => "LambdaValidationError",
            Self::LambdaExecutionError => "LambdaExecutionError",
            Self::LambdaLimitExceeded => "LambdaLimitExceeded",
            Self::Internal => "Error",
        }
    }

    /// One line for the error page, in ledge's own words.
    pub fn reason(self) -> &'static str {
        match self {
            Self::InvalidRequest => "Bad request.",
            Self::NoSuchDistribution => {
                "The request could not be satisfied: no distribution is configured for this host."
            }
            Self::DistributionDisabled => "This distribution is not enabled.",
            Self::InvalidRequestMethod => "This distribution is not configured to allow the HTTP request method that was used for this request.",
            Self::ProtocolNotAllowed => "This distribution requires HTTPS for this request.",
            Self::BodyNotAllowed => "Bad request: a GET or HEAD request cannot carry a body.",
            Self::RequestHeaderTooLarge => "Bad request: the request line and headers are too large.",
            Self::RequestBodyTooLarge => "Bad request: the request body is too large.",
            Self::OriginConnectError => "CloudFront wasn't able to connect to the origin.",
            Self::OriginConnectTimeout => "CloudFront attempted to establish a connection with the origin, but it timed out.",
            Self::OriginReadTimeout => "The origin did not respond in time.",
            Self::OriginInvalidResponse => "The origin sent an invalid response.",
            Self::LambdaValidationError => "The Lambda function result failed validation.",
            Self::LambdaExecutionError => "The Lambda function associated with the CloudFront distribution is invalid or doesn't have the required permissions.",
            Self::LambdaLimitExceeded => "The Lambda function associated with the CloudFront distribution was throttled.",
            Self::Internal => "An internal error occurred.",
        }
    }

    /// The value of `X-Cache` on a response generated for this kind.
    pub fn x_cache(self) -> &'static str {
        match self {
            Self::LambdaValidationError => "LambdaValidationError from cloudfront",
            Self::LambdaExecutionError => "LambdaExecutionError from cloudfront",
            Self::LambdaLimitExceeded => "LambdaLimitExceeded from cloudfront",
            _ => "Error from cloudfront",
        }
    }
}

// === impl EdgeError ===

impl EdgeError {
    /// An error of this kind, with the kind's default source and no cause.
    pub fn new(kind: ErrorKind) -> Self {
        Self {
            kind,
            source: kind.default_source(),
            cause: None,
            context: "",
            reason: None,
        }
    }

    /// An error of this kind, explained by an underlying cause (kept for logs only).
    pub fn because(
        kind: ErrorKind,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            cause: Some(cause.into()),
            ..Self::new(kind)
        }
    }

    /// Adds a static note on where the error happened.
    pub fn explain(mut self, context: &'static str) -> Self {
        self.context = context;
        self
    }

    /// Sets the reason the error page gives in place of the kind's generic one (a function
    /// result's validation failure, say).
    pub fn with_reason(mut self, reason: impl Into<Box<str>>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// The reason the error page gives.
    pub fn reason(&self) -> &str {
        self.reason.as_deref().unwrap_or(self.kind.reason())
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whose fault it is.
    pub fn error_source(&self) -> ErrorSource {
        self.source
    }

    /// The status the viewer gets.
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// Whether the edge should close the viewer's connection after answering.
    pub fn closes_connection(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::RequestHeaderTooLarge | ErrorKind::InvalidRequest
        )
    }
}

impl fmt::Display for EdgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.kind)?;
        if !self.context.is_empty() {
            write!(f, " ({})", self.context)?;
        }
        if let Some(cause) = &self.cause {
            write!(f, ": {cause}")?;
            let mut src = cause.source();
            while let Some(s) = src {
                write!(f, ": {s}")?;
                src = s.source();
            }
        }
        Ok(())
    }
}

impl std::error::Error for EdgeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|c| c as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_cloudfront_statuses() {
        assert_eq!(ErrorKind::OriginConnectError.status(), 502);
        assert_eq!(ErrorKind::OriginReadTimeout.status(), 504);
        assert_eq!(ErrorKind::NoSuchDistribution.status(), 403);
        assert_eq!(ErrorKind::RequestHeaderTooLarge.status(), 413);
        assert_eq!(ErrorKind::LambdaExecutionError.status(), 503);
        let e = EdgeError::because(ErrorKind::OriginConnectError, "refused").explain("connect");
        assert_eq!(e.error_source(), ErrorSource::Origin);
        assert!(e.to_string().contains("refused"));
    }
}
