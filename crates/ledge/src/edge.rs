//! `ledge edge`: an edge node serving a config snapshot file.
//!
//! Every flag is also an environment variable `LEDGE_<FLAG>` and a key of `--config FILE`
//! (JSON object or simple TOML `key = value` lines, keys spelled like the flags). Precedence:
//! flag, then environment, then the file, then the default.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::config_file::FileValues;
use anyhow::Context;
use ledge_edge::lambda::{LambdaSettings, LambdaTriggers};
use ledge_edge::reload::SnapshotHook as _;
use ledge_edge::{
    reload, server, tls, Drain, Edge, EdgeCache, EdgeIdentity, Limits, OriginClients,
    ServerSettings, SnapshotStore,
};

/// Flags of `ledge edge`.
#[derive(Debug, clap::Args)]
pub(crate) struct EdgeArgs {
    /// Serve the config snapshot in this JSON file; reloaded on SIGHUP and when it changes.
    #[arg(long, env = "LEDGE_CONFIG_FILE")]
    config_file: Option<PathBuf>,
    /// Follow the control plane at this URL (`http://host:port`) instead of a file.
    #[arg(long, env = "LEDGE_CONTROL_URL", conflicts_with = "config_file")]
    control_url: Option<String>,
    /// Edge token for --control-url (`ledge edge-token create`).
    #[arg(long, env = "LEDGE_EDGE_TOKEN", hide_env_values = true)]
    edge_token: Option<String>,
    /// Directory for the edge's state [default: ./ledge-data].
    #[arg(long, env = "LEDGE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Plain HTTP listener (port 0: ephemeral) [default: 127.0.0.1:8080].
    #[arg(long, env = "LEDGE_EDGE_LISTEN")]
    edge_listen: Option<SocketAddr>,
    /// HTTPS listener (HTTP/2 and HTTP/1.1); needs --tls-cert and --tls-key.
    #[arg(long, env = "LEDGE_EDGE_TLS_LISTEN")]
    edge_tls_listen: Option<SocketAddr>,
    /// PEM certificate chain; repeat for several certificates (chosen by SNI).
    #[arg(long, env = "LEDGE_TLS_CERT", value_delimiter = ',')]
    tls_cert: Vec<PathBuf>,
    /// PEM private key of the --tls-cert at the same position.
    #[arg(long, env = "LEDGE_TLS_KEY", value_delimiter = ',')]
    tls_key: Vec<PathBuf>,
    /// Domain under which distributions get their names [default: ledge.localhost].
    #[arg(long, env = "LEDGE_EDGE_DOMAIN")]
    edge_domain: Option<String>,
    /// This edge's location name, sent as X-Amz-Cf-Pop [default: LOCAL1].
    #[arg(long, env = "LEDGE_POP")]
    pop: Option<String>,
    /// Directory of the disk cache tier (none: memory only).
    #[arg(long, env = "LEDGE_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Disk cache tier size in bytes [default: 1073741824].
    #[arg(long, env = "LEDGE_CACHE_SIZE")]
    cache_size: Option<u64>,
    /// Memory cache tier size in bytes [default: 268435456].
    #[arg(long, env = "LEDGE_CACHE_MEMORY_SIZE")]
    cache_memory_size: Option<u64>,
    /// Largest response body the cache stores, in bytes; larger ones stream through
    /// uncached [default: 67108864].
    #[arg(long, env = "LEDGE_CACHE_MAX_OBJECT_SIZE")]
    cache_max_object_size: Option<u64>,
    /// Largest request body accepted, in bytes [default: 1073741824].
    #[arg(long, env = "LEDGE_MAX_BODY_SIZE")]
    max_body_size: Option<u64>,
    /// Extra CA certificates (PEM) trusted for HTTPS origins, besides the public roots.
    #[arg(long, env = "LEDGE_ORIGIN_CA", value_delimiter = ',')]
    origin_ca: Vec<PathBuf>,
    /// Seconds a viewer may take to send a request head [default: 10].
    #[arg(long, env = "LEDGE_HEADER_READ_TIMEOUT")]
    header_read_timeout: Option<u64>,
    /// Seconds open connections get to finish their requests after SIGTERM/SIGINT
    /// [default: 30].
    #[arg(long, env = "LEDGE_DRAIN_TIMEOUT")]
    drain_timeout: Option<u64>,
    /// Worker threads serving viewers, each with its own listener socket [default: CPU count].
    #[arg(long, env = "LEDGE_EDGE_THREADS")]
    edge_threads: Option<usize>,
    /// Function settings (`/tmp` size, PID namespaces).
    #[command(flatten)]
    functions: FunctionArgs,
    /// A file with any of these settings (JSON, or TOML `key = value` lines).
    #[arg(long, env = "LEDGE_CONFIG")]
    config: Option<PathBuf>,
}

