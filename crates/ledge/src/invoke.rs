//! `ledge invoke`: runs a function locally, as Lambda would, and prints its result and logs.
//!
//! The result (or Lambda's error document) goes to stdout; the log lines, START to REPORT, go
//! to stderr. Exit status 0 when the function returned, 1 when it failed.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use ledge_runtime::{FunctionSpec, PackageRef, Runtime, RuntimeConfig};

/// Flags of `ledge invoke`.
#[derive(Debug, clap::Args)]
pub(crate) struct InvokeArgs {
    /// Lambda runtime identifier, e.g. `nodejs20.x` or `python3.12`.
    #[arg(long)]
    pub(crate) runtime: String,
    /// Handler, e.g. `index.handler` or `lambda_function.lambda_handler`.
    #[arg(long)]
    pub(crate) handler: String,
    /// The function's code as a zip file.
    #[arg(long, conflicts_with = "dir", required_unless_present = "dir")]
    pub(crate) zip: Option<PathBuf>,
    /// The function's code as a directory.
    #[arg(long)]
    pub(crate) dir: Option<PathBuf>,
    /// Event JSON file, or `-` for stdin. Default: `{}`.
    #[arg(long)]
    pub(crate) event: Option<String>,
    /// Memory size in MB.
    #[arg(long, default_value_t = 128)]
    pub(crate) memory: u32,
    /// Timeout in seconds.
    #[arg(long, default_value_t = 3.0)]
    pub(crate) timeout: f64,
    /// Function name shown to the function.
    #[arg(long, default_value = "local")]
    pub(crate) name: String,
    /// An environment variable `KEY=VALUE` for the function (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub(crate) env: Vec<String>,
    /// Interpreter to use instead of `node`/`python3` on PATH.
    #[arg(long)]
    pub(crate) interpreter: Option<PathBuf>,
    /// The function's /tmp size and PID namespace.
    #[command(flatten)]
    pub(crate) functions: crate::edge::FunctionArgs,
}

/// Runs `ledge invoke`.
pub(crate) async fn run(args: InvokeArgs) -> anyhow::Result<ExitCode> {
    let event = read_event(args.event.as_deref())?;
    let code = match (&args.zip, &args.dir) {
        (Some(zip), _) => PackageRef::ZipFile(zip.clone()),
        (None, Some(dir)) => PackageRef::Dir(dir.clone()),
        (None, None) => anyhow::bail!("give the code with --zip FILE or --dir DIR"),
    };
    if !(args.timeout > 0.0 && args.timeout <= 900.0) {
        anyhow::bail!("--timeout must be between 0 and 900 seconds");
    }
    let mut spec = FunctionSpec::new(&args.name, &args.runtime, &args.handler, code);
    spec.memory_mb = args.memory;
    spec.timeout = Duration::from_secs_f64(args.timeout);
    for pair in &args.env {
        let (k, v) = pair
            .split_once('=')
            .with_context(|| format!("--env {pair:?} is not KEY=VALUE"))?;
        spec.env.insert(k.to_string(), v.to_string());
    }

    let scratch = ScratchDir::new()?;
    let mut config = RuntimeConfig::new(scratch.0.join("data"));
    if let Some(interpreter) = &args.interpreter {
        config
            .interpreters
            .insert(args.runtime.clone(), interpreter.clone());
    }
    args.functions.apply(&mut config);
    let runtime = Runtime::new(config).context("starting the function runtime")?;
    let function = runtime.load(spec).await?;
    let invocation = function.invoke_detailed(&event).await;

    let mut stderr = std::io::stderr().lock();
    stderr.write_all(invocation.logs.text().as_bytes())?;
    stderr.flush()?;
    let mut stdout = std::io::stdout().lock();
    let code = match &invocation.result {
        Ok(payload) => {
            stdout.write_all(payload)?;
            ExitCode::SUCCESS
        }
        Err(e) => {
            stdout.write_all(&e.to_lambda_json())?;
            ExitCode::from(1)
        }
    };
    stdout.write_all(b"\n")?;
    stdout.flush()?;
    drop(function);
    drop(runtime);
    Ok(code)
}

fn read_event(source: Option<&str>) -> anyhow::Result<Vec<u8>> {
    let bytes = match source {
        None => b"{}".to_vec(),
        Some("-") => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("reading the event from stdin")?;
            buf
        }
        Some(path) => std::fs::read(path).with_context(|| format!("reading the event {path}"))?,
    };
    serde_json::from_slice::<serde::de::IgnoredAny>(&bytes)
        .context("the event is not valid JSON")?;
    Ok(bytes)
}

/// A private data directory for one run, removed afterwards.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> anyhow::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir =
            std::env::temp_dir().join(format!("ledge-invoke-{}-{nanos:x}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(ScratchDir(dir))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        make_writable(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Packages are unpacked read-only; give the owner write access back so they can be removed.
fn make_writable(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if meta.is_dir() {
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700));
        if let Ok(entries) = std::fs::read_dir(path) {
            for entry in entries.flatten() {
                make_writable(&entry.path());
            }
        }
    }
}
