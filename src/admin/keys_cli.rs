//! `aigate keys add|list|remove`: upstream key management for operators
//! without the admin UI. With the server stopped it works on the data dir
//! directly (the same KeyPool rules; adding needs `AIGATE_MASTER_KEY`);
//! while the server runs, sled's lock on the data dir says so, and the
//! command goes through the admin API with the key in `AIGATE_ADMIN_KEY`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::actors::key_pool::{AddKey, AddedKey, KeyAdminError, KeyInfo, KeyPool, RemoveKey};
use crate::admin::keys::KeyList;
use crate::config::{self, CliOverrides, Config, Secret};
use crate::storage::{SledStore, StateStore, StorageError, Tree};
use crate::vault::{Vault, VaultError};

use super::cli::remote::{base_url, segment};
pub use super::cli::ADMIN_KEY_VAR;

#[derive(Debug, clap::Args)]
pub struct KeysArgs {
    /// Config file (default: config/aigate.toml if it exists).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Where the database lives (as for `serve`).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Base URL of the running gateway (default: from the config's listen
    /// address); used only when the server holds the data dir.
    #[arg(long, global = true)]
    pub url: Option<String>,
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Add an upstream key to an endpoint (stored encrypted).
    Add {
        /// The endpoint's id in the config.
        #[arg(long)]
        endpoint: String,
        /// The key itself (prefer --key-file: command lines are visible to
        /// other users of the machine).
        #[arg(
            long,
            conflicts_with = "key_file",
            required_unless_present = "key_file"
        )]
        key: Option<String>,
        /// A file holding the key; `-` reads standard input.
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// Spending after which the key leaves the pool.
        #[arg(long)]
        budget_usd: Option<f64>,
    },
    /// List keys by id and last 4 characters.
    List {
        #[arg(long)]
        endpoint: Option<String>,
    },
    /// Remove a key added at runtime.
    Remove {
        #[arg(long)]
        endpoint: String,
        /// The key's id as `list` shows it (`k-…`).
        #[arg(long)]
        key_id: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum KeysCliError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Key(#[from] KeyAdminError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Api(String),
}

/// Runs the command, prints its result; the exit code says whether it worked.
pub fn run(args: KeysArgs, env: &BTreeMap<String, String>) -> ExitCode {
    match execute(args, env) {
        Ok(output) => {
            print!("{output}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("aigate keys: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the command and returns what to print.
pub fn execute(args: KeysArgs, env: &BTreeMap<String, String>) -> Result<String, KeysCliError> {
    let overrides = CliOverrides {
        listen: None,
        data_dir: args.data_dir.clone(),
    };
    let config = config::load(args.config.as_deref(), env, &overrides)
        .map_err(|e| KeysCliError::Config(e.to_string()))?;
    let command = args.command;
    let db_dir = config.server.data_dir.join("db");
    match SledStore::open_patiently(&db_dir, std::time::Duration::from_secs(2)) {
        Ok(store) => offline(&config, &store, command, env),
        Err(StorageError::Open { message, .. }) if message.contains("lock") => {
            let admin_key = env
                .get(ADMIN_KEY_VAR)
                .filter(|k| !k.trim().is_empty())
                .ok_or_else(|| {
                    KeysCliError::Api(format!(
                        "{} is in use by a running aigate; set {ADMIN_KEY_VAR} to an admin key to go through its admin API",
                        db_dir.display()
                    ))
                })?;
            let base = args.url.unwrap_or_else(|| base_url(config.server.listen));
            online(&base, admin_key.trim(), command)
        }
        Err(e) => Err(e.into()),
    }
}

/// The key from `--key` or `--key-file` (`-` = stdin), trimmed.
fn read_key(key: Option<String>, key_file: Option<PathBuf>) -> Result<Secret, KeysCliError> {
    let text = match (key, key_file) {
        (Some(key), _) => key,
        (None, Some(path)) if path.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| KeysCliError::Input(format!("cannot read the key from stdin: {e}")))?;
            text
        }
        (None, Some(path)) => std::fs::read_to_string(&path).map_err(|e| {
            KeysCliError::Input(format!("cannot read key file {}: {e}", path.display()))
        })?,
        (None, None) => return Err(KeysCliError::Input("give --key or --key-file".into())),
    };
    Ok(Secret::new(text.trim()))
}

/// The server is stopped: the same pool rules, applied to the store.
fn offline(
    config: &Config,
    store: &SledStore,
    command: KeysCommand,
    env: &BTreeMap<String, String>,
) -> Result<String, KeysCliError> {
    let vault = Vault::from_env_map(env)?;
    let stored = store.load_all(Tree::UpstreamKeys)?;
    let mut pool = KeyPool::restore(&config.endpoints, &stored, vault, None);
    match command {
        KeysCommand::Add {
            endpoint,
            key,
            key_file,
            budget_usd,
        } => {
            let secret = read_key(key, key_file)?;
            let msg = AddKey {
                endpoint_id: endpoint,
                secret,
                budget_usd,
            };
            let (added, op) = pool.add(msg)?;
            store.apply(Tree::UpstreamKeys, vec![op])?;
            store.flush()?;
            Ok(added_line(&added))
        }
        KeysCommand::List { endpoint } => Ok(table(&pool.list(endpoint.as_deref())?)),
        KeysCommand::Remove { endpoint, key_id } => {
            let msg = RemoveKey {
                endpoint_id: endpoint,
                key_id,
            };
            let (removed, op) = pool.remove(&msg)?;
            store.apply(Tree::UpstreamKeys, vec![op])?;
            store.flush()?;
            Ok(removed_line(&removed))
        }
    }
}

/// The server runs: the admin API does the work.
fn online(base: &str, admin_key: &str, command: KeysCommand) -> Result<String, KeysCliError> {
    let base = base.trim_end_matches('/').to_string();
    let auth = format!("Bearer {admin_key}");
    actix_web::rt::System::new().block_on(async move {
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .finish();
        match command {
            KeysCommand::Add {
                endpoint,
                key,
                key_file,
                budget_usd,
            } => {
                let secret = read_key(key, key_file)?;
                let body = serde_json::json!({
                    "endpoint": endpoint,
                    "key": secret.expose(),
                    "budget_usd": budget_usd,
                });
                let request = client
                    .post(format!("{base}/admin/api/keys"))
                    .insert_header(("authorization", auth))
                    .send_json(&body);
                let added: AddedKey = reply(request.await).await?;
                Ok(added_line(&added))
            }
            KeysCommand::List { endpoint } => {
                let query = endpoint
                    .map(|e| format!("?endpoint={}", segment(&e)))
                    .unwrap_or_default();
                let request = client
                    .get(format!("{base}/admin/api/keys{query}"))
                    .insert_header(("authorization", auth))
                    .send();
                let list: KeyList = reply(request.await).await?;
                Ok(table(&list.keys))
            }
            KeysCommand::Remove { endpoint, key_id } => {
                let url = format!(
                    "{base}/admin/api/keys/{}/{}",
                    segment(&endpoint),
                    segment(&key_id)
                );
                let request = client
                    .delete(url)
                    .insert_header(("authorization", auth))
                    .send();
                let removed: KeyInfo = reply(request.await).await?;
                Ok(removed_line(&removed))
            }
        }
    })
}

#[derive(Deserialize)]
struct ApiError {
    error: ApiErrorDetail,
}

#[derive(Deserialize)]
struct ApiErrorDetail {
    message: String,
}

type SentRequest = Result<awc::ClientResponse, awc::error::SendRequestError>;

/// The typed body of a 2xx answer, or the API's error message.
async fn reply<T: DeserializeOwned>(sent: SentRequest) -> Result<T, KeysCliError> {
    let unreachable = |e: String| KeysCliError::Api(format!("the admin API did not answer: {e}"));
    let mut response = sent.map_err(|e| unreachable(e.to_string()))?;
    let status = response.status();
    let body = response
        .body()
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    if status.is_success() {
        return serde_json::from_slice(&body)
            .map_err(|e| KeysCliError::Api(format!("unexpected answer from the admin API: {e}")));
    }
    let message = serde_json::from_slice::<ApiError>(&body)
        .map(|e| e.error.message)
        .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
    Err(KeysCliError::Api(format!("{}: {message}", status.as_u16())))
}

fn added_line(added: &AddedKey) -> String {
    format!(
        "added key {} ({}) to endpoint {}\n",
        added.id, added.hint, added.endpoint
    )
}

fn removed_line(removed: &KeyInfo) -> String {
    format!(
        "removed key {} ({}) from endpoint {}\n",
        removed.id, removed.hint, removed.endpoint
    )
}

/// Keys as an aligned table, with a note when some cannot be decrypted.
fn table(keys: &[KeyInfo]) -> String {
    let mut rows =
        vec![["ENDPOINT", "ID", "HINT", "SOURCE", "STATE", "SPENT_USD"].map(String::from)];
    for k in keys {
        let spent = match k.budget_usd {
            Some(budget) => format!("{:.4} / {budget:.2}", k.spent_usd),
            None => format!("{:.4}", k.spent_usd),
        };
        rows.push([
            k.endpoint.clone(),
            k.id.clone(),
            k.hint.clone(),
            k.source.clone(),
            k.state.clone(),
            spent,
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    if keys.iter().any(|k| k.state == "locked") {
        out.push_str(
            "locked: stored, but cannot be decrypted without the right AIGATE_MASTER_KEY\n",
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_prefers_loopback() {
        assert_eq!(
            base_url("0.0.0.0:6543".parse().unwrap()),
            "http://127.0.0.1:6543"
        );
        assert_eq!(base_url("[::]:80".parse().unwrap()), "http://[::1]:80");
        assert_eq!(base_url("10.0.0.2:1".parse().unwrap()), "http://10.0.0.2:1");
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn offline_add_list_remove() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("aigate.toml");
        std::fs::write(
            &config,
            "[[endpoints]]\nid = \"up\"\nprovider = \"openai\"\nbase_url = \"http://127.0.0.1:9\"\nkeys = [\"sk-config-1111\"]\n",
        )
        .unwrap();
        let args = |command: KeysCommand| KeysArgs {
            config: Some(config.clone()),
            data_dir: Some(dir.path().join("data")),
            url: None,
            command,
        };
        let add = || KeysCommand::Add {
            endpoint: "up".into(),
            key: Some("sk-offline-secret-2222".into()),
            key_file: None,
            budget_usd: Some(3.0),
        };
        let none = BTreeMap::new();
        let refused = execute(args(add()), &none).unwrap_err();
        assert!(
            refused.to_string().contains("AIGATE_MASTER_KEY"),
            "{refused}"
        );

        let env = BTreeMap::from([("AIGATE_MASTER_KEY".to_string(), "ab".repeat(32))]);
        let added = execute(args(add()), &env).unwrap();
        assert!(
            added.contains("(…2222)") && !added.contains("secret"),
            "{added}"
        );
        let listed = execute(args(KeysCommand::List { endpoint: None }), &env).unwrap();
        assert!(
            listed.contains("config") && listed.contains("runtime"),
            "{listed}"
        );
        assert!(listed.contains("0.0000 / 3.00"), "{listed}");
        let locked = execute(args(KeysCommand::List { endpoint: None }), &none).unwrap();
        assert!(locked.contains("locked"), "{locked}");

        let id = crate::actors::key_pool::key_id_of("up", "sk-offline-secret-2222");
        let config_id = crate::actors::key_pool::key_id_of("up", "sk-config-1111");
        let remove = |key_id: &str| KeysCommand::Remove {
            endpoint: "up".into(),
            key_id: key_id.into(),
        };
        let refused = execute(args(remove(&config_id)), &env).unwrap_err();
        assert!(refused.to_string().contains("config file"), "{refused}");
        execute(args(remove(&id)), &none).unwrap();
        let listed = execute(args(KeysCommand::List { endpoint: None }), &env).unwrap();
        assert!(!listed.contains("runtime"), "{listed}");
    }
}
