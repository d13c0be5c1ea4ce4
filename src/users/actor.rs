//! The Users actor: owns every user, their live counters and reservations.
//! Users created through the admin API or CLI are persisted; keys from the
//! config file are users too (role `user`, or `admin` for `admin_keys`),
//! recreated at each start with their usage kept.
//!
//! With Redis, the handle checks RPM, TPM, concurrency and quotas there
//! (`users::shared`) after the actor's local rules (`shared_admission.rs`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use actix::prelude::*;
use serde::Deserialize;

use super::admission::{self, Ask, Refusal, Reservation, Used, UserState};
use super::model::{Quota, Role, User, USER_FORMAT_VERSION};
use super::shared::SharedUsers;
use super::view::UserView;
use super::{generate_key, hex, key_digest, key_hint, unix_now};
use crate::actors::mailbox_error;
use crate::config::Config;
use crate::error::GatewayError;
use crate::limits::now_ms;
use crate::storage::redis::RedisShared;
use crate::storage::writer::{DiskWriter, WriteBatch};
use crate::storage::{StoreOp, Tree};

mod shared_admission;
pub use shared_admission::{CheckLocalRules, LocalAdmission, MarkAdmitted, SharedLimitsOf};

const PERSIST_EVERY: Duration = Duration::from_secs(1);

/// Rules that come from the config rather than from each user.
#[derive(Debug, Clone)]
pub struct UserSettings {
    /// Window for counting a user's distinct IPs.
    pub ip_window: Duration,
    /// Largest estimated prompt per role.
    pub max_prompt_tokens: HashMap<Role, u64>,
}

impl Default for UserSettings {
    fn default() -> Self {
        UserSettings {
            ip_window: Duration::from_secs(86_400),
            max_prompt_tokens: HashMap::new(),
        }
    }
}

// ---- messages ----

/// Who holds this key, and may they start this request? Counts and reserves
/// when they may.
#[derive(Message)]
#[rtype(result = "Result<Admission, AuthRefusal>")]
pub struct Authenticate {
    pub digest: [u8; 32],
    pub ip: IpAddr,
    pub model: Option<String>,
    pub prompt_estimate: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    pub user_id: String,
    pub role: Role,
    pub reservation: Reservation,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthRefusal {
    /// Not a key of ours.
    Unknown,
    Refused(Refusal),
}

/// A request of an admitted user ended: release its reservation, charge it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Charge {
    pub user_id: String,
    pub reservation: Reservation,
    pub used: Used,
}

/// Tokens a user spent outside one request/response exchange.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ChargeTokens {
    pub user_id: String,
    pub model: Option<String>,
    pub used: Used,
}

/// A new user as the admin API and CLI describe one.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub name: String,
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default)]
    pub rpm: Option<u64>,
    #[serde(default)]
    pub tpm: Option<u64>,
    #[serde(default)]
    pub quotas: Vec<Quota>,
    #[serde(default)]
    pub expires_at: Option<u64>,
    #[serde(default)]
    pub expires_after_first_use_hours: Option<u64>,
    #[serde(default)]
    pub max_ips: Option<u32>,
    #[serde(default)]
    pub allowed_models: Vec<String>,
    #[serde(default)]
    pub max_concurrent: Option<u32>,
}

/// Changes to a user; absent fields stay, `null` clears a limit.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    pub rpm: Option<Option<u64>>,
    #[serde(default, deserialize_with = "nullable")]
    pub tpm: Option<Option<u64>>,
    #[serde(default)]
    pub quotas: Option<Vec<Quota>>,
    #[serde(default, deserialize_with = "nullable")]
    pub expires_at: Option<Option<u64>>,
    #[serde(default, deserialize_with = "nullable")]
    pub expires_after_first_use_hours: Option<Option<u64>>,
    #[serde(default, deserialize_with = "nullable")]
    pub max_ips: Option<Option<u32>>,
    #[serde(default)]
    pub allowed_models: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub max_concurrent: Option<Option<u32>>,
}

/// A present field (value or null) becomes `Some(..)`; an absent one stays
/// `None` through `#[serde(default)]`.
fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("no user with id {0}")]
    NotFound(String),
    #[error("user {0} comes from the config file; change it there")]
    FromConfig(String),
    #[error("{0}")]
    Invalid(String),
    #[error("could not generate a key")]
    KeyGeneration,
}

#[derive(Message)]
#[rtype(result = "Result<(UserView, String), UserError>")]
pub struct Create(pub NewUser);

