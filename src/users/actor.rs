//! The Users actor: the persistence of the user table (`users::table`) and
//! the admin operations on it. Requests do not go through it: the handle
//! locks the table on the request's own thread to admit, charge and
//! identify (no message per request, see `actors`), and the actor writes
//! the users that changed once a second, and at its stop.
//!
//! With Redis, the handle checks RPM, TPM, concurrency and quotas there
//! (`users::shared`) after the table's local rules, without holding the
//! table's lock while it waits.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;

use super::admission::{Reservation, Used};
use super::generate_key;
use super::model::Role;
use super::shared::SharedUsers;
use super::table::{store_ops, UserTable};
use super::unix_now;
use super::view::UserView;
use crate::actors::{lock, mailbox_error};
use crate::config::Config;
use crate::error::GatewayError;
use crate::limits::now_ms;
use crate::storage::redis::RedisShared;
use crate::storage::writer::{DiskWriter, WriteBatch};
use crate::storage::{StoreOp, Tree};

// The request path's words and the admin messages' payloads, where callers
// have always found them.
pub use super::table::{
    Admission, AuthRefusal, Authenticate, NewUser, UserError, UserPatch, UserSettings,
};

const PERSIST_EVERY: Duration = Duration::from_secs(1);

// ---- messages (admin operations, reload, shutdown) ----

/// Creates a user and returns the key, which is shown this once.
#[derive(Message)]
#[rtype(result = "Result<(UserView, String), UserError>")]
pub struct Create(pub NewUser);

/// Applies a patch; quota usage is kept for quotas that stay.
#[derive(Message)]
#[rtype(result = "Result<UserView, UserError>")]
pub struct Update {
    pub id: String,
    pub patch: UserPatch,
}

/// Removes the user; their key stops working at once.
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

/// Every user, by id.
#[derive(Message)]
#[rtype(result = "Vec<UserView>")]
pub struct List;

/// Persisted state of changed users, handed over at shutdown.
#[derive(Message)]
#[rtype(result = "Vec<StoreOp>")]
pub struct TakeState;

/// The config file's keys and user rules after a reload: config users follow
/// the file (a key no longer there stops working); other users are untouched.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SyncConfig {
    pub keys: Vec<(String, Role)>,
    pub settings: UserSettings,
}

// ---- actor ----

pub struct Users {
    table: Arc<Mutex<UserTable>>,
    /// `None` (the offline CLI): changes wait for [`TakeState`].
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
        Users {
            table: Arc::new(Mutex::new(UserTable::new(stored, config_keys, settings))),
            writer,
        }
    }

    /// Hands the users changed since the last write to the DiskWriter,
    /// serialised outside the lock.
    fn persist(&self) {
        let Some(writer) = &self.writer else {
            return;
        };
        let changed = lock(&self.table).take_changed();
        if !changed.is_empty() {
            writer.do_send(WriteBatch {
                tree: Tree::Users,
                ops: store_ops(changed),
            });
        }
    }
}

impl Actor for Users {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(PERSIST_EVERY, |actor, _| actor.persist());
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.persist();
    }
}

/// The key is generated before the table is locked.
impl Handler<Create> for Users {
    type Result = Result<(UserView, String), UserError>;
    fn handle(&mut self, Create(new): Create, _: &mut Self::Context) -> Self::Result {
        let key = generate_key().ok_or(UserError::KeyGeneration)?;
        let view = lock(&self.table).create(new, &key)?;
        Ok((view, key))
    }
}

impl Handler<Update> for Users {
    type Result = Result<UserView, UserError>;
    fn handle(&mut self, Update { id, patch }: Update, _: &mut Self::Context) -> Self::Result {
        lock(&self.table).update(&id, patch)
    }
}

impl Handler<Delete> for Users {
    type Result = Result<(), UserError>;
    fn handle(&mut self, Delete(id): Delete, _: &mut Self::Context) -> Self::Result {
        lock(&self.table).delete(&id)
    }
}