/// Flags of the function runtime, shared by `ledge edge`, `ledge serve` and `ledge invoke`.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct FunctionArgs {
    /// Size of each function version's /tmp in bytes: a tmpfs of its own when ledge runs as
    /// root, else a cap per file [default: 536870912].
    #[arg(long, env = "LEDGE_FUNCTION_TMP_SIZE")]
    pub(crate) function_tmp_size: Option<u64>,
    /// Start each function worker in a PID namespace of its own, so that processes it starts
    /// die with it (needs root and unshare from util-linux) [default: true].
    #[arg(long, env = "LEDGE_FUNCTION_PID_NAMESPACES", value_name = "BOOL")]
    pub(crate) function_pid_namespaces: Option<bool>,
}

impl FunctionArgs {
    /// The settings after the flags (and environment), then `--config` keys of the same names.
    pub(crate) fn merged(self, f: &FileValues) -> anyhow::Result<FunctionArgs> {
        Ok(FunctionArgs {
            function_tmp_size: self
                .function_tmp_size
                .or(f.parse("function_tmp_size")?)
                .filter(|n| *n > 0),
            function_pid_namespaces: self
                .function_pid_namespaces
                .or(f.parse("function_pid_namespaces")?),
        })
    }

    /// Applies the settings given to a runtime's configuration.
    pub(crate) fn apply(&self, config: &mut ledge_runtime::RuntimeConfig) {
        if let Some(bytes) = self.function_tmp_size.filter(|n| *n > 0) {
            config.tmp_size_bytes = bytes;
        }
        if let Some(on) = self.function_pid_namespaces {
            config.pid_namespaces = on;
        }
    }

    /// The flags as command-line arguments (for the edge `ledge serve` starts).
    pub(crate) fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(n) = self.function_tmp_size {
            args.extend(["--function-tmp-size".to_string(), n.to_string()]);
        }
        if let Some(on) = self.function_pid_namespaces {
            args.extend(["--function-pid-namespaces".to_string(), on.to_string()]);
        }
        args
    }
}

/// The settings of one edge, after flags, environment and file were merged.
#[derive(Debug)]
struct EdgeConfig {
    source: Source,
    data_dir: PathBuf,
    edge_listen: SocketAddr,
    edge_tls_listen: Option<SocketAddr>,
    tls_pairs: Vec<(PathBuf, PathBuf)>,
    edge_domain: String,
    pop: String,
    cache_dir: Option<PathBuf>,
    cache_size: u64,
    cache_memory_size: u64,
    cache_max_object_size: u64,
    max_body_size: u64,
    origin_ca: Vec<PathBuf>,
    header_read_timeout: Duration,
    drain_timeout: Duration,
    edge_threads: usize,
    functions: FunctionArgs,
}

/// Where the edge's config snapshots come from.
#[derive(Debug)]
enum Source {
    /// A snapshot file, followed for changes.
    File(PathBuf),
    /// The control plane's feed: URL and edge token.
    Feed(String, String),
}

