//! aigate: a self-hosted LLM API gateway.
//!
//! Clients speak the OpenAI or the Anthropic API; aigate holds the real
//! upstream keys, picks an endpoint and a key, enforces limits, relays the
//! reply (streams included) and logs usage.
//!
//! # Layout
//! - [`config`]: the TOML contract, environment overrides, validation into
//!   the runtime [`config::Config`]; secrets that print `*****`.
//! - [`api`]: client-facing wire types: the two dialects, their error
//!   bodies, the few request fields read on the hot path.
//! - [`error`]: the gateway's error family, mapped to HTTP in one place.
//! - [`pipeline`]: one request's way through guard → auth → route → select →
//!   send → finish, with retries and the streaming relay.
//! - [`actors`]: the owners of mutable state: KeyPool, rate limiters (one per
//!   endpoint), Blacklist, UsageLogger. State a request needs is locked on
//!   the request's own thread; the actors persist it.
//! - [`limits`]: sliding-window arithmetic.
//! - [`storage`]: the persistence trait, its sled backend and the one actor
//!   allowed to block on disk.
//! - [`stream`]: SSE framing and the usage taps run over streams.
//! - [`textfmt`]: the request id, IPv4 address and timestamp written for
//!   every request, without `core::fmt`.
//! - [`json`]: JSON read and written by hand on the request path: a
//!   reply's `usage` found without parsing the rest, the usage record's line.
//! - [`pricing`]: model prices (built-in, `[pricing]`, per endpoint) and the
//!   cost of a request.
//! - [`providers`]: upstream kinds (URL layout, auth) and the offline mock.
//! - [`realtime`]: the Realtime API relayed over WebSocket: handshake
//!   failover, the two-way relay, session caps and usage.
//! - [`routes`]: the route table and the gateway's own endpoints.
//! - [`server`]: start from an injected listener, graceful stop, flush.
//! - [`state`]: what handlers share, the config snapshot a reload swaps, and
//!   each worker thread's handle on them.
//! - [`translate`]: wire-format translation through the OpenAI pivot.
//! - [`users`]: client keys as users with roles, limits, quotas, expiry.
//! - [`admin`]: the admin API (users, upstream keys, bans, usage, its
//!   OpenAPI document) and the `aigate users` / `aigate keys` CLI.
//! - [`vault`]: AES-256-GCM sealing of upstream keys stored at runtime.

pub mod actors;
pub mod admin;
pub mod api;
pub mod config;
pub mod error;
pub mod json;
pub mod limits;
pub mod logging;
pub mod pipeline;
pub mod pricing;
pub mod providers;
pub mod realtime;
pub mod routes;
pub mod server;
pub mod state;
pub mod storage;
pub mod stream;
pub mod textfmt;
pub mod translate;
pub mod users;
pub mod vault;

pub use server::Gateway;
