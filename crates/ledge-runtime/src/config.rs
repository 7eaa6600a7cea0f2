//! Configuration of a [`Runtime`](crate::Runtime) and of one function version.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::logs::LogSink;
use crate::package::PackageRef;

/// The language family of a Lambda runtime identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    /// `nodejs18.x`, `nodejs20.x`, `nodejs22.x`.
    Node,
    /// `python3.9` … `python3.13`.
    Python,
}

/// The runtime identifiers ledge accepts, as Lambda names them.
pub const SUPPORTED_RUNTIMES: &[&str] = &[
    "nodejs18.x",
    "nodejs20.x",
    "nodejs22.x",
    "python3.9",
    "python3.10",
    "python3.11",
    "python3.12",
    "python3.13",
];

impl Language {
    /// The language of a supported runtime identifier, or `None` for an unsupported one.
    pub fn of(runtime: &str) -> Option<Language> {
        if !SUPPORTED_RUNTIMES.contains(&runtime) {
            return None;
        }
        if runtime.starts_with("nodejs") {
            Some(Language::Node)
        } else {
            Some(Language::Python)
        }
    }
}

/// How workers are started and bounded on this node. Every field has a default (see
/// [`RuntimeConfig::new`]).
#[derive(Clone)]
pub struct RuntimeConfig {
    /// Directory for packages, bootstraps, sockets and each version's `/tmp`. Required.
    pub data_dir: PathBuf,
    /// Interpreter per runtime identifier; default `node` for Node.js runtimes and `python3`
    /// for Python runtimes, looked up on `PATH`.
    pub interpreters: HashMap<String, PathBuf>,
    /// Region reported to functions (`AWS_REGION`) and used in ARNs. Default `us-east-1`.
    pub region: String,
    /// Account id used in ARNs. Default `000000000000`.
    pub account_id: String,
    /// Idle workers are retired after this long without an invocation. Default 10 minutes.
    pub idle_timeout: Duration,
    /// Maximum time for a worker's init phase. Default 10 s (Lambda's limit).
    pub init_timeout: Duration,
    /// Concurrent invocations on this node, all versions together. Default 1000.
    pub node_concurrency: usize,
    /// Invocations allowed to wait for a worker on this node before throttling. Default 1000.
    pub node_queue: usize,
    /// Default concurrent invocations per version (overridable per spec). Default 64.
    pub version_concurrency: usize,
    /// Invocations allowed to wait for a worker per version before throttling. Default 256.
    pub version_queue: usize,
    /// How long an invocation that finds every worker of its version busy waits for one to
    /// come back before it starts another (a cold start). Default zero: Lambda's model, a new
    /// execution environment whenever none is free. An edge sets a few milliseconds: a warm
    /// worker is usually free again in microseconds, a cold start costs tens of milliseconds,
    /// and on a few cores more workers than cores only add context switches.
    pub warm_wait: Duration,
    /// Function log output kept per invocation; the rest is replaced by a marker. Default 256 KiB.
    pub log_cap_bytes: usize,
    /// Largest response frame a worker may send (result and logs). Default 8 MiB.
    pub max_response_bytes: usize,
    /// Limits applied to packages.
    pub package_limits: PackageLimits,
    /// Run workers as unprivileged users (one uid per version) when ledge runs as root.
    /// Default true.
    pub drop_privileges: bool,
    /// First uid (and gid) handed to function versions when dropping privileges. Default 200000.
    pub worker_uid_base: u32,
    /// Processes and threads all workers of one version may run together (`RLIMIT_NPROC` of
    /// the version's uid; only when dropping privileges). Bounds fork bombs. Default 1024.
    pub max_processes_per_version: u64,
    /// Interpreters per language kept started ahead of need ("spares"): the first cold start of
    /// a newly loaded version takes one and only loads the handler. Default 0 (none).
    pub spare_workers: usize,
    /// Memory size a Node.js spare is started for (its V8 heap limit is fixed at start); a
    /// Node.js version with another memory size starts its own worker. Default 128.
    pub spare_memory_mb: u32,
    /// A cgroup v2 directory whose children may get memory limits (`memory` enabled in its
    /// `cgroup.subtree_control`). Default: ledge's own cgroup if it delegates memory, else
    /// none (workers are then bounded by rlimits and the interpreter's heap limit).
    pub cgroup_parent: Option<PathBuf>,
    /// Start every worker in a PID namespace of its own, so that a worker's kill (timeout,
    /// retirement, shutdown) also ends processes it started that left its process group
    /// (`setsid`, double forks). Takes effect when ledge runs as root and unshare(1) and
    /// prlimit(1) from util-linux can create one; otherwise workers run as before. Default
    /// true.
    pub pid_namespaces: bool,
    /// Size of each loaded version's `/tmp` (Lambda's default ephemeral storage: 512 MiB).
    /// When ledge runs as root the directory is a tmpfs of this size, a cap on all files
    /// together; otherwise (or if mounting fails) each file is capped at this size
    /// (`RLIMIT_FSIZE`). Default 512 MiB.
    pub tmp_size_bytes: u64,
    /// Where function log lines go. Default: discarded (the caller still gets them in
    /// [`InvokeOutput::logs`](crate::InvokeOutput)).
    pub log_sink: Option<Arc<dyn LogSink>>,
    /// Capacity of the channel to the log sink, in invocations; when full, logs are dropped
    /// and counted rather than slowing invocations. Default 4096.
    pub log_channel_capacity: usize,
}

