//! `aigate users add|list|disable|enable|rotate`: user management for
//! operators without the admin UI. With the server stopped it works on the
//! data dir directly, through the same Users actor the server runs (started
//! in a one-shot actix System); while the server runs, sled's lock on the
//! data dir says so, and the command goes through the admin API with the
//! key in `AIGATE_ADMIN_KEY`. Either way the new user is the same JSON body
//! the API takes, read by the same deserializer.

mod output;
pub(crate) mod remote;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use actix::Actor;

use crate::config::{self, CliOverrides, Config};
use crate::storage::{SledStore, StateStore, StorageError, StoreOp, Tree};
use crate::users::actor::{
    Create, List, NewUser, Rotate, TakeState, Update, UserError, UserPatch, UserSettings, Users,
};
use crate::users::model::{Period, Quota, Role};
use output::{created, listed, rotated, toggled, ApiUser};
use remote::{base_url, Remote};

/// The variable holding the admin key the CLI uses against a running server.
pub const ADMIN_KEY_VAR: &str = "AIGATE_ADMIN_KEY";

#[derive(Debug, clap::Args)]
pub struct UsersArgs {
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
    pub command: UsersCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum UsersCommand {
    /// Create a user and print its key (shown this once).
    Add(AddArgs),
    /// List users (keys by their last 4 characters only).
    List,
    /// Disable a user: the key stops working until enabled.
    Disable { id: String },
    /// Enable a user again (also forgets the IPs seen).
    Enable { id: String },
    /// Issue a new key (shown this once); the old one stops working.
    Rotate { id: String },
}

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// A name for people (the id is generated).
    #[arg(long)]
    pub name: String,
    /// admin, user or temporary (default: user; temporary with --temporary-hours).
    #[arg(long, value_parser = parse_role)]
    pub role: Option<Role>,
    /// Requests per minute.
    #[arg(long)]
    pub rpm: Option<u64>,
    /// Tokens per minute (prompt + completion).
    #[arg(long)]
    pub tpm: Option<u64>,
    /// The key expires this many hours from now.
    #[arg(long)]
    pub expires_in_hours: Option<u64>,
    /// The key expires this many hours after its first use.
    #[arg(long)]
    pub temporary_hours: Option<u64>,
    /// More distinct client IPs than this within the IP window disable the user.
    #[arg(long)]
    pub max_ips: Option<u32>,
    /// A model (glob) the user may call; repeat for more. Default: any.
    #[arg(long = "model", value_name = "GLOB")]
    pub models: Vec<String>,
    /// A token quota: 'GLOB=TOKENS/PERIOD', e.g. 'gpt-4o*=100k/daily'
    /// (periods: daily, weekly, monthly, never). Repeatable.
    #[arg(long = "quota", value_name = "GLOB=TOKENS/PERIOD", value_parser = parse_quota)]
    pub quotas: Vec<Quota>,
}

#[derive(Debug, thiserror::Error)]
pub enum UsersCliError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    User(#[from] UserError),
    #[error("{0}")]
    Api(String),
}

/// The body of a new user, as the admin API takes it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NewUserBody {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
    pub quotas: Vec<Quota>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_after_first_use_hours: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_ips: Option<u32>,
    pub allowed_models: Vec<String>,
}

impl AddArgs {
    pub fn body(self, now: u64) -> NewUserBody {
        let role = self.role.or(self.temporary_hours.map(|_| Role::Temporary));
        NewUserBody {
            name: self.name,
            role,
            rpm: self.rpm,
            tpm: self.tpm,
            quotas: self.quotas,
            expires_at: self
                .expires_in_hours
                .map(|h| now.saturating_add(h.saturating_mul(3600))),
            expires_after_first_use_hours: self.temporary_hours,
            max_ips: self.max_ips,
            allowed_models: self.models,
        }
    }
}

fn parse_role(text: &str) -> Result<Role, String> {
    match text {
        "admin" => Ok(Role::Admin),
        "user" => Ok(Role::User),
        "temporary" => Ok(Role::Temporary),
        _ => Err("expected admin, user or temporary".into()),
    }
}

