//! The actors that own the gateway's mutable state. Request handlers never
//! touch that state; they hold typed handles (`*Handle`) that send messages
//! and map mailbox failures once. State asked on every request (an
//! endpoint's windows, an IP's verdict) sits behind a mutex the handle locks
//! for a few operations on the request's own thread, and its actor keeps
//! only the persistence: a message to another thread per request cost more
//! than the work it carried (BENCHMARKS.md, hot spot 3).
//!
//! - [`key_pool`]: upstream keys per endpoint (active / cooling / revoked).
//! - [`rate_limiter`]: RPM and RPD windows per endpoint, persisted by one
//!   actor for all endpoints.
//! - [`blacklist`]: per-IP request windows, error counts and bans, persisted.
//! - [`usage_logger`]: buffers usage records and hands them to disk in batches.

pub mod blacklist;
pub mod key_pool;
pub mod rate_limiter;
pub mod usage_logger;

use std::sync::{Mutex, MutexGuard};

use crate::error::GatewayError;

/// Locks state shared between a handle and its actor. Every critical section
/// is a few field updates that cannot be left half done, so a poisoned lock
/// (a panic elsewhere while holding it) is still safe to use.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The one mapping of "the actor's mailbox is gone" into a gateway error.
pub(crate) fn mailbox_error(actor: &str, e: actix::MailboxError) -> GatewayError {
    GatewayError::Internal(format!("{actor} is unavailable: {e}"))
}
