//! `ledge invoke` (being built).

use std::process::ExitCode;

/// Flags of `ledge invoke`.
#[derive(Debug, clap::Args)]
pub(crate) struct InvokeArgs {}

/// Runs `ledge invoke`.
pub(crate) async fn run(_args: InvokeArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("ledge invoke is not built yet")
}