#[derive(Message)]
#[rtype(result = "Result<UserView, UserError>")]
pub struct Update {
    pub id: String,
    pub patch: UserPatch,
}

#[derive(Message)]
#[rtype(result = "Result<(), UserError>")]
pub struct Delete(pub String);

/// A new key for the user; the old one stops working at once.
#[derive(Message)]
#[rtype(result = "Result<(UserView, String), UserError>")]
pub struct Rotate(pub String);

/// Starts every quota of the user over.
#[derive(Message)]
#[rtype(result = "Result<UserView, UserError>")]
pub struct ResetQuota(pub String);

#[derive(Message)]
#[rtype(result = "Result<UserView, UserError>")]
pub struct Get(pub String);

#[derive(Message)]
#[rtype(result = "Vec<UserView>")]
pub struct List;

/// Whose key is this, without counting a request: for the gateway's own
/// endpoints (status, admin API). `None` for unknown, disabled or expired.
#[derive(Message)]
#[rtype(result = "Option<(String, Role)>")]
pub struct Lookup(pub [u8; 32]);

/// Persisted state of changed users, handed over at shutdown.
#[derive(Message)]
#[rtype(result = "Vec<StoreOp>")]
pub struct TakeState;

// ---- actor ----

pub struct Users {
    users: HashMap<String, UserState>,
    by_digest: HashMap<[u8; 32], String>,
    settings: UserSettings,
    dirty: Vec<String>,
    writer: Option<Addr<DiskWriter>>,
}

impl Users {
    /// `stored`: the users tree; `config_keys`: keys from the config file
    /// with their role.
    pub fn new(
        stored: &[(Vec<u8>, Vec<u8>)],
        config_keys: &[(String, Role)],
        settings: UserSettings,
        writer: Option<Addr<DiskWriter>>,
    ) -> Self {
        let mut users = Users {
            users: HashMap::new(),
            by_digest: HashMap::new(),
            settings,
            dirty: Vec::new(),
            writer,
        };
        for (_, value) in stored {
            match serde_json::from_slice::<User>(value) {
                Ok(user) if user.version == USER_FORMAT_VERSION => users.insert(user),
                Ok(user) => log::warn!("user {} has an unknown format version; skipped", user.id),
                Err(e) => log::warn!("unreadable user record skipped: {e}"),
            }
        }
        users.sync_config_keys(config_keys);
        users
    }

    fn insert(&mut self, user: User) {
        if let Some(digest) = parse_hex(&user.key_hash) {
            self.by_digest.insert(digest, user.id.clone());
        }
        self.users.insert(user.id.clone(), UserState::new(user));
    }

    /// Config keys become users `cfg-<hash prefix>`; config users no longer
    /// in the file are removed.
    fn sync_config_keys(&mut self, config_keys: &[(String, Role)]) {
        let mut wanted = Vec::new();
        for (index, (key, role)) in config_keys.iter().enumerate() {
            let digest = key_digest(key);
            let id = format!("cfg-{}", &hex(&digest)[..12]);
            wanted.push(id.clone());
            match self.users.get_mut(&id) {
                Some(state) => {
                    state.user.role = *role;
                    state.user.from_config = true;
                }
                None => {
                    let user = new_user(
                        &id,
                        &format!("config key {}", index + 1),
                        key,
                        *role,
                        unix_now(),
                    );
                    let mut user = user;
                    user.from_config = true;
                    self.insert(user);
                }
            }
            self.by_digest.insert(digest, id.clone());
            self.dirty.push(id);
        }
        let stale: Vec<String> = self
            .users
            .values()
            .filter(|s| s.user.from_config && !wanted.contains(&s.user.id))
            .map(|s| s.user.id.clone())
            .collect();
        for id in stale {
            self.remove(&id);
        }
    }

    fn remove(&mut self, id: &str) {
        if let Some(state) = self.users.remove(id) {
            if let Some(digest) = parse_hex(&state.user.key_hash) {
                self.by_digest.remove(&digest);
            }
            self.dirty.push(id.to_string());
        }
    }

    fn editable(&mut self, id: &str) -> Result<&mut UserState, UserError> {
        let state = self
            .users
            .get_mut(id)
            .ok_or_else(|| UserError::NotFound(id.into()))?;
        match state.user.from_config {
            true => Err(UserError::FromConfig(id.into())),
            false => Ok(state),
        }
    }

    fn view(&mut self, id: &str) -> Result<UserView, UserError> {
        let state = self
            .users
            .get_mut(id)
            .ok_or_else(|| UserError::NotFound(id.into()))?;
        Ok(UserView::of(state, unix_now()))
    }

