//! The [`Runtime`]: loads function versions and owns what they share on this node.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use tokio::time::Instant;

use crate::cgroup::CgroupParent;
use crate::config::{Language, RuntimeConfig};
use crate::error::{LoadError, ThrottleScope};
use crate::function::{Admission, FunctionHandle};
use crate::launch::Launchers;
use crate::limits;
use crate::logs::LogDispatcher;
use crate::package::PackageStore;
use crate::pidns::PidNamespaces;
use crate::tmpfs::TmpMounts;
use crate::worker::{VersionInfo, Worker};

const BOOTSTRAP_JS: &str = include_str!("bootstrap/bootstrap.js");
const BOOTSTRAP_PY: &str = include_str!("bootstrap/bootstrap.py");

/// Environment variables Lambda reserves; a function may not set them.
pub const RESERVED_ENV: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

/// Runs function versions in worker processes on this node.
///
/// Create one per process with [`Runtime::new`] (inside a tokio runtime), then
/// [`load`](Runtime::load) each version and keep the returned handle. Dropping the runtime
/// stops every idle worker; busy workers stop when their invocation ends.
#[derive(Debug)]
pub struct Runtime {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: RuntimeConfig,
    store: PackageStore,
    bootstrap_js: PathBuf,
    bootstrap_py: PathBuf,
    sock_dir: PathBuf,
    tmp_root: PathBuf,
    tmp_mounts: TmpMounts,
    node_limit: Arc<Admission>,
    logs: LogDispatcher,
    worker_ids: Arc<AtomicU64>,
    versions: Mutex<Vec<Weak<FunctionHandle>>>,
    users: Mutex<HashMap<(String, String), u32>>,
    interpreters: Mutex<HashMap<PathBuf, PathBuf>>,
    /// The Python bootstrap compiled by each (resolved) Python interpreter.
    compiled_bootstraps: Mutex<HashMap<PathBuf, PathBuf>>,
    privileged: bool,
    cgroup: Option<CgroupParent>,
    spares: Mutex<Vec<Spare>>,
    spare_ids: AtomicU64,
    prlimit_tool: Option<PathBuf>,
    pid_namespaces: Option<PidNamespaces>,
    /// The launchers of loaded versions (to end their prepared launches).
    launchers: Mutex<Vec<Weak<Launchers>>>,
}

/// An interpreter started ahead of need, not yet given a function.
#[derive(Debug)]
struct Spare {
    worker: Worker,
    language: Language,
    interpreter: PathBuf,
    user: Option<(u32, u32)>,
}

