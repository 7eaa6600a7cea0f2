//! Errors of loading and invoking a function, each mapped to the error Lambda reports.

use std::time::Duration;

use bytes::Bytes;

/// Why a package could not be stored or extracted.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// The zip is larger than Lambda accepts.
    #[error("Unzipped size must be smaller than {limit} bytes")]
    UnzippedTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The compressed package is larger than Lambda accepts.
    #[error("Request must be smaller than {limit} bytes for the CreateFunction operation")]
    ZipTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// More entries than allowed.
    #[error("package has more than {limit} entries")]
    TooManyEntries {
        /// The limit.
        limit: usize,
    },
    /// An entry compresses better than any real file does: a zip bomb.
    #[error("entry {name} has a compression ratio above {limit}")]
    CompressionRatio {
        /// The entry name.
        name: String,
        /// The ratio limit.
        limit: u64,
    },
    /// An entry would land outside the package directory (`../`, an absolute path).
    #[error("entry {0} points outside the package")]
    UnsafePath(String),
    /// A symlink whose target leaves the package directory.
    #[error("symlink {0} points outside the package")]
    SymlinkOutside(String),
    /// Two entries with the same name.
    #[error("duplicate entry {0}")]
    DuplicateEntry(String),
    /// Not a readable zip file.
    #[error("Could not unzip uploaded file: {0}")]
    InvalidZip(String),
    /// A filesystem error while storing the package.
    #[error("storing the package: {0}")]
    Io(#[from] std::io::Error),
}

impl PackageError {
    /// The Lambda API error code for this failure.
    pub fn error_code(&self) -> &'static str {
        match self {
            PackageError::ZipTooLarge { .. } => "RequestEntityTooLargeException",
            PackageError::Io(_) => "ServiceException",
            _ => "InvalidParameterValueException",
        }
    }
}

/// Why a function version could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The runtime identifier is not one ledge runs.
    #[error("The runtime parameter of {0} is not supported")]
    UnsupportedRuntime(String),
    /// The interpreter configured for the runtime cannot be started.
    #[error("interpreter for {runtime} not usable ({path}): {reason}")]
    InterpreterMissing {
        /// The runtime identifier.
        runtime: String,
        /// The interpreter path tried.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// A configuration value is out of Lambda's range.
    #[error("{0}")]
    InvalidConfig(String),
    /// The package is unusable.
    #[error(transparent)]
    Package(#[from] PackageError),
    /// A filesystem error preparing the version's directories.
    #[error("preparing the function's directories: {0}")]
    Io(#[from] std::io::Error),
}

impl LoadError {
    /// The Lambda API error code for this failure.
    pub fn error_code(&self) -> &'static str {
        match self {
            LoadError::Package(e) => e.error_code(),
            LoadError::Io(_) | LoadError::InterpreterMissing { .. } => "ServiceException",
            _ => "InvalidParameterValueException",
        }
    }
}

/// An error the function itself reported: Lambda's error document, kept byte for byte.
#[derive(Debug, Clone)]
pub struct FunctionError {
    /// `errorType`, e.g. `TypeError` or `Runtime.ImportModuleError`.
    pub error_type: String,
    /// `errorMessage`.
    pub error_message: String,
    /// The whole JSON document (`errorType`, `errorMessage`, `trace` or `stackTrace`).
    pub body: Bytes,
}

impl FunctionError {
    /// Parses the error document a worker sent.
    pub(crate) fn from_body(body: Bytes) -> FunctionError {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Doc {
            #[serde(default)]
            error_type: String,
            #[serde(default)]
            error_message: String,
        }
        let doc = serde_json::from_slice::<Doc>(&body).unwrap_or(Doc {
            error_type: "Runtime.InvalidResponse".to_string(),
            error_message: String::from_utf8_lossy(&body).into_owned(),
        });
        FunctionError {
            error_type: doc.error_type,
            error_message: doc.error_message,
            body,
        }
    }
}

/// Which limit a throttled invocation hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleScope {
    /// The version's concurrency and queue.
    Version,
    /// The node's concurrency and queue.
    Node,
}

/// Why an invocation did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// The handler threw, rejected or called back with an error (Lambda: `Unhandled`).
    #[error("{}: {}", .0.error_type, .0.error_message)]
    Function(FunctionError),
    /// The init phase failed: module or handler missing, syntax error, error at top level.
    #[error("{}: {}", .0.error_type, .0.error_message)]
    Init(FunctionError),
    /// The invocation ran past the timeout; the worker was killed.
    #[error("RequestId: {request_id} Error: Task timed out after {:.2} seconds", .timeout.as_secs_f64())]
    Timeout {
        /// The invocation's request id.
        request_id: String,
        /// The configured timeout.
        timeout: Duration,
    },
    /// The worker exited or crashed mid-invocation.
    #[error("RequestId: {request_id} Error: Runtime exited with error: {status}")]
    Exit {
        /// The invocation's request id.
        request_id: String,
        /// How it ended (`exit status 1`, `signal: killed`).
        status: String,
    },
    /// The worker ran out of its memory size.
    #[error("RequestId: {request_id} Error: Runtime exited with error: signal: killed")]
    OutOfMemory {
        /// The invocation's request id.
        request_id: String,
    },
    /// The concurrency limit and the queue are full.
    #[error("Rate Exceeded.")]
    Throttled(ThrottleScope),
    /// The event is not valid JSON.
    #[error("Could not parse request body into json: {0}")]
    InvalidEvent(String),
    /// The response (or the log output with it) exceeds the allowed size.
    #[error("Response payload size exceeded maximum allowed payload size ({limit} bytes).")]
    ResponseTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The worker broke the protocol; it was killed.
    #[error("RequestId: {request_id} Error: Runtime returned an invalid response")]
    Protocol {
        /// The invocation's request id.
        request_id: String,
    },
    /// A worker could not be started.
    #[error("starting a worker: {0}")]
    Spawn(std::io::Error),
}

impl InvokeError {
    /// Lambda's `errorType` for this error.
    pub fn error_type(&self) -> &str {
        match self {
            InvokeError::Function(e) | InvokeError::Init(e) => &e.error_type,
            InvokeError::Timeout { .. } => "Sandbox.Timedout",
            InvokeError::Exit { .. } => "Runtime.ExitError",
            InvokeError::OutOfMemory { .. } => "Runtime.OutOfMemory",
            InvokeError::Throttled(_) => "TooManyRequestsException",
            InvokeError::InvalidEvent(_) => "InvalidRequestContentException",
            InvokeError::ResponseTooLarge { .. } => "Function.ResponseSizeTooLarge",
            InvokeError::Protocol { .. } => "Runtime.InvalidResponse",
            InvokeError::Spawn(_) => "ServiceException",
        }
    }

    /// True for errors Lambda reports as a function error (`X-Amz-Function-Error: Unhandled`,
    /// status 200); false for errors of the service itself (throttling, bad request).
    pub fn is_function_error(&self) -> bool {
        !matches!(
            self,
            InvokeError::Throttled(_) | InvokeError::InvalidEvent(_) | InvokeError::Spawn(_)
        )
    }

    /// The error document Lambda's Invoke API returns for this error.
    pub fn to_lambda_json(&self) -> Bytes {
        match self {
            InvokeError::Function(e) | InvokeError::Init(e) => e.body.clone(),
            other => {
                let doc = serde_json::json!({
                    "errorType": other.error_type(),
                    "errorMessage": other.to_string(),
                });
                Bytes::from(doc.to_string())
            }
        }
    }
}