    fn take_dirty_ops(&mut self) -> Vec<StoreOp> {
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort();
        dirty.dedup();
        dirty
            .into_iter()
            .map(|id| match self.users.get(&id) {
                Some(state) => StoreOp::Put(
                    id.into_bytes(),
                    serde_json::to_vec(&state.user).unwrap_or_default(),
                ),
                None => StoreOp::Delete(id.into_bytes()),
            })
            .collect()
    }
}

fn parse_hex(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if text.len() != 64 {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

fn new_user(id: &str, name: &str, key: &str, role: Role, now: u64) -> User {
    User {
        version: USER_FORMAT_VERSION,
        id: id.to_string(),
        name: name.to_string(),
        key_hash: hex(&key_digest(key)),
        key_hint: key_hint(key),
        role,
        enabled: true,
        disabled_reason: None,
        rpm: None,
        tpm: None,
        quotas: Vec::new(),
        quota_usage: Vec::new(),
        expires_at: None,
        expires_after_first_use_hours: None,
        max_ips: None,
        allowed_models: Vec::new(),
        max_concurrent: None,
        created_at: now,
        first_used_at: None,
        last_used_at: None,
        totals: Default::default(),
        from_config: false,
    }
}

fn check_quotas(quotas: &[Quota]) -> Result<(), UserError> {
    match quotas.iter().find(|q| q.models.trim().is_empty()) {
        Some(_) => Err(UserError::Invalid(
            "quotas[].models: expected a model name or glob".into(),
        )),
        None => Ok(()),
    }
}

impl Actor for Users {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(PERSIST_EVERY, |actor, _| {
            if actor.dirty.is_empty() {
                return;
            }
            let ops = actor.take_dirty_ops();
            if let Some(writer) = &actor.writer {
                writer.do_send(WriteBatch {
                    tree: Tree::Users,
                    ops,
                });
            }
        });
    }
}

/// Looks the key up by digest and applies the user's rules.
impl Handler<Authenticate> for Users {
    type Result = Result<Admission, AuthRefusal>;
    fn handle(&mut self, msg: Authenticate, _: &mut Self::Context) -> Self::Result {
        let id = self
            .by_digest
            .get(&msg.digest)
            .cloned()
            .ok_or(AuthRefusal::Unknown)?;
        let state = self.users.get_mut(&id).ok_or(AuthRefusal::Unknown)?;
        let ask = Ask {
            ip: msg.ip,
            model: msg.model.as_deref(),
            prompt_estimate: msg.prompt_estimate,
            max_prompt_tokens: self
                .settings
                .max_prompt_tokens
                .get(&state.user.role)
                .copied(),
            ip_window: self.settings.ip_window,
            now_ms: now_ms(),
        };
        let was_enabled = state.user.enabled;
        let result = admission::admit(state, &ask);
        let role = state.user.role;
        if result.is_ok() || was_enabled != state.user.enabled {
            self.dirty.push(id.clone());
        }
        result
            .map(|reservation| Admission {
                user_id: id,
                role,
                reservation,
            })
            .map_err(AuthRefusal::Refused)
    }
}

/// Charges the finished request.
impl Handler<Charge> for Users {
    type Result = ();
    fn handle(&mut self, msg: Charge, _: &mut Self::Context) {
        if let Some(state) = self.users.get_mut(&msg.user_id) {
            admission::charge(state, &msg.reservation, msg.used, now_ms());
            self.dirty.push(msg.user_id);
        }
    }
}

/// Tokens used outside a request (a Realtime session's `response.done`):
/// charged to quotas, TPM and totals without touching concurrency.
impl Handler<ChargeTokens> for Users {
    type Result = ();
    fn handle(&mut self, msg: ChargeTokens, _: &mut Self::Context) {
        if let Some(state) = self.users.get_mut(&msg.user_id) {
            admission::charge_tokens(state, msg.model.as_deref(), msg.used, now_ms());
            self.dirty.push(msg.user_id);
        }
    }
}

/// Creates a user and returns the key, which is shown this once.
impl Handler<Create> for Users {
    type Result = Result<(UserView, String), UserError>;
    fn handle(&mut self, Create(new): Create, _: &mut Self::Context) -> Self::Result {
        if new.name.trim().is_empty() {
            return Err(UserError::Invalid("name: expected a non-empty name".into()));
        }
        check_quotas(&new.quotas)?;
        let key = generate_key().ok_or(UserError::KeyGeneration)?;
        let id = format!("u-{:012x}", fastrand::u64(..) & 0xffff_ffff_ffff);
        let role = new.role.unwrap_or(Role::User);
        let mut user = new_user(&id, new.name.trim(), &key, role, unix_now());
        user.rpm = new.rpm;
        user.tpm = new.tpm;
        user.quotas = new.quotas;
        user.expires_at = new.expires_at;
        user.expires_after_first_use_hours = new.expires_after_first_use_hours;
        user.max_ips = new.max_ips;
        user.allowed_models = new.allowed_models;
        user.max_concurrent = new.max_concurrent;
        self.insert(user);
        self.dirty.push(id.clone());
        log::info!("user {id} created (role {})", role.as_str());
        Ok((self.view(&id)?, key))
    }
}

/// Applies a patch; quota usage is kept for quotas that stay.
impl Handler<Update> for Users {
    type Result = Result<UserView, UserError>;
    fn handle(&mut self, Update { id, patch }: Update, _: &mut Self::Context) -> Self::Result {
        if let Some(quotas) = &patch.quotas {
            check_quotas(quotas)?;
        }
        let state = self.editable(&id)?;
        let user = &mut state.user;
        if let Some(name) = patch.name {
            user.name = name;
        }
        if let Some(role) = patch.role {
            user.role = role;
        }
        if let Some(enabled) = patch.enabled {
            user.enabled = enabled;
            user.disabled_reason = (!enabled).then(|| "disabled by an admin".to_string());
            if enabled {
                state.ips.clear();
            }
        }
        let user = &mut state.user;
        if let Some(v) = patch.rpm {
            user.rpm = v;
        }
        if let Some(v) = patch.tpm {
            user.tpm = v;
        }
        if let Some(quotas) = patch.quotas {
            let old: Vec<(Quota, super::model::QuotaUsage)> = user
                .quotas
                .drain(..)
                .zip(user.quota_usage.drain(..))
                .collect();
            user.quota_usage = quotas
                .iter()
                .map(|q| {
                    old.iter()
                        .find(|(o, _)| o == q)
                        .map(|(_, u)| u.clone())
                        .unwrap_or_default()
                })
                .collect();
            user.quotas = quotas;
            state.reserved_quota = vec![0; state.user.quotas.len()];
        }
        let user = &mut state.user;
        if let Some(v) = patch.expires_at {
            user.expires_at = v;
        }
        if let Some(v) = patch.expires_after_first_use_hours {
            user.expires_after_first_use_hours = v;
        }
        if let Some(v) = patch.max_ips {
            user.max_ips = v;
        }
        if let Some(v) = patch.allowed_models {
            user.allowed_models = v;
        }
        if let Some(v) = patch.max_concurrent {
            user.max_concurrent = v;
        }
        self.dirty.push(id.clone());
        self.view(&id)
    }
}

/// Removes the user; their key stops working at once.
impl Handler<Delete> for Users {
    type Result = Result<(), UserError>;
    fn handle(&mut self, Delete(id): Delete, _: &mut Self::Context) -> Self::Result {
        self.editable(&id)?;
        self.remove(&id);
        log::info!("user {id} deleted");
        Ok(())
    }
}

/// Issues a new key; the old digest is forgotten.
impl Handler<Rotate> for Users {
    type Result = Result<(UserView, String), UserError>;
    fn handle(&mut self, Rotate(id): Rotate, _: &mut Self::Context) -> Self::Result {
        let key = generate_key().ok_or(UserError::KeyGeneration)?;
        let state = self.editable(&id)?;
        let old = parse_hex(&state.user.key_hash);
        let digest = key_digest(&key);
        state.user.key_hash = hex(&digest);
        state.user.key_hint = key_hint(&key);
        if let Some(old) = old {
            self.by_digest.remove(&old);
        }
        self.by_digest.insert(digest, id.clone());
        self.dirty.push(id.clone());
        log::info!("user {id}: key rotated");
        Ok((self.view(&id)?, key))
    }
}

/// Zeroes the used tokens of every quota.
impl Handler<ResetQuota> for Users {
    type Result = Result<UserView, UserError>;
    fn handle(&mut self, ResetQuota(id): ResetQuota, _: &mut Self::Context) -> Self::Result {
        let state = self
            .users
            .get_mut(&id)
            .ok_or_else(|| UserError::NotFound(id.clone()))?;
        for usage in &mut state.user.quota_usage {
            usage.used = 0;
        }
        self.dirty.push(id.clone());
        self.view(&id)
    }
}

/// One user.
impl Handler<Get> for Users {
    type Result = Result<UserView, UserError>;
    fn handle(&mut self, Get(id): Get, _: &mut Self::Context) -> Self::Result {
        self.view(&id)
    }
}

/// Every user, by id.
impl Handler<List> for Users {
    type Result = MessageResult<List>;
    fn handle(&mut self, _: List, _: &mut Self::Context) -> Self::Result {
        let now = unix_now();
        let mut views: Vec<UserView> = self
            .users
            .values_mut()
            .map(|s| UserView::of(s, now))
            .collect();
        views.sort_by(|a, b| a.id.cmp(&b.id));
        MessageResult(views)
    }
}

/// Finds an active user by key digest.
impl Handler<Lookup> for Users {
    type Result = Option<(String, Role)>;
    fn handle(&mut self, Lookup(digest): Lookup, _: &mut Self::Context) -> Self::Result {
        let id = self.by_digest.get(&digest)?;
        let user = &self.users.get(id)?.user;
        let expired = user.expiry().is_some_and(|at| unix_now() >= at);
        (user.enabled && !expired).then(|| (id.clone(), user.role))
    }
}

/// Hands pending writes to the shutdown sequence.
impl Handler<TakeState> for Users {
    type Result = MessageResult<TakeState>;
    fn handle(&mut self, _: TakeState, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.take_dirty_ops())
    }
}

