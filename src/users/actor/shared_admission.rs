//! The Users actor's part when Redis holds the per-user counters
//! (`users::shared`): it applies the rules that stay with this process and
//! says which limits Redis must check; it learns afterwards which requests
//! Redis admitted, for the in-flight count and the first/last use.

use actix::prelude::*;

use super::{AuthRefusal, Authenticate, Users};
use crate::limits::now_ms;
use crate::users::admission::{self, Ask};
use crate::users::model::Role;
use crate::users::shared::SharedLimits;

// ---- messages ----

/// [`Authenticate`] without the counters: enabled, expiry, allowed models,
/// distinct IPs and prompt cap only. A user with no shared limits is
/// admitted here; one with limits is admitted once Redis agrees
/// ([`MarkAdmitted`]).
#[derive(Message)]
#[rtype(result = "Result<LocalAdmission, AuthRefusal>")]
pub struct CheckLocalRules(pub Authenticate);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAdmission {
    pub user_id: String,
    pub role: Role,
    /// What Redis must still check; `None`: nothing, admitted.
    pub limits: Option<SharedLimits>,
}

/// Redis admitted a request of this user.
#[derive(Message)]
#[rtype(result = "()")]
pub struct MarkAdmitted(pub String);

/// The shared limits of a user for a model (`None`: no such user, or no
/// limits).
#[derive(Message)]
#[rtype(result = "Option<SharedLimits>")]
pub struct SharedLimitsOf {
    pub user_id: String,
    pub model: Option<String>,
}

// ---- handlers ----

/// Looks the key up by digest and applies the local rules.
impl Handler<CheckLocalRules> for Users {
    type Result = Result<LocalAdmission, AuthRefusal>;
    fn handle(
        &mut self,
        CheckLocalRules(msg): CheckLocalRules,
        _: &mut Self::Context,
    ) -> Self::Result {
        let id = self
            .by_digest
            .get(&msg.digest)
            .cloned()
            .ok_or(AuthRefusal::Unknown)?;
        let state = self.users.get_mut(&id).ok_or(AuthRefusal::Unknown)?;
        let now_ms = now_ms();
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
            now_ms,
        };
        let was_enabled = state.user.enabled;
        let checked = admission::admit_local(state, &ask);
        if was_enabled != state.user.enabled {
            self.dirty.push(id.clone());
        }
        checked.map_err(AuthRefusal::Refused)?;
        let limits = SharedLimits::of(&state.user, ask.model);
        if limits.is_none() {
            admission::mark_admitted(state, now_ms / 1000);
            self.dirty.push(id.clone());
        }
        Ok(LocalAdmission {
            user_id: id,
            role: state.user.role,
            limits,
        })
    }
}

/// Counts the request in flight and notes the use (first use starts a
/// temporary key's clock).
impl Handler<MarkAdmitted> for Users {
    type Result = ();
    fn handle(&mut self, MarkAdmitted(id): MarkAdmitted, _: &mut Self::Context) {
        if let Some(state) = self.users.get_mut(&id) {
            admission::mark_admitted(state, now_ms() / 1000);
            self.dirty.push(id);
        }
    }
}

impl Handler<SharedLimitsOf> for Users {
    type Result = Option<SharedLimits>;
    fn handle(&mut self, msg: SharedLimitsOf, _: &mut Self::Context) -> Self::Result {
        let state = self.users.get(&msg.user_id)?;
        SharedLimits::of(&state.user, msg.model.as_deref())
    }
}
