//! Per-user caps on concurrent realtime sessions.
//!
//! A session holds a [`SessionSlot`] from before the upstream is dialled
//! until it ends; dropping the slot frees it, whichever way the session ends.
//! Counts must be shared by every worker of one gateway and kept apart
//! between gateways in one process (the tests run many), so they are filed
//! under the address of the gateway's `AppState`: each slot keeps that state
//! alive, so the address cannot be reused while anything is counted under it.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, OnceLock};

use actix_web::web;

use crate::state::AppState;

type Counts = HashMap<(usize, String), u32>;

fn counts() -> MutexGuard<'static, Counts> {
    static COUNTS: OnceLock<Mutex<Counts>> = OnceLock::new();
    // Counters stay consistent even if a holder panicked: take them anyway.
    COUNTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn gateway_id(state: &web::Data<AppState>) -> usize {
    std::sync::Arc::as_ptr(&state.clone().into_inner()) as usize
}

/// One counted session of one user; frees its place when dropped.
pub struct SessionSlot {
    key: (usize, String),
    _state: web::Data<AppState>,
}

/// Counts a new session for `user`, unless that user already has `cap`
/// (`None`: no cap).
pub fn claim(state: &web::Data<AppState>, user: &str, cap: Option<u32>) -> Option<SessionSlot> {
    let key = (gateway_id(state), user.to_string());
    let mut counts = counts();
    let open = counts.entry(key.clone()).or_insert(0);
    if cap.is_some_and(|cap| *open >= cap) {
        return None;
    }
    *open += 1;
    Some(SessionSlot {
        key,
        _state: state.clone(),
    })
}

/// Sessions `user` has open on this gateway.
pub fn open_sessions(state: &web::Data<AppState>, user: &str) -> u32 {
    let key = (gateway_id(state), user.to_string());
    counts().get(&key).copied().unwrap_or(0)
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        let mut counts = counts();
        if let Some(open) = counts.get_mut(&self.key) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                counts.remove(&self.key);
            }
        }
    }
}
