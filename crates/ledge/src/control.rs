//! `ledge control`: the control plane alone (the AWS-compatible API).
//!
//! Every flag is also an environment variable `LEDGE_<FLAG>` and a key of `--config FILE`
//! (JSON object or TOML `key = value` lines, keys spelled like the flags). Precedence: flag,
//! then environment, then the file, then the default.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use ledge_control::credentials::{self, Source};
use ledge_control::{ControlConfig, ControlPlane, Credentials};

/// Flags of `ledge control`.
#[derive(Debug, clap::Args)]
pub(crate) struct ControlArgs {
    /// Directory for the SQLite database, packages and generated credentials
    /// [default: ./ledge-data].
    #[arg(long, env = "LEDGE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address of the API (port 0: ephemeral, printed on stdout) [default: 127.0.0.1:4000].
    #[arg(long, env = "LEDGE_API_LISTEN")]
    api_listen: Option<SocketAddr>,
    /// sqlite://FILE or postgres://… [default: sqlite://<data-dir>/ledge.db].
    #[arg(long, env = "LEDGE_DATABASE_URL")]
    database_url: Option<String>,
    /// file://DIR or s3://BUCKET/PREFIX [default: file://<data-dir>/blobs].
    #[arg(long, env = "LEDGE_BLOB_URL")]
    blob_url: Option<String>,
    /// Region reported in ARNs [default: us-east-1].
    #[arg(long, env = "LEDGE_REGION")]
    region: Option<String>,
    /// 12-digit account id reported in ARNs [default: 000000000000].
    #[arg(long, env = "LEDGE_ACCOUNT_ID")]
    account_id: Option<String>,
    /// Domain of distributions' generated DomainName (`<name>.<edge-domain>`)
    /// [default: ledge.localhost].
    #[arg(long, env = "LEDGE_EDGE_DOMAIN")]
    edge_domain: Option<String>,
    /// A file with any of these settings (JSON, or TOML `key = value` lines).
    #[arg(long, env = "LEDGE_CONFIG")]
    config: Option<PathBuf>,
    /// Root access key id (with LEDGE_SECRET_ACCESS_KEY); default: <data-dir>/credentials.
    #[arg(long, env = "LEDGE_ACCESS_KEY_ID", hide = true)]
    access_key_id: Option<String>,
    /// Root secret access key (with LEDGE_ACCESS_KEY_ID).
    #[arg(
        long,
        env = "LEDGE_SECRET_ACCESS_KEY",
        hide = true,
        hide_env_values = true
    )]
    secret_access_key: Option<String>,
}

/// Values of `--config FILE`, keyed by flag name with `_` for `-`.
fn file_values(path: Option<&Path>) -> anyhow::Result<HashMap<String, String>> {
    let Some(path) = path else {
        return Ok(HashMap::new());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --config {}", path.display()))?;
    let mut values = HashMap::new();
    if text.trim_start().starts_with('{') {
        let map: HashMap<String, serde_json::Value> = serde_json::from_str(&text)
            .with_context(|| format!("{}: invalid JSON", path.display()))?;
        for (k, v) in map {
            let v = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            values.insert(k.replace('-', "_"), v);
        }
    } else {
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('[') {
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .with_context(|| format!("{}:{}: expected key = value", path.display(), n + 1))?;
            let v = v.trim().trim_matches('"').trim_matches('\'');
            values.insert(k.trim().trim_matches('"').replace('-', "_"), v.to_owned());
        }
    }
    Ok(values)
}

/// Runs the control plane until interrupted.
pub(crate) async fn run(args: ControlArgs) -> anyhow::Result<ExitCode> {
    let from_env = match (args.access_key_id, args.secret_access_key) {
        (Some(access_key_id), Some(secret_access_key)) => Some(Credentials {
            access_key_id,
            secret_access_key,
        }),
        (None, None) => None,
        _ => anyhow::bail!("set both LEDGE_ACCESS_KEY_ID and LEDGE_SECRET_ACCESS_KEY, or neither"),
    };
    let file = file_values(args.config.as_deref())?;
    let pick = |flag: Option<String>, key: &str| flag.or_else(|| file.get(key).cloned());
    let defaults = ControlConfig::default();
    let api_listen: SocketAddr = match args.api_listen {
        Some(a) => a,
        None => pick(None, "api_listen")
            .unwrap_or_else(|| "127.0.0.1:4000".into())
            .parse()
            .context("--api-listen: expected IP:PORT")?,
    };
    let config = ControlConfig {
        data_dir: pick(args.data_dir.map(|p| p.display().to_string()), "data_dir")
            .map(PathBuf::from)
            .unwrap_or(defaults.data_dir.clone()),
        database_url: pick(args.database_url, "database_url"),
        blob_url: pick(args.blob_url, "blob_url"),
        region: pick(args.region, "region").unwrap_or(defaults.region.clone()),
        account_id: pick(args.account_id, "account_id").unwrap_or(defaults.account_id.clone()),
        edge_domain: pick(args.edge_domain, "edge_domain").unwrap_or(defaults.edge_domain.clone()),
        ..defaults
    };
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    let loaded = credentials::load_or_create(&config.data_dir, from_env)?;
    let control = ControlPlane::open(config, loaded.credentials).await?;
    tokio::spawn(control.clone().run_sweeper());

    let listener = tokio::net::TcpListener::bind(api_listen)
        .await
        .with_context(|| format!("cannot listen on {api_listen}"))?;
    let addr = listener.local_addr()?;
    if let Source::Generated(file) | Source::File(file) = &loaded.source {
        let abs = std::fs::canonicalize(file).unwrap_or_else(|_| file.clone());
        eprintln!(
            "ledge: credentials in {path} (profile {profile}); point the AWS CLI at ledge with:\n  \
             export AWS_SHARED_CREDENTIALS_FILE={path} AWS_PROFILE={profile}\n  \
             aws --endpoint-url http://{addr} lambda list-functions",
            path = abs.display(),
            profile = credentials::PROFILE,
        );
    }
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "ledge: api listening on http://{addr}")?;
        out.flush()?;
    }
    axum::serve(listener, ledge_control::router(control.state()))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("API server failed")?;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
