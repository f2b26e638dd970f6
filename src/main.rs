//! The `vk-parser` binary: parse the command line, load settings, start telemetry, run.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use vk_parser::app::{self, App};
use vk_parser::settings::Settings;
use vk_parser::telemetry;

/// Collects VK social graphs for reports (Redis Streams in, parquet out).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// A TOML settings file layered over the defaults (also VKP_CONFIG).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the service: consume report events until SIGINT/SIGTERM (the default).
    Run,
    /// Run one report end to end on the simulator and a local folder.
    Demo,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // vars_os: std::env::vars() panics on a variable that is not UTF-8; such variables are
    // none of ours, so they are skipped.
    let env: HashMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let settings = Settings::load(cli.config.as_deref(), &env).context("invalid settings")?;
    telemetry::init(telemetry::subscriber(
        settings.service.environment,
        &settings.telemetry.log_level,
        std::io::stdout,
    ))?;
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => {
            let app = App::build(settings).await?;
            app.run_until_stopped(app::shutdown_on_signal()).await?;
        }
        Command::Demo => anyhow::bail!(
            "the demo is not built yet: it arrives with the issue \"The main job in one command\""
        ),
    }
    Ok(())
}
