//! `ledge control`: the control plane alone (the AWS-compatible API).
//!
//! Every flag is also an environment variable `LEDGE_<FLAG>` and a key of `--config FILE`
//! (JSON object or TOML `key = value` lines, keys spelled like the flags). Precedence: flag,
//! then environment, then the file, then the default.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use ledge_control::credentials::{self, Source};
use ledge_control::{ControlConfig, ControlPlane, Credentials};

use crate::config_file::FileValues;

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
    /// Seconds without a heartbeat after which an edge counts as offline (and no longer holds
    /// distributions InProgress) [default: 60].
    #[arg(long, env = "LEDGE_EDGE_HEARTBEAT_TIMEOUT")]
    edge_heartbeat_timeout: Option<u64>,
    /// A file with any of these settings (JSON, or TOML `key = value` lines).
    #[arg(long, env = "LEDGE_CONFIG")]
    config: Option<PathBuf>,
    /// Settings of the functions Invoke runs (`ledge serve`: its edge's too).
    #[command(flatten)]
    pub(crate) functions: crate::edge::FunctionArgs,
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

/// Runs the control plane until interrupted.
pub(crate) async fn run(args: ControlArgs) -> anyhow::Result<ExitCode> {
    let started = start(args).await?;
    started.serve(shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// A control plane bound to its address and announced, not serving yet.
pub(crate) struct Started {
    /// The opened control plane.
    pub(crate) control: ControlPlane,
    /// The config feed edges follow.
    pub(crate) feed: ledge_control::feed::Feed,
    /// The bound API listener.
    pub(crate) listener: tokio::net::TcpListener,
    /// Its address.
    pub(crate) addr: SocketAddr,
    /// The data directory in effect.
    pub(crate) data_dir: PathBuf,
    /// Domain of distributions' generated names.
    pub(crate) edge_domain: String,
}

impl Started {
    /// Serves the API and the feed until `shutdown` resolves.
    pub(crate) async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let api = ledge_control::router(self.control.state()).layer(
            axum::middleware::from_fn_with_state(
                self.feed.clone(),
                ledge_control::feed::poke_after_writes,
            ),
        );
        axum::serve(self.listener, self.feed.routes().merge(api))
            .with_graceful_shutdown(shutdown)
            .await
            .context("API server failed")
    }
}

impl ControlArgs {
    /// The `--config FILE` given, if any (`ledge serve` reads its edge's keys there too).
    pub(crate) fn config_file(&self) -> Option<&std::path::Path> {
        self.config.as_deref()
    }
}

/// Opens the control plane, binds its listener and prints the address (`ledge control` and
/// `ledge serve`).
pub(crate) async fn start(args: ControlArgs) -> anyhow::Result<Started> {
    let from_env = match (args.access_key_id, args.secret_access_key) {
        (Some(access_key_id), Some(secret_access_key)) => Some(Credentials {
            access_key_id,
            secret_access_key,
        }),
        (None, None) => None,
        _ => anyhow::bail!("set both LEDGE_ACCESS_KEY_ID and LEDGE_SECRET_ACCESS_KEY, or neither"),
    };
    let file = FileValues::load(args.config.as_deref())?;
    let pick = |flag: Option<String>, key: &str| flag.or_else(|| file.string(key));
    let defaults = ControlConfig::default();
    let api_listen: SocketAddr = match args.api_listen {
        Some(a) => a,
        None => pick(None, "api_listen")
            .unwrap_or_else(|| "127.0.0.1:4000".into())
            .parse()
            .context("--api-listen: expected IP:PORT")?,
    };
    let functions = args.functions.merged(&file)?;
    let config = ControlConfig {
        function_tmp_size: functions.function_tmp_size,
        function_pid_namespaces: functions.function_pid_namespaces,
        data_dir: pick(args.data_dir.map(|p| p.display().to_string()), "data_dir")
            .map(PathBuf::from)
            .unwrap_or(defaults.data_dir.clone()),
        database_url: pick(args.database_url, "database_url"),
        blob_url: pick(args.blob_url, "blob_url"),
        region: pick(args.region, "region").unwrap_or(defaults.region.clone()),
        account_id: pick(args.account_id, "account_id").unwrap_or(defaults.account_id.clone()),
        edge_domain: pick(args.edge_domain, "edge_domain").unwrap_or(defaults.edge_domain.clone()),
        edge_heartbeat_timeout: match pick(
            args.edge_heartbeat_timeout.map(|s| s.to_string()),
            "edge_heartbeat_timeout",
        ) {
            Some(s) => std::time::Duration::from_secs(
                s.parse()
                    .context("--edge-heartbeat-timeout: expected seconds")?,
            ),
            None => defaults.edge_heartbeat_timeout,
        },
        ..defaults
    };
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    let loaded = credentials::load_or_create(&config.data_dir, from_env)?;
    let data_dir = config.data_dir.clone();
    let edge_domain = config.edge_domain.clone();
    let control = ControlPlane::open(config, loaded.credentials).await?;
    tokio::spawn(control.clone().run_sweeper());
    let state = control.state();
    let feed = ledge_control::feed::Feed::open(
        state.store().clone(),
        state.blobs().clone(),
        ledge_control::feed::FeedConfig::default(),
    )
    .await
    .context("cannot build the config feed")?;
    tokio::spawn(feed.clone().run());

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
    Ok(Started {
        control,
        feed,
        listener,
        addr,
        data_dir,
        edge_domain,
    })
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
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
