//! The `vk-parser` binary: parse the command line, load settings, start telemetry, run.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use vk_parser::app::{self, App};
use vk_parser::events::JobKind;
use vk_parser::settings::Settings;
use vk_parser::stream::records::dead_letter;
use vk_parser::telemetry;
use vk_parser::{admin, demo, export};

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
    /// Run the service: consume report and campaign events until SIGINT/SIGTERM (the default).
    Run,
    /// Run one report (or, with --job suggest, one campaign) end to end on the simulator and a
    /// local folder.
    Demo {
        /// The job kind.
        #[arg(long, value_enum, default_value = "report")]
        job: demo::DemoJob,
        /// Users in the simulated VK graph.
        #[arg(long, default_value_t = 20_000)]
        users: u32,
        /// The report type.
        #[arg(long, value_enum, default_value = "default")]
        report_type: demo::DemoReport,
        /// Skip the second run with the seed service's request policy (DEFAULT only).
        #[arg(long)]
        no_compare: bool,
        /// Where the parquet goes.
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
        /// The vk-sim binary (default: beside this binary).
        #[arg(long)]
        sim_binary: Option<PathBuf>,
    },
    /// Publish an event on its job kind's stream (checked first).
    Publish {
        /// `ReportCreated`, `Stage2Created` or `SuggestPostCreated`.
        event_type: String,
        /// The JSON payload (docs/events.md).
        payload: String,
    },
    /// Start a campaign: upload the files into storage, publish a SuggestPostCreated (checked).
    Post {
        /// The sender's VK user id (their token posts).
        #[arg(long)]
        user: i64,
        /// Communities, comma-separated: ids, club1, screen names, vk.com links.
        #[arg(long, value_delimiter = ',', required = true)]
        groups: Vec<String>,
        /// The post's text.
        #[arg(long, default_value = "")]
        message: String,
        /// A local file to attach (pictures as photos, others as a document); repeatable.
        #[arg(long)]
        attach: Vec<PathBuf>,
        /// Sign the post with the sender's name.
        #[arg(long)]
        signed: bool,
        /// Post without checking each community's rights first.
        #[arg(long)]
        no_check_rights: bool,
    },
    /// Start a community task: publish a CommunityTaskCreated (checked).
    Community {
        /// Whose VK token goes first (leased global tokens after).
        #[arg(long)]
        user: i64,
        /// members, posts or interactions.
        #[arg(long)]
        kind: String,
        /// Communities, comma-separated: ids, club1, screen names, vk.com links.
        #[arg(long, value_delimiter = ',', required = true)]
        groups: Vec<String>,
        /// posts, interactions: the latest posts per community (1-100; default 10).
        #[arg(long)]
        posts_per_group: Option<u32>,
        /// posts: without comments.
        #[arg(long)]
        no_comments: bool,
        /// posts: with the replies in comment threads.
        #[arg(long)]
        threads: bool,
        /// members: the snapshot to compare with (`COMMUNITY/MEMBERS/{jobId}_stage1/`);
        /// default: each community's latest good one.
        #[arg(long)]
        since: Option<String>,
    },
    /// Print a stage's manifest and the first rows of its tables.
    Inspect {
        /// The stage prefix, e.g. `DEFAULT/1_2_3/job42_stage2/`.
        prefix: String,
        /// Rows shown per table.
        #[arg(long, default_value_t = 5)]
        rows: usize,
    },
    /// Write a stage 2 graph as GEXF, GraphML or CSV (for Gephi and networkx).
    Export {
        /// The stage 2 prefix, e.g. `DEFAULT/1_2_3/job42_stage2/`.
        prefix: String,
        /// The output format.
        #[arg(long, value_enum, default_value = "gexf")]
        format: export::Format,
        /// The output file (a folder for csv); default `{jobId}_stage2.{format}` here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The dead-letter stream: list entries, or replay them onto the input stream.
    Dlq {
        /// The campaign stream's dead letters instead of the report stream's.
        #[arg(long, global = true, conflicts_with = "community")]
        poster: bool,
        /// The community-task stream's dead letters instead of the report stream's.
        #[arg(long, global = true)]
        community: bool,
        #[command(subcommand)]
        action: DlqAction,
    },
}

