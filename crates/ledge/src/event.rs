//! `ledge event` (being built).

use std::process::ExitCode;

/// Flags of `ledge event`.
#[derive(Debug, clap::Args)]
pub(crate) struct EventArgs {}

/// Runs `ledge event`.
pub(crate) async fn run(_args: EventArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("ledge event is not built yet")
}
