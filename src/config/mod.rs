//! Configuration: TOML file, environment and CLI flags → one checked [`Config`].
//!
//! Two stages, so that the file format and the runtime types can each be
//! simple: `raw.rs` deserializes the file strictly (unknown keys are errors,
//! type errors name their key path), `env.rs` lays environment overrides on
//! top, the CLI flags go on last, and `validate.rs`/`endpoint.rs` turn the
//! result into the runtime types of `runtime.rs`, resolving `env:`/`file:` key
//! references on the way. Precedence: CLI flag > environment > file > default.
//!
//! Layout:
//! - `raw.rs`: the file format and its defaults.
//! - `env.rs`, `env_table.rs`: environment overrides and [`ENV_VARS`].
//! - `validate.rs`, `endpoint.rs`: raw → runtime, errors with key paths.
//! - `runtime.rs`: the types the rest of the gateway uses.
//! - `secret.rs`: [`Secret`], which never prints its value.
//! - `summary.rs`: [`Config::summary`] for `aigate check-config`.

mod endpoint;
mod env;
mod env_table;
mod pricing;
mod raw;
mod runtime;
mod secret;
mod storage;
mod summary;
mod users;
mod validate;

#[cfg(test)]
mod env_tests;
#[cfg(test)]
mod error_tests;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use env_table::ENV_VARS;
pub use runtime::{
    AuthConfig, Config, EndpointConfig, Limit, LimitsConfig, LogConfig, ProviderKind,
    RealtimeConfig, RoutingConfig, ServerConfig, Strategy,
};
pub use secret::{constant_time_eq, Secret};
pub use storage::{DownPolicy, StorageBackend, StorageConfig};
pub use users::UsersConfig;

/// The file read when no `--config` is given, if it exists.
pub const DEFAULT_CONFIG_PATH: &str = "config/aigate.toml";

/// Values given on the command line; they beat the environment and the file.
#[derive(Debug, Clone, Default)]
pub struct CliOverrides {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
}

/// Why the configuration could not be loaded. Each message names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not TOML, or a key of the wrong type or unknown (text has the key path).
    #[error("{0}")]
    Parse(String),
    /// A value out of range or inconsistent; `path` is the TOML key.
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    /// An environment variable whose value cannot be used.
    #[error("{var}: {message}")]
    Env { var: String, message: String },
}

/// Loads the config: `path` is an explicit `--config` (it must exist); with
/// `None`, [`DEFAULT_CONFIG_PATH`] is read if it exists, else defaults apply.
pub fn load(
    path: Option<&Path>,
    env: &BTreeMap<String, String>,
    cli: &CliOverrides,
) -> Result<Config, ConfigError> {
    let path = match path {
        Some(path) => Some(path.to_path_buf()),
        None => Some(PathBuf::from(DEFAULT_CONFIG_PATH)).filter(|p| p.is_file()),
    };
    let text = match &path {
        Some(path) => std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?,
        None => String::new(),
    };
    build(&text, env, cli, path)
}

/// Like [`load`] with the file's text given directly (`source` stays `None`).
pub fn from_toml_str(
    text: &str,
    env: &BTreeMap<String, String>,
    cli: &CliOverrides,
) -> Result<Config, ConfigError> {
    build(text, env, cli, None)
}

/// The process environment, with `./.env` (if any) filling in variables the
/// process does not set. Nothing is written to the process environment.
pub fn process_env() -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = dotenvy::from_path_iter(".env")
        .map(|items| items.filter_map(Result::ok).collect())
        .unwrap_or_default();
    env.extend(
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
    );
    env
}

fn build(
    text: &str,
    env: &BTreeMap<String, String>,
    cli: &CliOverrides,
    source: Option<PathBuf>,
) -> Result<Config, ConfigError> {
    let mut raw = parse_raw(text)?;
    env::apply(&mut raw, env)?;
    if let Some(listen) = cli.listen {
        raw.server.listen = listen.to_string();
    }
    if let Some(dir) = &cli.data_dir {
        raw.server.data_dir = dir.clone();
    }
    let mut config = validate::validate(raw, env, source)?;
    config.overrides = cli.clone();
    Ok(config)
}

/// Strict deserialization; errors read `key.path: what serde expected`.
fn parse_raw(text: &str) -> Result<raw::RawConfig, ConfigError> {
    let deserializer = toml::Deserializer::parse(text)
        .map_err(|err| ConfigError::Parse(syntax_error(text, &err)))?;
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        let message = without_values(err.inner().message());
        ConfigError::Parse(if path == "." {
            message
        } else {
            format!("{path}: {message}")
        })
    })
}

/// Where the TOML breaks and why, without the parser's quote of the line:
/// config errors reach logs and the admin API (a reload), and the line may
/// hold a key.
fn syntax_error(text: &str, err: &toml::de::Error) -> String {
    let message = without_values(err.message().trim_end());
    match err.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("invalid TOML: TOML parse error at line {line}, column {column}: {message}")
        }
        None => format!("invalid TOML: {message}"),
    }
}

/// serde quotes the offending value (`invalid type: string "sk-…",
/// expected i64`); it is left out, as it may be a key put in the wrong place.
fn without_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut parts = message.split('"');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    let mut quoted = true;
    for part in parts {
        match quoted {
            true => out.push_str("\"…\""),
            false => out.push_str(part),
        }
        quoted = !quoted;
    }
    out
}