/// The config file's keys and user rules after a reload: config users follow
/// the file (a key no longer there stops working); other users are untouched.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SyncConfig {
    pub keys: Vec<(String, Role)>,
    pub settings: UserSettings,
}

impl Handler<SyncConfig> for Users {
    type Result = ();
    fn handle(&mut self, msg: SyncConfig, _: &mut Self::Context) {
        self.settings = msg.settings;
        self.sync_config_keys(&msg.keys);
    }
}

// ---- handle ----

#[derive(Clone)]
pub struct UsersHandle {
    addr: Addr<Users>,
    /// The per-user counters in Redis (`[storage] backend = "redis"`).
    shared: Option<SharedUsers>,
}

impl UsersHandle {
    /// Starts the actor; with Redis, RPM, TPM, concurrency and quotas are
    /// counted there. Must run inside an actix `System`.
    pub fn start(users: Users, redis: Option<&RedisShared>, config: &Config) -> Self {
        UsersHandle {
            addr: users.start(),
            shared: redis.map(|redis| SharedUsers::for_config(redis, config)),
        }
    }

    pub async fn authenticate(
        &self,
        msg: Authenticate,
    ) -> Result<Result<Admission, AuthRefusal>, GatewayError> {
        if let Some(shared) = &self.shared {
            return shared.authenticate(&self.addr, msg).await;
        }
        self.addr
            .send(msg)
            .await
            .map_err(|e| mailbox_error("Users", e))
    }