impl EdgeConfig {
    fn from_args(a: EdgeArgs) -> anyhow::Result<Self> {
        let f = FileValues::load(a.config.as_deref())?;
        let or_list = |v: Vec<PathBuf>, key: &str| if v.is_empty() { f.list(key) } else { v };
        let tls_cert = or_list(a.tls_cert, "tls_cert");
        let tls_key = or_list(a.tls_key, "tls_key");
        if tls_cert.len() != tls_key.len() {
            anyhow::bail!("--tls-cert and --tls-key must be given the same number of times");
        }
        let control_url = a.control_url.or(f.string("control_url"));
        let source = match (a.config_file.or(f.parse("config_file")?), control_url) {
            (Some(p), None) => Source::File(p),
            (None, Some(url)) => match a.edge_token.or(f.string("edge_token")) {
                Some(token) => Source::Feed(url, token),
                None => anyhow::bail!("--control-url needs --edge-token (ledge edge-token create)"),
            },
            (Some(_), Some(_)) => anyhow::bail!("give --config-file or --control-url, not both"),
            (None, None) => anyhow::bail!(
                "ledge edge needs --control-url URL --edge-token TOKEN, or --config-file FILE (a config snapshot; see docs/config-snapshot.md)"
            ),
        };
        let edge_tls_listen = a.edge_tls_listen.or(f.parse("edge_tls_listen")?);
        if edge_tls_listen.is_some() && tls_cert.is_empty() {
            anyhow::bail!("--edge-tls-listen needs --tls-cert and --tls-key");
        }
        let data_dir = a
            .data_dir
            .or(f.parse("data_dir")?)
            .unwrap_or_else(|| PathBuf::from("./ledge-data"));
        Ok(Self {
            source,
            data_dir,
            edge_listen: match a.edge_listen.or(f.parse("edge_listen")?) {
                Some(s) => s,
                None => SocketAddr::from(([127, 0, 0, 1], 8080)),
            },
            edge_tls_listen,
            tls_pairs: tls_cert.into_iter().zip(tls_key).collect(),
            edge_domain: a
                .edge_domain
                .or(f.string("edge_domain"))
                .unwrap_or_else(|| "ledge.localhost".into()),
            pop: a.pop.or(f.string("pop")).unwrap_or_else(|| "LOCAL1".into()),
            cache_dir: a.cache_dir.or(f.parse("cache_dir")?),
            cache_size: a.cache_size.or(f.parse("cache_size")?).unwrap_or(1 << 30),
            cache_memory_size: a
                .cache_memory_size
                .or(f.parse("cache_memory_size")?)
                .unwrap_or(256 << 20),
            cache_max_object_size: a
                .cache_max_object_size
                .or(f.parse("cache_max_object_size")?)
                .unwrap_or(ledge_edge::cache::DEFAULT_MAX_OBJECT_SIZE),
            max_body_size: a
                .max_body_size
                .or(f.parse("max_body_size")?)
                .unwrap_or(1 << 30),
            origin_ca: or_list(a.origin_ca, "origin_ca"),
            edge_threads: a
                .edge_threads
                .or(f.parse("edge_threads")?)
                .filter(|n| *n > 0)
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
            drain_timeout: Duration::from_secs(
                a.drain_timeout.or(f.parse("drain_timeout")?).unwrap_or(30),
            ),
            functions: a.functions.merged(&f)?,
            header_read_timeout: Duration::from_secs(
                a.header_read_timeout
                    .or(f.parse("header_read_timeout")?)
                    .unwrap_or(10)
                    .max(1),
            ),
        })
    }
}