impl Runtime {
    /// Prepares the data directory, writes the bootstraps and starts the idle-worker reaper.
    /// Fails outside a tokio runtime (its tasks need one).
    pub fn new(config: RuntimeConfig) -> std::io::Result<Runtime> {
        let tokio = tokio::runtime::Handle::try_current().map_err(|e| {
            std::io::Error::other(format!("Runtime::new needs a tokio runtime: {e}"))
        })?;
        fs::create_dir_all(&config.data_dir)?;
        // Absolute: workers start in their own directories, and a relative path to the
        // bootstrap would name nothing there (`--data-dir data` failed every invocation).
        let data = fs::canonicalize(&config.data_dir)?;
        let privileged = config.drop_privileges && limits::is_root();
        // Workers of other uids must traverse the data directory, never list it.
        fs::set_permissions(&data, fs::Permissions::from_mode(0o711))?;
        let runtime_dir = data.join("bootstrap");
        fs::create_dir_all(&runtime_dir)?;
        fs::set_permissions(&runtime_dir, fs::Permissions::from_mode(0o755))?;
        let bootstrap_js = runtime_dir.join("bootstrap.js");
        let bootstrap_py = runtime_dir.join("bootstrap.py");
        for (path, text) in [(&bootstrap_js, BOOTSTRAP_JS), (&bootstrap_py, BOOTSTRAP_PY)] {
            if fs::read_to_string(path).ok().as_deref() != Some(text) {
                let tmp = path.with_extension("tmp");
                fs::write(&tmp, text)?;
                fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644))?;
                fs::rename(&tmp, path)?;
            }
        }
        let sock_dir = data.join("sock");
        let tmp_root = data.join("tmp");
        for dir in [&sock_dir, &tmp_root] {
            fs::create_dir_all(dir)?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o711))?;
        }
        // Only root may mount; a root that keeps its workers as root still caps their /tmp.
        let tmp_mounts = TmpMounts::new(&tmp_root, config.tmp_size_bytes, limits::is_root());
        let store = PackageStore::new(&data, config.package_limits.clone())?;
        let logs = LogDispatcher::start(config.log_sink.clone(), config.log_channel_capacity)?;
        let node_limit = Arc::new(Admission::new(
            config.node_concurrency,
            config.node_queue,
            ThrottleScope::Node,
        ));
        let cgroup = CgroupParent::detect(config.cgroup_parent.as_deref());
        if cgroup.is_none() && config.cgroup_parent.is_some() {
            tracing::warn!("cgroup_parent does not delegate the memory controller; using rlimits");
        }
        let pid_namespaces = if config.pid_namespaces && limits::is_root() {
            let found = PidNamespaces::detect();
            if found.is_none() {
                tracing::warn!(
                    "cannot start workers in PID namespaces (unshare from util-linux, CAP_SYS_ADMIN); a process that leaves its worker's process group survives the worker"
                );
            }
            found
        } else {
            None
        };
        let inner = Arc::new(Inner {
            cgroup,
            store,
            bootstrap_js,
            bootstrap_py,
            sock_dir,
            tmp_root,
            tmp_mounts,
            node_limit,
            logs,
            worker_ids: Arc::new(AtomicU64::new(1)),
            versions: Mutex::new(Vec::new()),
            users: Mutex::new(HashMap::new()),
            interpreters: Mutex::new(HashMap::new()),
            compiled_bootstraps: Mutex::new(HashMap::new()),
            privileged,
            spares: Mutex::new(Vec::new()),
            spare_ids: AtomicU64::new(0),
            prlimit_tool: if privileged {
                limits::find_prlimit_tool()
            } else {
                None
            },
            pid_namespaces,
            launchers: Mutex::new(Vec::new()),
            config,
        });
        tokio.spawn(reap(Arc::downgrade(&inner)));
        if inner.config.spare_workers > 0 {
            for (language, runtime) in [
                (Language::Node, "nodejs20.x"),
                (Language::Python, "python3.12"),
            ] {
                let inner = inner.clone();
                tokio.spawn(async move {
                    let Ok(interpreter) = resolve_interpreter(&inner, runtime, language).await
                    else {
                        return;
                    };
                    for _ in 0..inner.config.spare_workers {
                        start_spare(&inner, language, &interpreter).await;
                    }
                });
            }
        }
        Ok(Runtime { inner })
    }

    /// The configuration this runtime was built with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// Spare interpreters currently started ahead of need.
    pub fn spare_workers(&self) -> usize {
        self.inner
            .spares
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// True when workers start in PID namespaces of their own (see
    /// [`RuntimeConfig::pid_namespaces`]).
    pub fn pid_namespaces(&self) -> bool {
        self.inner.pid_namespaces.is_some()
    }

    /// Stops every idle worker, spare interpreter and prepared launch, and unmounts every
    /// version's `/tmp`, now. Versions keep no worker that is busy now once it finishes. For a
    /// process about to exit: tasks (listeners, per-core runtimes) may still hold handles or
    /// this runtime and never drop them. Dropping the runtime does the same.
    pub fn shutdown(&self) {
        let inner = &self.inner;
        let versions = std::mem::take(
            &mut *inner
                .versions
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for version in versions.iter().filter_map(Weak::upgrade) {
            version.close();
        }
        let launchers = std::mem::take(
            &mut *inner
                .launchers
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for launcher in launchers.iter().filter_map(Weak::upgrade) {
            launcher.close();
        }
        drop(std::mem::take(
            &mut *inner.spares.lock().unwrap_or_else(PoisonError::into_inner),
        ));
        // Handles may outlive the runtime; their /tmp must not outlive it.
        inner.tmp_mounts.unmount_all();
    }

    /// Log batches lost because the log sink fell behind.
    pub fn dropped_log_batches(&self) -> u64 {
        self.inner.logs.dropped()
    }

    /// Loads a function version: checks the runtime and its interpreter, unpacks the package
    /// and prepares the version's `/tmp`. No worker starts until the first invocation or
    /// [`FunctionHandle::prewarm`].
    pub async fn load(&self, spec: crate::FunctionSpec) -> Result<Arc<FunctionHandle>, LoadError> {
        let inner = &self.inner;
        let language = crate::Language::of(&spec.runtime)
            .ok_or_else(|| LoadError::UnsupportedRuntime(spec.runtime.clone()))?;
        if !(128..=10_240).contains(&spec.memory_mb) {
            return Err(LoadError::InvalidConfig(format!(
                "1 validation error detected: Value '{}' at 'memorySize' failed to satisfy constraint: Member must have value between 128 and 10240",
                spec.memory_mb
            )));
        }
        if spec.timeout.is_zero() || spec.timeout > Duration::from_secs(900) {
            return Err(LoadError::InvalidConfig(
                "1 validation error detected: Value at 'timeout' failed to satisfy constraint: Member must have value between 1 and 900".to_string(),
            ));
        }
        let reserved: Vec<&str> = spec
            .env
            .keys()
            .filter(|k| RESERVED_ENV.contains(&k.as_str()))
            .map(String::as_str)
            .collect();
        if !reserved.is_empty() {
            return Err(LoadError::InvalidConfig(format!(
                "Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: {}",
                reserved.join(", ")
            )));
        }
        let interpreter = resolve_interpreter(inner, &spec.runtime, language).await?;
        let key = (spec.name.clone(), spec.version.clone());
        let spare = if inner.config.spare_workers > 0
            && !inner
                .users
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains_key(&key)
        {
            claim_spare(inner, language, &interpreter, spec.memory_mb)
        } else {
            None
        };
        let user = if let Some(spare) = &spare {
            if let Some((uid, _)) = spare.user {
                inner
                    .users
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(key, uid);
            }
            let refill = inner.clone();
            let path = interpreter.clone();
            tokio::spawn(async move { start_spare(&refill, language, &path).await });
            spare.user
        } else if inner.privileged && limits::executable_by_others(&interpreter) {
            Some(user_for(inner, &spec.name, &spec.version))
        } else {
            if inner.privileged {
                tracing::warn!(
                    interpreter = %interpreter.display(),
                    "interpreter is not reachable by unprivileged users; workers run as root"
                );
            }
            None
        };

        let store_gid = user.map(|(_, gid)| gid);
        let code = spec.code.clone();
        let store_inner = inner.clone();
        let package =
            tokio::task::spawn_blocking(move || store_inner.store.prepare(&code, store_gid))
                .await
                .map_err(|e| LoadError::Io(std::io::Error::other(e)))??;

        let tmp_dir = inner.tmp_root.join(format!(
            "{}-{}",
            sanitize(&spec.name),
            sanitize(&spec.version)
        ));
        fs::create_dir_all(&tmp_dir)?;
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&tmp_dir, Some(uid), Some(gid))?;
        }
        fs::set_permissions(&tmp_dir, fs::Permissions::from_mode(0o700))?;
        let tmp_mount = inner.tmp_mounts.acquire(&tmp_dir, user);

        let config = &inner.config;
        let arn = spec.arn.clone().unwrap_or_else(|| {
            format!(
                "arn:aws:lambda:{}:{}:function:{}:{}",
                config.region, config.account_id, spec.name, spec.version
            )
        });
        let log_group = format!("/aws/lambda/{}", spec.name);
        let bootstrap = bootstrap_for(inner, language, &interpreter);
        let interp_dir = interpreter
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let mut env: Vec<(String, String)> = spec
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let task_root = package.dir.display().to_string();
        let tmp = tmp_dir.display().to_string();
        env.extend(
            [
                ("PATH", format!("{interp_dir}:/usr/local/bin:/usr/bin:/bin")),
                ("LANG", "en_US.UTF-8".to_string()),
                ("TZ", ":UTC".to_string()),
                ("LAMBDA_TASK_ROOT", task_root),
                (
                    "LAMBDA_RUNTIME_DIR",
                    bootstrap
                        .parent()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                ),
                ("_HANDLER", spec.handler.clone()),
                ("AWS_REGION", config.region.clone()),
                ("AWS_DEFAULT_REGION", config.region.clone()),
                ("AWS_EXECUTION_ENV", format!("AWS_Lambda_{}", spec.runtime)),
                ("AWS_LAMBDA_FUNCTION_NAME", spec.name.clone()),
                ("AWS_LAMBDA_FUNCTION_VERSION", spec.version.clone()),
                (
                    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                    spec.memory_mb.to_string(),
                ),
                ("AWS_LAMBDA_LOG_GROUP_NAME", log_group.clone()),
                ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_string()),
                ("TMPDIR", tmp.clone()),
                ("HOME", tmp),
                ("LEDGE_FUNCTION_ARN", arn),
                ("LEDGE_LOG_CAP", config.log_cap_bytes.to_string()),
            ]
            .map(|(k, v)| (k.to_string(), v)),
        );
        if language == Language::Python {
            env.push(("PYTHONUNBUFFERED".to_string(), "1".to_string()));
            env.push((
                "LEDGE_AS_LIMIT".to_string(),
                limits::python_address_space(spec.memory_mb).to_string(),
            ));
        }

        let info = Arc::new(VersionInfo {
            name: spec.name.clone(),
            version: spec.version.clone(),
            language,
            memory_mb: spec.memory_mb,
            timeout: spec.timeout,
            interpreter,
            bootstrap,
            task_root: package.dir.clone(),
            sock_dir: inner.sock_dir.clone(),
            env,
            user,
            log_group: log_group.into(),
            init_timeout: config.init_timeout,
            max_response_bytes: config.max_response_bytes,
            raw_output_cap: config.log_cap_bytes,
            cgroup: inner.cgroup.clone(),
            max_processes: config.max_processes_per_version,
            prlimit_tool: inner.prlimit_tool.clone(),
            launchers: launchers_for(inner, true),
            warm_wait: config.warm_wait,
            spare: false,
            max_file_bytes: config.tmp_size_bytes,
            tmp_mount,
        });
        // The first cold start finds its PID namespace started (unless a spare serves it).
        if let (Some(launchers), None) = (&info.launchers, &spare) {
            launchers.prepare(&info);
        }
        let handle = Arc::new(FunctionHandle::new(
            info,
            package,
            Admission::new(
                spec.concurrency.unwrap_or(config.version_concurrency),
                config.version_queue,
                ThrottleScope::Version,
            ),
            inner.node_limit.clone(),
            inner.logs.clone(),
            inner.worker_ids.clone(),
            spare.map(|s| s.worker),
        ));
        let mut versions = inner
            .versions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        versions.retain(|v| v.strong_count() > 0);
        versions.push(Arc::downgrade(&handle));
        Ok(handle)
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Finds the real interpreter binary (resolving shims), once per configured path.
async fn resolve_interpreter(
    inner: &Inner,
    runtime: &str,
    language: Language,
) -> Result<PathBuf, LoadError> {
    let configured = inner.config.interpreter(runtime, language);
    if let Some(found) = inner
        .interpreters
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&configured)
    {
        return Ok(found.clone());
    }
    let bootstrap_py = inner.bootstrap_py.display().to_string();
    let probe = match language {
        Language::Node => vec!["-e", "process.stdout.write(process.execPath)"],
        Language::Python => vec!["-S", "-c", PYTHON_PROBE, &bootstrap_py],
    };
    let missing = |reason: String| LoadError::InterpreterMissing {
        runtime: runtime.to_string(),
        path: configured.display().to_string(),
        reason,
    };
    let output = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::process::Command::new(&configured)
            .args(probe)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| missing("did not answer within 10 s".to_string()))?
    .map_err(|e| missing(e.to_string()))?;
    if !output.status.success() {
        return Err(missing(format!("exited with {}", output.status)));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut lines = stdout.lines();
    let resolved = PathBuf::from(lines.next().unwrap_or_default().trim());
    let resolved = if resolved.is_absolute() && Path::new(&resolved).exists() {
        resolved
    } else {
        configured.clone()
    };
    if let Some(compiled) = lines.next().map(PathBuf::from).filter(|p| p.is_file()) {
        inner
            .compiled_bootstraps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(resolved.clone(), compiled);
    }
    inner
        .interpreters
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(configured, resolved.clone());
    Ok(resolved)
}

