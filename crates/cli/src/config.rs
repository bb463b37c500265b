//! Configuration: command-line flags, then `KEFU_*` environment variables, then
//! `kefu.toml`, then defaults.

use crate::{CliError, CliResult};
use kefu_store::StoreOptions;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The settings every command takes.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Settings {
    /// Where kefu keeps its SQLite database and files [default: ./kefu-data].
    #[arg(long, global = true, env = "KEFU_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// sqlite://PATH or postgres://USER:PASSWORD@HOST/DB [default: SQLite in the data dir].
    #[arg(long, global = true, env = "KEFU_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// A TOML file with data_dir, database_url, listen, secure_cookies [default: ./kefu.toml if present].
    #[arg(long, global = true, env = "KEFU_CONFIG")]
    pub config: Option<PathBuf>,
}

/// `kefu.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    listen: Option<String>,
    secure_cookies: Option<bool>,
    max_connections: Option<u32>,
    /// The optional reply-drafting model server: an OpenAI-compatible base URL
    /// (`http://127.0.0.1:8080/v1`) and the model to ask for. The API key, if the server
    /// wants one, comes from KEFU_DRAFT_API_KEY only (never from this file).
    draft_endpoint: Option<String>,
    draft_model: Option<String>,
    draft_timeout_seconds: Option<u64>,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub listen: Option<String>,
    pub secure_cookies: bool,
    pub max_connections: u32,
    /// Reply drafting (off when `None`).
    pub draft: Option<kefu_server::draft::DraftConfig>,
}

impl Config {
    pub fn load(settings: &Settings) -> CliResult<Config> {
        let file = match &settings.config {
            Some(path) => Some(read_file(path)?),
            None if Path::new("kefu.toml").exists() => Some(read_file(Path::new("kefu.toml"))?),
            None => None,
        }
        .unwrap_or_default();
        Ok(Config {
            data_dir: settings
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("kefu-data")),
            database_url: settings
                .database_url
                .clone()
                .or(file.database_url)
                .filter(|u| !u.trim().is_empty()),
            listen: file.listen,
            secure_cookies: file.secure_cookies.unwrap_or(false),
            max_connections: file.max_connections.unwrap_or(8),
            draft: draft_config(
                env("KEFU_DRAFT_ENDPOINT").or(file.draft_endpoint),
                env("KEFU_DRAFT_MODEL").or(file.draft_model),
                env("KEFU_DRAFT_API_KEY"),
                file.draft_timeout_seconds,
            )?,
        })
    }

    pub fn store_options(&self) -> StoreOptions {
        let mut options = match &self.database_url {
            Some(url) => StoreOptions::new(url.clone()),
            None => StoreOptions::sqlite_in(&self.data_dir),
        };
        options.max_connections = self.max_connections;
        options
    }

    /// The database, with any password hidden.
    pub fn describe_database(&self) -> String {
        match &self.database_url {
            Some(url) => kefu_store::redact_url(url),
            None => format!("SQLite at {}", self.data_dir.join("kefu.sqlite").display()),
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Drafting is on when an endpoint is given; a model name must come with it.
fn draft_config(
    endpoint: Option<String>,
    model: Option<String>,
    api_key: Option<String>,
    timeout_seconds: Option<u64>,
) -> CliResult<Option<kefu_server::draft::DraftConfig>> {
    let Some(endpoint) = endpoint else {
        return Ok(None);
    };
    let model = model.ok_or_else(|| {
        CliError("draft_endpoint is set but draft_model is not: name the model to ask for".into())
    })?;
    let timeout = std::time::Duration::from_secs(timeout_seconds.unwrap_or(30).clamp(1, 600));
    kefu_server::draft::DraftConfig::new(&endpoint, &model, api_key, timeout)
        .map(Some)
        .map_err(CliError)
}

fn read_file(path: &Path) -> CliResult<FileConfig> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError(format!("cannot read {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| CliError(format!("{}: {e}", path.display())))
}