/// `GLOB=TOKENS/PERIOD`; tokens may end in k or M.
pub fn parse_quota(text: &str) -> Result<Quota, String> {
    let usage = || format!("'{text}': expected GLOB=TOKENS/PERIOD, e.g. 'gpt-4o*=100k/daily'");
    let (models, rest) = text.rsplit_once('=').ok_or_else(usage)?;
    let (tokens, period) = rest.split_once('/').ok_or_else(usage)?;
    let (digits, scale) = match tokens.trim() {
        t if t.ends_with(['k', 'K']) => (&t[..t.len() - 1], 1_000),
        t if t.ends_with('M') => (&t[..t.len() - 1], 1_000_000),
        t => (t, 1),
    };
    let tokens = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(usage)?;
    let period = match period.trim() {
        "daily" => Period::Daily,
        "weekly" => Period::Weekly,
        "monthly" => Period::Monthly,
        "never" => Period::Never,
        _ => return Err(usage()),
    };
    match models.trim() {
        "" => Err(usage()),
        models => Ok(Quota {
            models: models.to_string(),
            tokens,
            period,
        }),
    }
}

/// What to do, whichever way it is done.
#[derive(Debug)]
pub enum Op {
    Add(NewUserBody),
    List,
    SetEnabled(String, bool),
    Rotate(String),
}