/// Finds the real Python executable and compiles the bootstrap with it, next to the source,
/// named by the interpreter's cache tag (bytecode is per Python version). Compiling the
/// bootstrap on every start cost ~5 ms of a ~15 ms interpreter start; `-B` keeps workers from
/// writing bytecode themselves. The bootstrap is compiled again by every new runtime, since
/// its source may have changed with ledge, and running a `.pyc` directly skips the staleness
/// check an import would make.
const PYTHON_PROBE: &str = r#"import sys
out = sys.executable
try:
    import py_compile
    target = sys.argv[1][:-3] + "." + sys.implementation.cache_tag + ".pyc"
    py_compile.compile(sys.argv[1], cfile=target, doraise=True)
    out += "\n" + target
except Exception:
    pass
sys.stdout.write(out)
"#;

/// The bootstrap a worker of `language` on `interpreter` runs: for Python the compiled one,
/// when the interpreter could compile it.
fn bootstrap_for(inner: &Inner, language: Language, interpreter: &Path) -> PathBuf {
    match language {
        Language::Node => inner.bootstrap_js.clone(),
        Language::Python => inner
            .compiled_bootstraps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(interpreter)
            .cloned()
            .unwrap_or_else(|| inner.bootstrap_py.clone()),
    }
}

/// Starts one spare interpreter for `language` and keeps it in the runtime's spares.
async fn start_spare(inner: &Arc<Inner>, language: Language, interpreter: &Path) {
    let n = inner.spare_ids.fetch_add(1, Ordering::Relaxed);
    let user = if inner.privileged && limits::executable_by_others(interpreter) {
        Some(user_for(inner, &format!("\0spare-{n}"), ""))
    } else {
        None
    };
    let config = &inner.config;
    let bootstrap = bootstrap_for(inner, language, interpreter);
    let root = bootstrap
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let interp_dir = interpreter
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let env = vec![
        (
            "PATH".to_string(),
            format!("{interp_dir}:/usr/local/bin:/usr/bin:/bin"),
        ),
        ("LANG".to_string(), "en_US.UTF-8".to_string()),
        ("TZ".to_string(), ":UTC".to_string()),
        (
            "LEDGE_LOG_CAP".to_string(),
            config.log_cap_bytes.to_string(),
        ),
        ("LEDGE_SPARE".to_string(), "1".to_string()),
    ];
    let info = VersionInfo {
        name: String::new(),
        version: "spare".to_string(),
        language,
        memory_mb: config.spare_memory_mb,
        timeout: Duration::from_secs(1),
        interpreter: interpreter.to_path_buf(),
        bootstrap,
        task_root: root,
        sock_dir: inner.sock_dir.clone(),
        env,
        user,
        log_group: Arc::from(""),
        init_timeout: config.init_timeout,
        max_response_bytes: config.max_response_bytes,
        raw_output_cap: config.log_cap_bytes,
        cgroup: inner.cgroup.clone(),
        max_processes: config.max_processes_per_version,
        prlimit_tool: inner.prlimit_tool.clone(),
        launchers: launchers_for(inner, false),
        warm_wait: Duration::ZERO,
        spare: true,
        max_file_bytes: config.tmp_size_bytes,
        tmp_mount: None,
    };
    let info = Arc::new(info);
    let id = inner.worker_ids.fetch_add(1, Ordering::Relaxed);
    match Worker::spawn(&info, id).await {
        Ok(worker) => inner
            .spares
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Spare {
                worker,
                language,
                interpreter: interpreter.to_path_buf(),
                user,
            }),
        Err(e) => tracing::warn!(?language, error = ?e, "cannot start a spare interpreter"),
    }
}