/// The key is generated before the table is locked.
impl Handler<Rotate> for Users {
    type Result = Result<(UserView, String), UserError>;
    fn handle(&mut self, Rotate(id): Rotate, _: &mut Self::Context) -> Self::Result {
        let key = generate_key().ok_or(UserError::KeyGeneration)?;
        let view = lock(&self.table).rotate(&id, &key)?;
        Ok((view, key))
    }
}

impl Handler<ResetQuota> for Users {
    type Result = Result<UserView, UserError>;
    fn handle(&mut self, ResetQuota(id): ResetQuota, _: &mut Self::Context) -> Self::Result {
        lock(&self.table).reset_quota(&id)
    }
}

impl Handler<Get> for Users {
    type Result = Result<UserView, UserError>;
    fn handle(&mut self, Get(id): Get, _: &mut Self::Context) -> Self::Result {
        lock(&self.table).view(&id)
    }
}

impl Handler<List> for Users {
    type Result = MessageResult<List>;
    fn handle(&mut self, _: List, _: &mut Self::Context) -> Self::Result {
        MessageResult(lock(&self.table).list())
    }
}

/// Hands pending writes to the shutdown sequence.
impl Handler<TakeState> for Users {
    type Result = MessageResult<TakeState>;
    fn handle(&mut self, _: TakeState, _: &mut Self::Context) -> Self::Result {
        let changed = lock(&self.table).take_changed();
        MessageResult(store_ops(changed))
    }
}

impl Handler<SyncConfig> for Users {
    type Result = ();
    fn handle(&mut self, msg: SyncConfig, _: &mut Self::Context) {
        lock(&self.table).sync_config(&msg.keys, msg.settings);
    }
}

// ---- handle ----

#[derive(Clone)]
pub struct UsersHandle {
    /// Locked on the request's thread to admit, charge and identify.
    table: Arc<Mutex<UserTable>>,
    /// Admin operations, reloads and the persistence.
    addr: Addr<Users>,
    /// The per-user counters in Redis (`[storage] backend = "redis"`).
    shared: Option<SharedUsers>,
}

impl UsersHandle {
    /// Starts the actor; with Redis, RPM, TPM, concurrency and quotas are
    /// counted there. Must run inside an actix `System`.
    pub fn start(users: Users, redis: Option<&RedisShared>, config: &Config) -> Self {
        UsersHandle {
            table: users.table.clone(),
            addr: users.start(),
            shared: redis.map(|redis| SharedUsers::for_config(redis, config)),
        }
    }

    /// Who holds this key, and may they start this request? Counts and
    /// reserves when they may.
    pub async fn authenticate(
        &self,
        ask: Authenticate<'_>,
    ) -> Result<Result<Admission, AuthRefusal>, GatewayError> {
        match &self.shared {
            Some(shared) => shared.authenticate(&self.table, ask).await,
            None => Ok(lock(&self.table).authenticate(&ask, now_ms())),
        }
    }

    /// A request of an admitted user ended: releases its reservation and
    /// charges it. Never waits: called from the finish step, `Drop`
    /// included.
    pub fn charge(&self, user_id: String, mut reservation: Reservation, used: Used) {
        if let (Some(shared), Some(held)) = (&self.shared, reservation.shared.take()) {
            shared.charge(user_id.clone(), held, &used);
        }
        lock(&self.table).charge(user_id, &reservation, used, now_ms());
    }

    /// Tokens a user spent outside one request/response exchange. Never
    /// waits, like `charge`.
    pub fn charge_tokens(&self, user_id: String, model: Option<String>, used: Used) {
        let shared_limits = {
            let mut table = lock(&self.table);
            let limits = match &self.shared {
                Some(_) => table.shared_limits_of(&user_id, model.as_deref()),
                None => None,
            };
            table.charge_tokens(user_id.clone(), model.as_deref(), used, now_ms());
            limits
        };
        if let (Some(shared), Some(limits)) = (&self.shared, shared_limits) {
            shared.charge_tokens(user_id, limits, &used);
        }
    }

    /// Whose key is this (by digest), without counting a request: for the
    /// gateway's own endpoints (status, models, admin API). `None` for
    /// unknown, disabled or expired.
    pub fn lookup(&self, digest: &[u8; 32]) -> Option<(String, Role)> {
        lock(&self.table).lookup(digest, unix_now())
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