    /// Fire and forget: called from the finish step, `Drop` included.
    pub fn charge(&self, user_id: String, mut reservation: Reservation, used: Used) {
        if let (Some(shared), Some(held)) = (&self.shared, reservation.shared.take()) {
            shared.charge(user_id.clone(), held, &used);
        }
        self.addr.do_send(Charge {
            user_id,
            reservation,
            used,
        });
    }

    /// Fire and forget, like `charge`.
    pub fn charge_tokens(&self, user_id: String, model: Option<String>, used: Used) {
        if let Some(shared) = &self.shared {
            shared.charge_tokens(&self.addr, user_id.clone(), model.clone(), &used);
        }
        self.addr.do_send(ChargeTokens {
            user_id,
            model,
            used,
        });
    }

    /// The admin's view of a user: with Redis, quota usage and requests in
    /// flight are those of every instance.
    pub async fn with_shared_usage(&self, view: UserView) -> UserView {
        match &self.shared {
            Some(shared) => shared.with_usage(view).await,
            None => view,
        }
    }

    /// Starts every quota of the user over, in Redis too.
    pub async fn reset_quota(
        &self,
        id: String,
    ) -> Result<Result<UserView, UserError>, GatewayError> {
        let view = match self.send(ResetQuota(id)).await? {
            Ok(view) => view,
            Err(e) => return Ok(Err(e)),
        };
        if let Some(shared) = &self.shared {
            shared
                .reset_quotas(&view)
                .await
                .map_err(|_| GatewayError::LimitsUnavailable)?;
        }
        Ok(Ok(self.with_shared_usage(view).await))
    }

    pub async fn send<M>(&self, msg: M) -> Result<M::Result, GatewayError>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        Users: Handler<M>,
    {
        self.addr
            .send(msg)
            .await
            .map_err(|e| mailbox_error("Users", e))
    }
}
