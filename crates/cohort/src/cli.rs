//! The command line, as clap types.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// cohort — customer segmentation, targeting and segment-based promotions.
#[derive(Debug, Parser)]
#[command(name = "cohort", version, about)]
pub struct Cli {
    /// TOML configuration file (keys: listen, database_url, log).
    #[arg(long, global = true, env = "COHORT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Database URL: sqlite://PATH (default sqlite://cohort-data/cohort.db) or postgres://…
    #[arg(long, global = true, env = "COHORT_DATABASE_URL")]
    pub database_url: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server.
    Serve(ServeArgs),
    /// Apply pending database migrations.
    Migrate,
    /// Load the demo data set into an empty database.
    Demo,
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Work with segments.
    Segments {
        #[command(subcommand)]
        command: SegmentsCommand,
    },
    /// Import data from a file.
    Import {
        #[command(subcommand)]
        what: ImportWhat,
    },
    /// Export data as NDJSON to standard output.
    Export {
        #[command(subcommand)]
        what: ExportWhat,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, env = "COHORT_LISTEN")]
    pub listen: Option<String>,
    /// Load the demo data set first if the database is empty.
    #[arg(long)]
    pub demo: bool,
    /// A MaxMind database (GeoIP2 or GeoLite2, City or Country) for the country and
    /// geopoint targeting conditions; without one they match no one.
    #[arg(long, env = "COHORT_GEOIP")]
    pub geoip: Option<std::path::PathBuf>,
    /// Idle minutes after which a visitor's session ends (default 30).
    #[arg(long, env = "COHORT_SESSION_MINUTES")]
    pub session_minutes: Option<u32>,
    /// For tests of the whole process only: read the time from this file
    /// (microseconds since the Unix epoch) instead of the system clock.
    #[arg(long, hide = true)]
    pub clock_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; the key is printed once, alone on the last line.
    Create {
        #[arg(long)]
        name: String,
        /// admin, read, ingest or public:<application>; repeat for several.
        #[arg(long, required = true)]
        scope: Vec<String>,
    },
    /// List keys (never their secrets).
    List,
    /// Revoke a key by its id.
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
pub enum SegmentsCommand {
    /// Run a full build of every enabled segment builder (or one), writing only changes.
    Build {
        /// The id of the one builder to build.
        #[arg(long)]
        builder: Option<i64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ImportWhat {
    /// Upsert customers from a CSV or NDJSON file (`-` for standard input).
    Customers {
        file: PathBuf,
        /// File format; by default taken from the extension (.csv, else NDJSON).
        #[arg(long, value_enum)]
        format: Option<Format>,
    },
    /// Push memberships into an import service from NDJSON lines
    /// `{"customer": "c1", "segment": "group/segment", "remove": false}`.
    Segments {
        file: PathBuf,
        /// The import service receiving them.
        #[arg(long)]
        service: String,
        /// Apply the lines as additions and removals instead of replacing the service's
        /// memberships with them.
        #[arg(long)]
        delta: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExportWhat {
    /// Every customer as one NDJSON line (the import format).
    Customers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Csv,
    Ndjson,
}
