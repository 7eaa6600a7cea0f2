//! `ledge serve`: the control plane and one edge in one process, with no flags needed.
//!
//! The edge follows the control plane over the same feed protocol as a separate `ledge edge`
//! (loopback HTTP, with an edge token created at start), so the embedded default and a fleet
//! take one code path. Layout of the data directory (default `./ledge-data`): the control
//! plane's database, blobs and credentials at the top, the edge's state (last known good
//! snapshot, packages, function logs) under `edge/`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use ledge_control::feed::edges;

use crate::{control, edge};

/// The name of the edge token `ledge serve` makes for its own edge (replaced at every start).
const SERVE_TOKEN: &str = "ledge-serve";

/// Flags of `ledge serve`: the control plane's, plus the edge's listener and location.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    control: control::ControlArgs,
    /// The edge's plain HTTP listener (port 0: ephemeral) [default: 127.0.0.1:8080].
    #[arg(long, env = "LEDGE_EDGE_LISTEN")]
    edge_listen: Option<SocketAddr>,
    /// The edge's location name, sent as X-Amz-Cf-Pop [default: LOCAL1].
    #[arg(long, env = "LEDGE_POP")]
    pop: Option<String>,
    /// Worker threads serving viewers [default: CPU count].
    #[arg(long, env = "LEDGE_EDGE_THREADS")]
    edge_threads: Option<usize>,
    /// Seconds the edge's open connections get to finish after SIGTERM/SIGINT [default: 30].
    #[arg(long, env = "LEDGE_DRAIN_TIMEOUT")]
    drain_timeout: Option<u64>,
}

/// `ledge edge`'s flags, parsed from the arguments `ledge serve` builds.
#[derive(Debug, Parser)]
struct EdgeCli {
    #[command(flatten)]
    edge: edge::EdgeArgs,
}

/// Runs the control plane and its edge until interrupted.
pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let functions =
        args.control
            .functions
            .clone()
            .merged(&crate::config_file::FileValues::load(
                args.control.config_file(),
            )?)?;
    let started = control::start(args.control).await?;
    let store = started.control.state().store().clone();
    match edges::revoke_token(&store, SERVE_TOKEN).await {
        Ok(_) | Err(edges::TokenError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let (_, token) = edges::create_token(&store, Some(SERVE_TOKEN)).await?;
    // The feed reloads tokens every second; make this one valid before the edge asks.
    started.feed.refresh().await?;
    let mut control_addr = started.addr;
    if control_addr.ip().is_unspecified() {
        control_addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    // Absolute, because function workers run in directories of their own.
    let edge_dir: PathBuf = std::fs::canonicalize(&started.data_dir)
        .with_context(|| format!("cannot resolve {}", started.data_dir.display()))?
        .join("edge");
    let mut argv: Vec<String> = vec![
        "edge".into(),
        "--control-url".into(),
        format!("http://{control_addr}"),
        "--edge-token".into(),
        token,
        "--data-dir".into(),
        edge_dir.display().to_string(),
        "--edge-domain".into(),
        started.edge_domain.clone(),
        "--edge-listen".into(),
        args.edge_listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)))
            .to_string(),
    ];
    if let Some(pop) = args.pop {
        argv.extend(["--pop".into(), pop]);
    }
    if let Some(n) = args.edge_threads {
        argv.extend(["--edge-threads".into(), n.to_string()]);
    }
    if let Some(n) = args.drain_timeout {
        argv.extend(["--drain-timeout".into(), n.to_string()]);
    }
    argv.extend(functions.to_args());
    let edge_args = EdgeCli::try_parse_from(argv)
        .context("building the edge's settings")?
        .edge;
    let api = tokio::spawn(started.serve(control::shutdown_signal()));
    eprintln!(
        "ledge: serving the API (Lambda, CloudFront) on http://{control_addr} and one edge \
         following it; distributions are reached with Host: <their DomainName>"
    );
    let code = edge::run(edge_args).await?;
    api.abort();
    Ok(code)
}