/// Runs the command, prints its result; the exit code says whether it worked.
pub fn run(args: UsersArgs, env: &BTreeMap<String, String>) -> ExitCode {
    match execute(args, env) {
        Ok(output) => {
            print!("{output}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("aigate users: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the command and returns what to print.
pub fn execute(args: UsersArgs, env: &BTreeMap<String, String>) -> Result<String, UsersCliError> {
    let overrides = CliOverrides {
        listen: None,
        data_dir: args.data_dir.clone(),
    };
    let config = config::load(args.config.as_deref(), env, &overrides)
        .map_err(|e| UsersCliError::Config(e.to_string()))?;
    let op = match args.command {
        UsersCommand::Add(add) => Op::Add(add.body(crate::users::unix_now())),
        UsersCommand::List => Op::List,
        UsersCommand::Disable { id } => Op::SetEnabled(id, false),
        UsersCommand::Enable { id } => Op::SetEnabled(id, true),
        UsersCommand::Rotate { id } => Op::Rotate(id),
    };
    let db_dir = config.server.data_dir.join("db");
    match SledStore::open_patiently(&db_dir, std::time::Duration::from_secs(2)) {
        Ok(store) => offline(&config, &store, op),
        Err(StorageError::Open { message, .. }) if message.contains("lock") => {
            let base = args.url.unwrap_or_else(|| base_url(config.server.listen));
            let key = env
                .get(ADMIN_KEY_VAR)
                .map(|k| k.trim())
                .filter(|k| !k.is_empty())
                .ok_or_else(|| {
                    UsersCliError::Api(format!(
                        "{} is in use by a running aigate (could not acquire lock); set {ADMIN_KEY_VAR} to an admin key to go through its admin API at {base}",
                        db_dir.display()
                    ))
                })?;
            Remote::new(&base, key).run(op)
        }
        Err(e) => Err(e.into()),
    }
}

/// The keys of the config file as users, as the server sees them.
fn config_users(config: &Config) -> Vec<(String, Role)> {
    let users = config.auth.client_keys.iter().map(|k| (k, Role::User));
    let admins = config.auth.admin_keys.iter().map(|k| (k, Role::Admin));
    users
        .chain(admins)
        .map(|(k, role)| (k.expose().to_string(), role))
        .collect()
}

/// The server is stopped: the Users actor, on the stored users, in a
/// one-shot System; only the user the command touched is written back.
fn offline(config: &Config, store: &SledStore, op: Op) -> Result<String, UsersCliError> {
    let stored = store.load_all(Tree::Users)?;
    let config_keys = config_users(config);
    let mailbox = |e: actix::MailboxError| UsersCliError::Api(format!("Users actor: {e}"));
    let (output, touched, ops) = actix::System::new().block_on(async move {
        let users = Users::new(&stored, &config_keys, UserSettings::default(), None).start();
        let (output, touched) = match op {
            Op::Add(body) => {
                let value =
                    serde_json::to_value(&body).map_err(|e| UsersCliError::Api(e.to_string()))?;
                let new: NewUser = serde_json::from_value(value)
                    .map_err(|e| UsersCliError::Api(format!("invalid user: {e}")))?;
                let (view, key) = users.send(Create(new)).await.map_err(mailbox)??;
                (created(&ApiUser::from(view.clone()), &key), Some(view.id))
            }
            Op::List => {
                let views = users.send(List).await.map_err(mailbox)?;
                let rows: Vec<ApiUser> = views.into_iter().map(ApiUser::from).collect();
                (listed(&rows), None)
            }
            Op::SetEnabled(id, enabled) => {
                let patch = UserPatch {
                    enabled: Some(enabled),
                    ..UserPatch::default()
                };
                let view = users.send(Update { id, patch }).await.map_err(mailbox)??;
                (toggled(&ApiUser::from(view.clone())), Some(view.id))
            }
            Op::Rotate(id) => {
                let (view, key) = users.send(Rotate(id)).await.map_err(mailbox)??;
                (rotated(&ApiUser::from(view.clone()), &key), Some(view.id))
            }
        };
        let ops = users.send(TakeState).await.map_err(mailbox)?;
        Ok::<_, UsersCliError>((output, touched, ops))
    })?;
    if let Some(id) = touched {
        // Config users are the server's to sync: leave them as stored.
        let ops: Vec<StoreOp> = ops
            .into_iter()
            .filter(
                |op| matches!(op, StoreOp::Put(k, _) | StoreOp::Delete(k) if *k == id.as_bytes()),
            )
            .collect();
        store.apply(Tree::Users, ops)?;
        store.flush()?;
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_parse() {
        let q = parse_quota("gpt-4o*=100k/daily").unwrap();
        assert_eq!(
            (q.models.as_str(), q.tokens, q.period),
            ("gpt-4o*", 100_000, Period::Daily)
        );
        let q = parse_quota("claude-*=2M/monthly").unwrap();
        assert_eq!((q.tokens, q.period), (2_000_000, Period::Monthly));
        assert_eq!(parse_quota("*=50/never").unwrap().tokens, 50);
        for bad in ["gpt", "=5/daily", "gpt=5", "gpt=x/daily", "gpt=5/hourly"] {
            assert!(parse_quota(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn add_args_become_the_api_body() {
        let args = AddArgs {
            name: "temp".into(),
            role: None,
            rpm: Some(5),
            tpm: None,
            expires_in_hours: Some(2),
            temporary_hours: Some(3),
            max_ips: Some(1),
            models: vec!["gpt-*".into()],
            quotas: vec![],
        };
        let body = args.body(1000);
        assert_eq!(body.role, Some(Role::Temporary));
        assert_eq!(body.expires_at, Some(1000 + 7200));
        let new: NewUser = serde_json::from_value(serde_json::to_value(&body).unwrap()).unwrap();
        assert_eq!(new.expires_after_first_use_hours, Some(3));
        assert_eq!(new.allowed_models, vec!["gpt-*".to_string()]);
    }

    #[test]
    fn offline_add_list_disable_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("aigate.toml");
        std::fs::write(&config, "[auth]\nclient_keys = [\"fk-config\"]\n").unwrap();
        let args = |command| UsersArgs {
            config: Some(config.clone()),
            data_dir: Some(dir.path().join("data")),
            url: None,
            command,
        };
        let env = BTreeMap::new();
        let add = AddArgs {
            name: "alice".into(),
            role: None,
            rpm: Some(10),
            tpm: None,
            expires_in_hours: None,
            temporary_hours: None,
            max_ips: None,
            models: vec![],
            quotas: vec![parse_quota("gpt-*=1k/daily").unwrap()],
        };
        let out = execute(args(UsersCommand::Add(add)), &env).unwrap();
        let key = out
            .split_whitespace()
            .find(|w| w.starts_with("ak-"))
            .unwrap();
        let id = out
            .split_whitespace()
            .find(|w| w.starts_with("u-"))
            .unwrap()
            .to_string();
        assert!(out.contains("not be shown again"), "{out}");

        let list = execute(args(UsersCommand::List), &env).unwrap();
        assert!(
            list.contains(&id) && list.contains("alice") && !list.contains(key),
            "{list}"
        );
        assert!(list.contains("config key 1"), "{list}");
        assert!(list.contains("gpt-*: 0/1000 daily"), "{list}");

        let out = execute(args(UsersCommand::Disable { id: id.clone() }), &env).unwrap();
        assert!(out.contains("disabled"), "{out}");
        let list = execute(args(UsersCommand::List), &env).unwrap();
        assert!(list.contains("disabled by an admin"), "{list}");

        let out = execute(args(UsersCommand::Rotate { id: id.clone() }), &env).unwrap();
        let new_key = out
            .split_whitespace()
            .find(|w| w.starts_with("ak-"))
            .unwrap();
        assert_ne!(new_key, key);

        let cfg_id = list
            .split_whitespace()
            .find(|w| w.starts_with("cfg-"))
            .unwrap();
        let e = execute(args(UsersCommand::Disable { id: cfg_id.into() }), &env).unwrap_err();
        assert!(e.to_string().contains("config file"), "{e}");
        let e = execute(
            args(UsersCommand::Enable {
                id: "u-nope".into(),
            }),
            &env,
        )
        .unwrap_err();
        assert!(e.to_string().contains("no user with id u-nope"), "{e}");
    }
}
