//! The `ledge` command: one binary for every role (control plane, edge node, local tools).
//!
//! `main` only parses the command line, sets up logging and hands over to the role's module;
//! each role's flags live beside it as a `clap::Args` struct.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

// mimalloc rather than glibc's malloc: with a function, glibc's malloc, free and chunk
// consolidation were about a tenth of the edge's CPU (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod config_file;
mod control;
mod edge;
mod edge_token;
mod event;
mod invoke;
mod serve;

/// A self-hosted edge platform: CloudFront and Lambda@Edge on your own machines.
#[derive(Debug, Parser)]
#[command(name = "ledge", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the control plane and one edge in one process (no flags needed).
    Serve(serve::ServeArgs),
    /// Run the control plane alone: the AWS-compatible Lambda API.
    Control(control::ControlArgs),
    /// Run an edge node: a caching reverse proxy serving a config snapshot.
    Edge(edge::EdgeArgs),
    /// Manage the tokens edges authenticate with.
    EdgeToken(edge_token::EdgeTokenArgs),
    /// List the edges the control plane knows.
    Edges(edge_token::EdgesArgs),
    /// Run a function locally, as Lambda would, and print its result and logs.
    Invoke(invoke::InvokeArgs),
    /// Print a sample CloudFront event of one type, to feed `ledge invoke`.
    Event(event::EventArgs),
}

/// Exit status for command-line mistakes (sysexits' EX_USAGE).
const EX_USAGE: u8 = 64;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let usage = e.use_stderr();
            let _ = e.print();
            return if usage {
                ExitCode::from(EX_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ledge: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Control(args) => control::run(args).await,
            Command::EdgeToken(args) => edge_token::run(args).await,
            Command::Edges(args) => edge_token::run_edges(args).await,
            Command::Edge(args) => edge::run(args).await,
            Command::Invoke(args) => invoke::run(args).await,
            Command::Event(args) => event::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ledge: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr, filtered by `LEDGE_LOG` (default `info`), so stdout stays for results.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LEDGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