#[derive(Subcommand, Debug)]
enum DlqAction {
    /// List dead letters, oldest first.
    List {
        /// How many.
        #[arg(long, default_value_t = 20)]
        count: usize,
    },
    /// Put dead letters back on the input stream (all, or the ids given).
    Replay {
        /// Dead-letter ids; none means all.
        ids: Vec<String>,
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
    // Only the service logs at the configured level: the demo's progress bar and the operator
    // commands' output are for people.
    let level = match command {
        Command::Run => settings.telemetry.log_level.as_str(),
        _ => "warn",
    };
    telemetry::init(telemetry::subscriber(
        settings.service.environment,
        level,
        std::io::stdout,
    ))?;
    run(command, settings).await
}

/// The job kind whose streams a `--poster` or `--community` flag names.
fn kind(poster: bool, community: bool) -> JobKind {
    match (poster, community) {
        (true, _) => JobKind::Poster,
        (_, true) => JobKind::Community,
        _ => JobKind::Report,
    }
}

/// Runs one command with loaded settings and telemetry started.
async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Run => {
            let app = App::build(settings).await?;
            app.run_until_stopped(app::shutdown_on_signal()).await?;
        }
        Command::Demo {
            job,
            users,
            report_type,
            no_compare,
            data_dir,
            sim_binary,
        } => {
            let options = demo::DemoOptions {
                job,
                users,
                report: report_type,
                data_dir,
                sim_binary,
                compare: !no_compare,
            };
            demo::run(options, app::shutdown_on_signal()).await?;
        }
        Command::Publish {
            event_type,
            payload,
        } => println!(
            "{}",
            admin::publish(&settings, &event_type, &payload).await?
        ),
        Command::Post {
            user,
            groups,
            message,
            attach,
            signed,
            no_check_rights,
        } => {
            let request = admin::PostRequest {
                user,
                groups,
                message,
                attach,
                signed,
                no_check_rights,
            };
            let posted = admin::post(&settings, &request).await?;
            println!(
                "campaign {} published as entry {}",
                posted.job, posted.entry
            );
        }
        Command::Community {
            user,
            kind,
            groups,
            posts_per_group,
            no_comments,
            threads,
            since,
        } => {
            let request = admin::CommunityRequest {
                user,
                kind,
                groups,
                posts_per_group,
                no_comments,
                threads,
                since,
            };
            let task = admin::community(&settings, &request).await?;
            println!(
                "community task {} published as entry {}",
                task.job, task.entry
            );
        }
        Command::Inspect { prefix, rows } => {
            print!("{}", admin::inspect(&settings, &prefix, rows).await?)
        }
        Command::Export {
            prefix,
            format,
            out,
        } => {
            let (graph, written) = export::export(&settings, &prefix, format, out).await?;
            for path in written {
                println!(
                    "wrote {} ({} nodes, {} edges)",
                    path.display(),
                    graph.nodes.len(),
                    graph.edges.len()
                );
            }
        }
        Command::Dlq {
            poster,
            community,
            action: DlqAction::List { count },
        } => {
            for (id, fields) in admin::dlq_list(&settings, kind(poster, community), count).await? {
                let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or("-");
                println!(
                    "{id}  {}  entry {}  deliveries {}  {}",
                    field("event_type"),
                    field(dead_letter::ENTRY_ID),
                    field(dead_letter::DELIVERY_COUNT),
                    field(dead_letter::ERROR)
                );
            }
        }
        Command::Dlq {
            poster,
            community,
            action: DlqAction::Replay { ids },
        } => println!(
            "replayed {}",
            admin::dlq_replay(&settings, kind(poster, community), &ids).await?
        ),
    }
    Ok(())
}
