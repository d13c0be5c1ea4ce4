//! Every user with their live counters, in one table that the request's own
//! thread locks (`actors::lock`) for a few O(1) operations: admitting a
//! request, charging it, telling whose key it is. A message to the Users
//! actor on the main thread cost a cross-thread round trip per request
//! (BENCHMARKS.md, hot spot 3); the actor keeps the persistence and the
//! admin operations, which lock the same table.
//!
//! Users created through the admin API or CLI are persisted in full. Keys
//! from the config file are users too (`cfg-…`, rebuilt from the file at
//! every start and reload): their record is written only once something
//! not derived from the file changed (usage, first and last use, a rule
//! that disabled them), so 10,000 configured keys cost no writes at start.

mod admin;
mod shared_admission;

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::net::IpAddr;
use std::time::Duration;

use super::admission::{self, Ask, Refusal, Reservation, Used, UserState};
use super::model::{Role, User, USER_FORMAT_VERSION};
use super::{hex, key_digest, key_hint};
use crate::storage::StoreOp;

pub use admin::{NewUser, UserError, UserPatch};
pub use shared_admission::LocalAdmission;

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

/// Who holds this key, and may they start this request?
#[derive(Debug, Clone)]
pub struct Authenticate<'a> {
    pub digest: [u8; 32],
    pub ip: IpAddr,
    pub model: Option<&'a str>,
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

/// A changed user as the persistence takes it: its record, or `None` when
/// it was removed.
pub type ChangedUser = (String, Option<User>);

pub struct UserTable {
    users: HashMap<String, UserState>,
    by_digest: HashMap<[u8; 32], String>,
    settings: UserSettings,
    /// Users to write (or delete) at the next persistence.
    dirty: WriteQueue,
}

impl UserTable {
    /// `stored`: the users tree; `config_keys`: keys from the config file
    /// with their role.
    pub fn new(
        stored: &[(Vec<u8>, Vec<u8>)],
        config_keys: &[(String, Role)],
        settings: UserSettings,
    ) -> Self {
        let mut table = UserTable {
            users: HashMap::new(),
            by_digest: HashMap::new(),
            settings,
            dirty: WriteQueue::default(),
        };
        for (_, value) in stored {
            match serde_json::from_slice::<User>(value) {
                Ok(user) if user.version == USER_FORMAT_VERSION => table.insert(user),
                Ok(user) => log::warn!("user {} has an unknown format version; skipped", user.id),
                Err(e) => log::warn!("unreadable user record skipped: {e}"),
            }
        }
        table.sync_config_keys(config_keys);
        table
    }

    fn insert(&mut self, user: User) {
        if let Some(digest) = parse_hex(&user.key_hash) {
            self.by_digest.insert(digest, user.id.clone());
        }
        self.users.insert(user.id.clone(), UserState::new(user));
    }

    /// The config file's keys and user rules after a reload: config users
    /// follow the file (a key no longer there stops working); other users
    /// are untouched.
    pub fn sync_config(&mut self, config_keys: &[(String, Role)], settings: UserSettings) {
        self.settings = settings;
        self.sync_config_keys(config_keys);
    }

    /// Config keys become users `cfg-<hash prefix>`; config users no longer
    /// in the file are removed. Nothing here is written: what it sets is
    /// derived from the file again at the next start.
    fn sync_config_keys(&mut self, config_keys: &[(String, Role)]) {
        let mut wanted = HashSet::new();
        for (index, (key, role)) in config_keys.iter().enumerate() {
            let digest = key_digest(key);
            let id = format!("cfg-{}", &hex(&digest)[..12]);
            match self.users.get_mut(&id) {
                Some(state) => {
                    state.user.role = *role;
                    state.user.from_config = true;
                }
                None => {
                    let name = format!("config key {}", index + 1);
                    let mut user = new_user(&id, &name, key, *role, super::unix_now());
                    user.from_config = true;
                    self.insert(user);
                }
            }
            self.by_digest.insert(digest, id.clone());
            wanted.insert(id);
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
            self.dirty.add(id);
        }
    }

