//! The table's part when Redis holds the per-user counters
//! (`users::shared`): it applies the rules that stay with this process and
//! says which limits Redis must check; it learns afterwards which requests
//! Redis admitted, for the in-flight count and the first/last use. The
//! handle locks the table for each step and asks Redis between them, never
//! holding the lock across the wait.

use super::{AuthRefusal, Authenticate, UserTable};
use crate::users::admission;
use crate::users::model::Role;
use crate::users::shared::SharedLimits;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAdmission {
    pub user_id: String,
    pub role: Role,
    /// What Redis must still check; `None`: nothing, admitted.
    pub limits: Option<SharedLimits>,
}

impl UserTable {
    /// [`UserTable::authenticate`] without the counters: enabled, expiry,
    /// allowed models, distinct IPs and prompt cap only. A user with no
    /// shared limits is admitted here; one with limits is admitted once
    /// Redis agrees ([`UserTable::mark_admitted`]).
    pub fn check_local_rules(
        &mut self,
        msg: &Authenticate<'_>,
        now_ms: u64,
    ) -> Result<LocalAdmission, AuthRefusal> {
        let (state, ask, dirty) = self.find(msg, now_ms)?;
        let was_enabled = state.user.enabled;
        if let Err(refusal) = admission::admit_local(state, &ask) {
            // Seen from too many IPs: the user was just disabled.
            if state.user.enabled != was_enabled {
                dirty.add(&state.user.id);
            }
            return Err(AuthRefusal::Refused(refusal));
        }
        let limits = SharedLimits::of(&state.user, ask.model);
        let role = state.user.role;
        if limits.is_none() {
            admission::mark_admitted(state, now_ms / 1000);
            dirty.add(&state.user.id);
        }
        Ok(LocalAdmission {
            user_id: state.user.id.clone(),
            role,
            limits,
        })
    }

    /// Redis admitted a request of this user: one more in flight, and the
    /// use noted (first use starts a temporary key's clock).
    pub fn mark_admitted(&mut self, user_id: String, now: u64) {
        if let Some(state) = self.users.get_mut(&user_id) {
            admission::mark_admitted(state, now);
            self.dirty.add(&user_id);
        }
    }

    /// The shared limits of a user for a model (`None`: no such user, or no
    /// limits).
    pub fn shared_limits_of(&self, user_id: &str, model: Option<&str>) -> Option<SharedLimits> {
        let state = self.users.get(user_id)?;
        SharedLimits::of(&state.user, model)
    }
}
