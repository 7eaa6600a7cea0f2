//! `ledge control`: the control plane alone (the AWS-compatible API).
//!
//! Every flag is also an environment variable `LEDGE_<FLAG>`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use ledge_control::credentials::{self, Source};
use ledge_control::{ControlConfig, ControlPlane, Credentials};

/// Flags of `ledge control`.
#[derive(Debug, clap::Args)]
pub(crate) struct ControlArgs {
    /// Directory for the SQLite database, packages and generated credentials.
    #[arg(long, env = "LEDGE_DATA_DIR", default_value = "./ledge-data")]
    data_dir: PathBuf,
    /// Address of the API (port 0: ephemeral, printed on stdout).
    #[arg(long, env = "LEDGE_API_LISTEN", default_value = "127.0.0.1:4000")]
    api_listen: SocketAddr,
    /// sqlite://FILE or postgres://… [default: sqlite://<data-dir>/ledge.db].
    #[arg(long, env = "LEDGE_DATABASE_URL")]
    database_url: Option<String>,
    /// file://DIR or s3://BUCKET/PREFIX [default: file://<data-dir>/blobs].
    #[arg(long, env = "LEDGE_BLOB_URL")]
    blob_url: Option<String>,
    /// Region reported in ARNs.
    #[arg(long, env = "LEDGE_REGION", default_value = "us-east-1")]
    region: String,
    /// 12-digit account id reported in ARNs.
    #[arg(long, env = "LEDGE_ACCOUNT_ID", default_value = "000000000000")]
    account_id: String,
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
    let from_env = match (args.access_key_id, args.secret_access_key) {
        (Some(access_key_id), Some(secret_access_key)) => Some(Credentials {
            access_key_id,
            secret_access_key,
        }),
        (None, None) => None,
        _ => anyhow::bail!("set both LEDGE_ACCESS_KEY_ID and LEDGE_SECRET_ACCESS_KEY, or neither"),
    };
    let config = ControlConfig {
        data_dir: args.data_dir,
        database_url: args.database_url,
        blob_url: args.blob_url,
        region: args.region,
        account_id: args.account_id,
        ..ControlConfig::default()
    };
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    let loaded = credentials::load_or_create(&config.data_dir, from_env)?;
    let control = ControlPlane::open(config, loaded.credentials).await?;
    tokio::spawn(control.clone().run_sweeper());

    let listener = tokio::net::TcpListener::bind(args.api_listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.api_listen))?;
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
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("API server failed")?;
    Ok(ExitCode::SUCCESS)
}
