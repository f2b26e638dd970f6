//! The `vk-parser` binary: parse the command line, load settings, start telemetry, run.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use vk_parser::app::{self, App};
use vk_parser::demo;
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
    Demo {
        /// Users in the simulated VK graph.
        #[arg(long, default_value_t = 20_000)]
        users: u32,
        /// Where the parquet goes.
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
        /// The vk-sim binary (default: beside this binary).
        #[arg(long)]
        sim_binary: Option<PathBuf>,
    },
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
    let command = cli.command.unwrap_or(Command::Run);
    // The demo draws a progress bar: only warnings may interrupt it.
    let level = match command {
        Command::Demo { .. } => "warn",
        Command::Run => settings.telemetry.log_level.as_str(),
    };
    telemetry::init(telemetry::subscriber(
        settings.service.environment,
        level,
        std::io::stdout,
    ))?;
    match command {
        Command::Run => {
            let app = App::build(settings).await?;
            app.run_until_stopped(app::shutdown_on_signal()).await?;
        }
        Command::Demo {
            users,
            data_dir,
            sim_binary,
        } => {
            let options = demo::DemoOptions {
                users,
                data_dir,
                sim_binary,
            };
            demo::run(options, app::shutdown_on_signal()).await?;
        }
    }
    Ok(())
}
