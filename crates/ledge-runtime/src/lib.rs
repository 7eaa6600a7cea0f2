//! Runs Lambda functions in real Node.js and Python worker processes, with Lambda's execution
//! model: per function version a pool of warm workers, each serving one invocation at a time.
//!
//! This crate owns packages (content-addressed, unpacked with guards), the bootstraps that run
//! handlers inside the interpreters, the worker pools and their limits (timeout, memory,
//! concurrency, queueing), and the function logs in Lambda's format. The edge and the control
//! plane use it the same way:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use ledge_runtime::{FunctionSpec, PackageRef, Runtime, RuntimeConfig};
//! let runtime = Runtime::new(RuntimeConfig::new("/var/lib/ledge/runtime"))?;
//! let spec = FunctionSpec::new("hello", "nodejs20.x", "index.handler",
//!     PackageRef::Dir("./hello".into()));
//! let function = runtime.load(spec).await?;
//! function.prewarm(1).await?;
//! let output = function.invoke(br#"{"Records":[]}"#).await?;
//! println!("{}", String::from_utf8_lossy(&output.payload));
//! # Ok(()) }
//! ```

mod cgroup;
mod config;
mod error;
mod function;
mod json;
mod lane;
mod launch;
mod limits;
mod logs;
mod package;
mod pidns;
mod procfs;
mod protocol;
mod runtime;
mod socket;
mod tmpfs;
mod worker;

pub use config::{FunctionSpec, Language, PackageLimits, RuntimeConfig, SUPPORTED_RUNTIMES};
pub use error::{FunctionError, InvokeError, LoadError, PackageError, ThrottleScope};
pub use function::{FunctionHandle, Invocation, InvokeOutput};
pub use json::JsonStyle;
pub use logs::{iso8601, FileSink, LogBatch, LogLine, LogSink, Rotation};
pub use package::{PackageRef, PreparedPackage};
pub use runtime::{Runtime, RESERVED_ENV};