/// Runs `ledge edge`.
pub(crate) async fn run(args: EdgeArgs) -> anyhow::Result<ExitCode> {
    let cfg = EdgeConfig::from_args(args)?;
    // Before anything is announced: a signal arriving once we listen must drain, not kill.
    let shutdown = Shutdown::register()?;
    let snapshot = match &cfg.source {
        Source::File(path) => reload::read_snapshot(path)
            .with_context(|| format!("cannot serve {}", path.display()))?,
        // Last known good first: the control plane may be down.
        Source::Feed(..) => ledge_edge::feed::last_known_good(&cfg.data_dir).unwrap_or_default(),
    };
    let clients = OriginClients::new(&cfg.origin_ca)?;
    let identity = EdgeIdentity::new(&cfg.pop, &cfg.edge_domain)?;
    // Lambda@Edge: packages in <data-dir>/packages/<sha256>.zip, logs in <data-dir>/logs.
    let triggers = LambdaTriggers::new(
        &cfg.data_dir,
        identity.clone(),
        clients.clone(),
        LambdaSettings {
            tmp_size_bytes: cfg.functions.function_tmp_size,
            pid_namespaces: cfg.functions.function_pid_namespaces,
            ..LambdaSettings::default()
        },
    )
    .context("starting the function runtime")?;
    triggers.before_install(&snapshot).await;
    let store = Arc::new(SnapshotStore::new(snapshot, clients)?);
    triggers.after_install(&store.load().source);
    let limits = Limits {
        max_body_bytes: cfg.max_body_size,
        ..Limits::default()
    };
    let cache = EdgeCache::new(ledge_cache_config(&cfg))?;
    let edge = Arc::new(Edge::new(store, identity, limits, triggers.clone(), cache));
    let settings = ServerSettings {
        header_read_timeout: cfg.header_read_timeout,
        ..ServerSettings::default()
    };

    let threads = cfg.edge_threads;
    let http = server::bind_reuseport(cfg.edge_listen, threads)
        .with_context(|| format!("cannot listen on {}", cfg.edge_listen))?;
    let http_addr = local_addr(&http)?;
    let https = match cfg.edge_tls_listen {
        Some(addr) => {
            let tls = tls::server_config(&cfg.tls_pairs)?;
            let l = server::bind_reuseport(addr, threads)
                .with_context(|| format!("cannot listen on {addr}"))?;
            Some((l, tls))
        }
        None => None,
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "ledge: edge listening on http://{}",
        local_addr(&http)?
    )?;
    if let Some((l, _)) = &https {
        writeln!(
            out,
            "ledge: edge-tls listening on https://{}",
            local_addr(l)?
        )?;
    }
    out.flush()?;
    drop(out);

    let drain = Drain::new();
    {
        let (edge, settings, drain) = (edge.clone(), settings.clone(), drain.clone());
        server::spawn_workers("edge", http, move |l| {
            server::serve_http(l, edge.clone(), settings.clone(), drain.clone())
        })?;
    }
    if let Some((l, tls)) = https {
        let (edge, settings, drain) = (edge.clone(), settings.clone(), drain.clone());
        server::spawn_workers("edge-tls", l, move |l| {
            server::serve_https(
                l,
                edge.clone(),
                tls.clone(),
                settings.clone(),
                drain.clone(),
            )
        })?;
    }
    let mut tasks = tokio::task::JoinSet::new();
    let functions = triggers.functions().clone();
    match &cfg.source {
        Source::File(path) => {
            tasks.spawn(reload::follow_file_with(
                path.clone(),
                edge,
                Duration::from_secs(1),
                triggers,
            ));
            tracing::info!(version = "ready", "edge serving {}", path.display());
        }
        Source::Feed(url, token) => {
            let settings = ledge_edge::feed::FeedSettings::new(
                url,
                token,
                &cfg.pop,
                &http_addr.to_string(),
                &cfg.data_dir,
            );
            tasks.spawn(ledge_edge::feed::follow(settings, edge, triggers));
            tracing::info!("edge following {url}");
        }
    }
    shutdown.recv().await;
    drain_listeners(&drain, cfg.drain_timeout).await;
    tasks.abort_all();
    // The viewer threads keep the edge (and its runtime) alive to the end of the process:
    // stop the function workers and unmount their /tmp explicitly.
    functions.runtime().shutdown();
    Ok(ExitCode::SUCCESS)
}

/// Stops accepting viewers and gives the open connections up to `timeout` to finish.
async fn drain_listeners(drain: &Drain, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    drain.start();
    if tokio::time::timeout_at(deadline, drain.closed())
        .await
        .is_ok()
    {
        tracing::info!(
            connections = drain.open_connections(),
            "edge draining: listeners closed"
        );
    }
    match tokio::time::timeout_at(deadline, drain.idle()).await {
        Ok(()) => tracing::info!("edge drained"),
        Err(_) => tracing::warn!(
            connections = drain.open_connections(),
            "drain timeout: exiting with connections open"
        ),
    }
}

fn ledge_cache_config(cfg: &EdgeConfig) -> ledge_edge::cache::CacheConfig {
    ledge_edge::cache::CacheConfig {
        memory_bytes: cfg.cache_memory_size.max(1),
        disk: cfg
            .cache_dir
            .as_ref()
            .map(|dir| ledge_edge::cache::DiskConfig {
                dir: dir.clone(),
                max_bytes: cfg.cache_size.max(1),
            }),
        max_object_size: cfg.cache_max_object_size,
    }
}

fn local_addr(listeners: &[std::net::TcpListener]) -> anyhow::Result<SocketAddr> {
    match listeners.first() {
        Some(l) => Ok(l.local_addr()?),
        None => anyhow::bail!("no listener"),
    }
}

/// SIGTERM and SIGINT, listened for from the start.
struct Shutdown {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Shutdown {
    fn register() -> anyhow::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("listening for SIGINT")?,
        })
    }

    async fn recv(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