/// How a version's (or a spare's) workers start in PID namespaces, if they do; `ahead` keeps a
/// launch prepared after each cold start.
fn launchers_for(inner: &Inner, ahead: bool) -> Option<Arc<Launchers>> {
    let namespaces = inner.pid_namespaces.clone()?;
    let launchers = Arc::new(Launchers::new(namespaces, ahead, inner.worker_ids.clone()));
    if ahead {
        inner
            .launchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::downgrade(&launchers));
    }
    Some(launchers)
}

/// The uid and gid for a version's workers, stable for the life of this runtime.
fn user_for(inner: &Inner, name: &str, version: &str) -> (u32, u32) {
    let mut users = inner.users.lock().unwrap_or_else(PoisonError::into_inner);
    let next = users.len() as u32;
    let id = *users
        .entry((name.to_string(), version.to_string()))
        .or_insert(inner.config.worker_uid_base + next);
    (id, id)
}

/// Takes a spare that can serve a version of `language` on `interpreter` with `memory_mb`.
fn claim_spare(
    inner: &Inner,
    language: Language,
    interpreter: &Path,
    memory_mb: u32,
) -> Option<Spare> {
    if language == Language::Node && memory_mb != inner.config.spare_memory_mb {
        return None;
    }
    let mut spares = inner.spares.lock().unwrap_or_else(PoisonError::into_inner);
    let at = spares.iter().position(|s| {
        s.language == language && s.interpreter == interpreter && s.worker.is_alive()
    })?;
    Some(spares.swap_remove(at))
}

/// Retires idle workers past the idle timeout until the runtime is dropped.
async fn reap(inner: Weak<Inner>) {
    let period = match inner.upgrade() {
        Some(inner) => (inner.config.idle_timeout / 4)
            .clamp(Duration::from_millis(50), Duration::from_secs(10)),
        None => return,
    };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let Some(cutoff) = Instant::now().checked_sub(inner.config.idle_timeout) else {
            continue;
        };
        let versions: Vec<Arc<FunctionHandle>> = inner
            .versions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        if let Some(cgroup) = &inner.cgroup {
            cgroup.sweep();
        }
        let launchers: Vec<Arc<Launchers>> = {
            let mut launchers = inner
                .launchers
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            launchers.retain(|l| l.strong_count() > 0);
            launchers.iter().filter_map(Weak::upgrade).collect()
        };
        for launcher in launchers {
            launcher.retire(cutoff);
        }
        for version in versions {
            let retired = version.retire_idle(cutoff);
            if retired > 0 {
                tracing::debug!(function = version.name(), retired, "retired idle workers");
            }
        }
    }
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
