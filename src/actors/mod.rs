//! The actors that own the gateway's mutable state. Request handlers never
//! touch that state; they hold typed handles (`*Handle`) that send messages
//! and map mailbox failures once.
//!
//! - [`key_pool`]: upstream keys per endpoint (active / cooling / revoked).
//! - [`rate_limiter`]: one per endpoint, RPM and RPD windows, persisted.
//! - [`blacklist`]: per-IP request windows, error counts and bans, persisted.
//! - [`usage_logger`]: buffers usage records and hands them to disk in batches.

pub mod blacklist;
pub mod key_pool;
pub mod rate_limiter;
pub mod usage_logger;

use crate::error::GatewayError;

/// The one mapping of "the actor's mailbox is gone" into a gateway error.
pub(crate) fn mailbox_error(actor: &str, e: actix::MailboxError) -> GatewayError {
    GatewayError::Internal(format!("{actor} is unavailable: {e}"))
}
