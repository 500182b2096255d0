//! The `cohort` binary: configuration, telemetry, wiring and the command line.

mod cli;
mod config;
mod data;
mod keys;
mod segments;
mod serve;

use std::io::IsTerminal;

use clap::Parser;

/// Request handling allocates many small, short-lived values (wire bodies, decimals
/// rendered as text): mimalloc serves them faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    let config = config::Config::resolve(&cli)?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("COHORT_LOG").unwrap_or_else(|_| config.log.as_str().into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match cli.command {
        cli::Command::Serve(args) => serve::run(&config, args.demo, args.clock_file).await,
        cli::Command::Migrate => data::migrate(&config).await,
        cli::Command::Demo => data::demo(&config).await,
        cli::Command::Keys { command } => keys::run(&config, command).await,
        cli::Command::Segments {
            command: cli::SegmentsCommand::Build { builder },
        } => segments::build(&config, builder).await,
        cli::Command::Import {
            what: cli::ImportWhat::Customers { file, format },
        } => data::import_customers(&config, &file, format).await,
        cli::Command::Import {
            what: cli::ImportWhat::Segments { file, service, delta },
        } => data::import_segments(&config, &file, &service, delta).await,
        cli::Command::Export {
            what: cli::ExportWhat::Customers,
        } => data::export_customers(&config).await,
    }
}
