//! Settings: flags > `COHORT_*` environment variables > TOML file > defaults.
//! (clap resolves flags and environment; the file fills what both leave open.)

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use crate::cli::{Cli, Command};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// The TOML file's keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    database_url: Option<String>,
    log: Option<String>,
    geoip: Option<PathBuf>,
    session_minutes: Option<u32>,
    token_secret: Option<String>,
    visitor_retention_days: Option<u32>,
    webhook_secret: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: String,
    pub database_url: String,
    pub log: String,
    /// A MaxMind database for GeoIP targeting conditions.
    pub geoip: Option<PathBuf>,
    /// Idle minutes that end a visitor's session.
    pub session_minutes: u32,
    /// Signs customer tokens (`COHORT_TOKEN_SECRET`).
    pub token_secret: Option<Secret>,
    /// Days after which an unseen visitor is deleted.
    pub visitor_retention_days: u32,
    /// Signs automation webhooks (`COHORT_WEBHOOK_SECRET`).
    pub webhook_secret: Option<Secret>,
}

/// A secret setting: its `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Config {
    pub fn resolve(cli: &Cli) -> anyhow::Result<Self> {
        let file = match &cli.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let (listen_flag, geoip_flag, session_flag) = match &cli.command {
            Command::Serve(args) => (args.listen.clone(), args.geoip.clone(), args.session_minutes),
            _ => (None, None, None),
        };
        let session_minutes = session_flag.or(file.session_minutes).unwrap_or(30);
        if session_minutes == 0 {
            anyhow::bail!("session_minutes must be at least 1");
        }
        Ok(Self {
            listen: listen_flag.or(file.listen).unwrap_or_else(|| DEFAULT_LISTEN.to_owned()),
            database_url: cli
                .database_url
                .clone()
                .or(file.database_url)
                .unwrap_or_else(cohort_app::default_database_url),
            log: file.log.unwrap_or_else(|| "info".to_owned()),
            geoip: geoip_flag.or(file.geoip),
            session_minutes,
            token_secret: std::env::var("COHORT_TOKEN_SECRET")
                .ok()
                .filter(|s| !s.is_empty())
                .or(file.token_secret)
                .map(Secret),
            visitor_retention_days: file.visitor_retention_days.unwrap_or(395).max(1),
            webhook_secret: std::env::var("COHORT_WEBHOOK_SECRET")
                .ok()
                .filter(|s| !s.is_empty())
                .or(file.webhook_secret)
                .map(Secret),
        })
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}