    /// Looks the key up and applies every rule of the user; counts and
    /// reserves when they may start the request.
    pub fn authenticate(
        &mut self,
        msg: &Authenticate<'_>,
        now_ms: u64,
    ) -> Result<Admission, AuthRefusal> {
        let (state, ask, dirty) = self.find(msg, now_ms)?;
        let was_enabled = state.user.enabled;
        let result = admission::admit(state, &ask);
        let role = state.user.role;
        if result.is_ok() || was_enabled != state.user.enabled {
            dirty.add(&state.user.id);
        }
        result
            .map(|reservation| Admission {
                user_id: state.user.id.clone(),
                role,
                reservation,
            })
            .map_err(AuthRefusal::Refused)
    }

    /// A request of an admitted user ended: releases its reservation and
    /// charges what it used.
    pub fn charge(&mut self, user_id: String, reservation: &Reservation, used: Used, now_ms: u64) {
        if let Some(state) = self.users.get_mut(&user_id) {
            admission::charge(state, reservation, used, now_ms);
            self.dirty.add(&user_id);
        }
    }

    /// Tokens used outside a request (a Realtime session's `response.done`):
    /// charged to quotas, TPM and totals without touching concurrency.
    pub fn charge_tokens(&mut self, user_id: String, model: Option<&str>, used: Used, now_ms: u64) {
        if let Some(state) = self.users.get_mut(&user_id) {
            admission::charge_tokens(state, model, used, now_ms);
            self.dirty.add(&user_id);
        }
    }

    /// Whose key is this, without counting a request: for the gateway's own
    /// endpoints (status, admin API). `None` for unknown, disabled or
    /// expired.
    pub fn lookup(&self, digest: &[u8; 32], now: u64) -> Option<(String, Role)> {
        let id = self.by_digest.get(digest)?;
        let user = &self.users.get(id)?.user;
        let expired = user.expiry().is_some_and(|at| now >= at);
        (user.enabled && !expired).then(|| (id.clone(), user.role))
    }

    /// The users changed since the last call, copied so that they are
    /// serialised outside the lock ([`store_ops`]).
    pub fn take_changed(&mut self) -> Vec<ChangedUser> {
        std::mem::take(&mut self.dirty.0)
            .into_iter()
            .map(|id| {
                let user = self.users.get(&id).map(|state| state.user.clone());
                (id, user)
            })
            .collect()
    }

    /// The user holding a key, with the rules of their role for this ask,
    /// and the write queue (borrowed beside the user).
    fn find<'a>(
        &mut self,
        msg: &Authenticate<'a>,
        now_ms: u64,
    ) -> Result<(&mut UserState, Ask<'a>, &mut WriteQueue), AuthRefusal> {
        let id = self
            .by_digest
            .get(&msg.digest)
            .ok_or(AuthRefusal::Unknown)?;
        let state = self.users.get_mut(id).ok_or(AuthRefusal::Unknown)?;
        let ask = Ask {
            ip: msg.ip,
            model: msg.model,
            prompt_estimate: msg.prompt_estimate,
            max_prompt_tokens: self
                .settings
                .max_prompt_tokens
                .get(&state.user.role)
                .copied(),
            ip_window: self.settings.ip_window,
            now_ms,
        };
        Ok((state, ask, &mut self.dirty))
    }
}

/// Ids of the users to write. A user is in it once however many requests
/// change it before the write (every admitted request does, twice), and its
/// id is copied only the first time.
#[derive(Default)]
struct WriteQueue(HashSet<String>);

impl WriteQueue {
    fn add(&mut self, id: &str) {
        if !self.0.contains(id) {
            self.0.insert(id.to_owned());
        }
    }
}

/// The writes for changed users.
pub fn store_ops(changed: Vec<ChangedUser>) -> Vec<StoreOp> {
    changed
        .into_iter()
        .map(|(id, user)| match user {
            Some(user) => StoreOp::Put(
                id.into_bytes(),
                serde_json::to_vec(&user).unwrap_or_default(),
            ),
            None => StoreOp::Delete(id.into_bytes()),
        })
        .collect()
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

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
