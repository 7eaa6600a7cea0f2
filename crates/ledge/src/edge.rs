//! `ledge edge` (being built).

use std::process::ExitCode;

/// Flags of `ledge edge`.
#[derive(Debug, clap::Args)]
pub(crate) struct EdgeArgs {}

/// Runs `ledge edge`.
pub(crate) async fn run(_args: EdgeArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("ledge edge is not built yet")
}
