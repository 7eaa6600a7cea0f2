//! `ledge edge-token create|list|revoke` and `ledge edges`: operator tools run beside the
//! control plane, on its database (`--data-dir` or `--database-url`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use ledge_control::feed::edges;
use ledge_control::store::Store;
use ledge_control::ControlConfig;

/// Where the control plane's database is.
#[derive(Debug, clap::Args)]
pub(crate) struct DbArgs {
    /// The control plane's data directory [default: ./ledge-data].
    #[arg(long, env = "LEDGE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// sqlite://FILE or postgres://… [default: sqlite://<data-dir>/ledge.db].
    #[arg(long, env = "LEDGE_DATABASE_URL")]
    database_url: Option<String>,
}

impl DbArgs {
    async fn open(&self, heartbeat: Option<u64>) -> anyhow::Result<Store> {
        let defaults = ControlConfig::default();
        let config = ControlConfig {
            data_dir: self.data_dir.clone().unwrap_or(defaults.data_dir.clone()),
            database_url: self.database_url.clone(),
            ..defaults
        };
        if config.database_url.is_none() {
            std::fs::create_dir_all(&config.data_dir)
                .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
        }
        let store = Store::open(&config.database_url()).await?;
        Ok(match heartbeat {
            Some(s) => store.with_edge_liveness(Duration::from_secs(s)),
            None => store.with_edge_liveness(config.edge_heartbeat_timeout),
        })
    }
}

/// Flags of `ledge edge-token`.
#[derive(Debug, clap::Args)]
pub(crate) struct EdgeTokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TokenCommand {
    /// Create a token; prints the token alone on stdout (it is not stored and cannot be shown
    /// again).
    Create {
        /// A name for the token [default: generated].
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List the tokens (names and creation times; never the tokens).
    List {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Revoke a token, by name or by value; edges using it are refused at once.
    Revoke {
        /// The token's name, or the token itself.
        name_or_token: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

/// Runs `ledge edge-token …`.
pub(crate) async fn run(args: EdgeTokenArgs) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match args.command {
        TokenCommand::Create { name, db } => {
            let store = db.open(None).await?;
            let (name, token) = edges::create_token(&store, name.as_deref()).await?;
            writeln!(out, "{token}")?;
            eprintln!("ledge: created edge token {name}");
        }
        TokenCommand::List { db } => {
            let store = db.open(None).await?;
            for t in edges::list_tokens(&store).await? {
                let created = chrono_like(t.created_at);
                writeln!(out, "{}\t{created}", t.name)?;
            }
        }
        TokenCommand::Revoke { name_or_token, db } => {
            let store = db.open(None).await?;
            let name = edges::revoke_token(&store, &name_or_token).await?;
            eprintln!("ledge: revoked edge token {name}");
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Flags of `ledge edges`.
#[derive(Debug, clap::Args)]
pub(crate) struct EdgesArgs {
    /// Print JSON (an array of edges) instead of a table.
    #[arg(long)]
    json: bool,
    /// Seconds without a heartbeat after which an edge is offline [default: 60].
    #[arg(long, env = "LEDGE_EDGE_HEARTBEAT_TIMEOUT")]
    edge_heartbeat_timeout: Option<u64>,
    #[command(flatten)]
    db: DbArgs,
}

/// Runs `ledge edges`.
pub(crate) async fn run_edges(args: EdgesArgs) -> anyhow::Result<ExitCode> {
    let store = args.db.open(args.edge_heartbeat_timeout).await?;
    let list = edges::list_edges(&store).await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &list)?;
        writeln!(out)?;
    } else {
        writeln!(out, "POP\tADDRESS\tVERSION\tLAG\tSTATE\tLAST SEEN\tERROR")?;
        for e in &list {
            writeln!(
                out,
                "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                e.pop,
                e.address.as_deref().unwrap_or("-"),
                e.applied_version,
                e.lag,
                if e.live { "live" } else { "offline" },
                chrono_like(e.last_seen),
                e.last_error.as_deref().unwrap_or("-"),
            )?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Seconds ago, for humans.
fn chrono_like(unix: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    format!("{}s ago", (now - unix).max(0))
}