/// Lambda's package limits plus ledge's zip-bomb guards.
#[derive(Debug, Clone)]
pub struct PackageLimits {
    /// Largest zip accepted (Lambda's direct-upload limit). Default 50 MiB.
    pub max_zip_bytes: u64,
    /// Largest total unzipped size (Lambda's limit). Default 250 MiB.
    pub max_unzipped_bytes: u64,
    /// Most entries in one package. Default 20000.
    pub max_entries: usize,
    /// Highest ratio of unzipped to compressed size for one entry. Default 200.
    pub max_compression_ratio: u64,
}

impl Default for PackageLimits {
    fn default() -> Self {
        PackageLimits {
            max_zip_bytes: 50 * 1024 * 1024,
            max_unzipped_bytes: 250 * 1024 * 1024,
            max_entries: 20_000,
            max_compression_ratio: 200,
        }
    }
}

/// One function version as the runtime needs it.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    /// Function name as the function sees it (`context.functionName`); at the edge this is the
    /// replica name `us-east-1.<name>`.
    pub name: String,
    /// Version (`"1"`, `"$LATEST"`).
    pub version: String,
    /// Runtime identifier, e.g. `nodejs20.x` or `python3.12`.
    pub runtime: String,
    /// Handler string, e.g. `index.handler`.
    pub handler: String,
    /// Memory size in MB (128–10240).
    pub memory_mb: u32,
    /// Invocation timeout.
    pub timeout: Duration,
    /// The function's own environment variables (reserved names cannot be overridden).
    pub env: BTreeMap<String, String>,
    /// The code.
    pub code: PackageRef,
    /// ARN reported as `invokedFunctionArn`; default built from region, account, name, version.
    pub arn: Option<String>,
    /// Concurrent invocations of this version; default [`RuntimeConfig::version_concurrency`].
    pub concurrency: Option<usize>,
}

impl FunctionSpec {
    /// A spec with Lambda's defaults: 128 MB, 3 s, no environment, version `$LATEST`.
    pub fn new(
        name: impl Into<String>,
        runtime: impl Into<String>,
        handler: impl Into<String>,
        code: PackageRef,
    ) -> Self {
        FunctionSpec {
            name: name.into(),
            version: "$LATEST".to_string(),
            runtime: runtime.into(),
            handler: handler.into(),
            memory_mb: 128,
            timeout: Duration::from_secs(3),
            env: BTreeMap::new(),
            code,
            arn: None,
            concurrency: None,
        }
    }
}

impl RuntimeConfig {
    /// A configuration with every default, keeping its files under `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        RuntimeConfig {
            data_dir: data_dir.into(),
            interpreters: HashMap::new(),
            region: "us-east-1".to_string(),
            account_id: "000000000000".to_string(),
            idle_timeout: Duration::from_secs(600),
            init_timeout: Duration::from_secs(10),
            node_concurrency: 1000,
            node_queue: 1000,
            version_concurrency: 64,
            version_queue: 256,
            warm_wait: Duration::ZERO,
            log_cap_bytes: 256 * 1024,
            max_response_bytes: 8 * 1024 * 1024,
            package_limits: PackageLimits::default(),
            drop_privileges: true,
            worker_uid_base: 200_000,
            max_processes_per_version: 1024,
            spare_workers: 0,
            spare_memory_mb: 128,
            cgroup_parent: None,
            tmp_size_bytes: 512 * 1024 * 1024,
            pid_namespaces: true,
            log_sink: None,
            log_channel_capacity: 4096,
        }
    }

    /// The interpreter configured for `runtime`, or the default for its language.
    pub(crate) fn interpreter(&self, runtime: &str, language: Language) -> PathBuf {
        if let Some(path) = self.interpreters.get(runtime) {
            return path.clone();
        }
        match language {
            Language::Node => PathBuf::from("node"),
            Language::Python => PathBuf::from("python3"),
        }
    }
}

impl std::fmt::Debug for RuntimeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeConfig")
            .field("data_dir", &self.data_dir)
            .field("interpreters", &self.interpreters)
            .field("region", &self.region)
            .field("idle_timeout", &self.idle_timeout)
            .field("node_concurrency", &self.node_concurrency)
            .field("version_concurrency", &self.version_concurrency)
            .finish_non_exhaustive()
    }
}
