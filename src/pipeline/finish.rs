//! Step 6, finish: the one step that always runs. A [`Finisher`] is created
//! when a request arrives and travels with it; whichever way the request
//! ends (answered, refused, upstream broke, client hung up — `Drop`), it
//! reports the key's outcome (and what the request cost) to the KeyPool and
//! one record, cost included, to the UsageLogger.
//! Both are fire-and-forget messages, so accounting never waits and is never
//! lost with the client's connection.

use std::net::IpAddr;
use std::time::Instant;

use actix_web::web;

use crate::actors::key_pool::{KeyLease, KeyOutcome};
use crate::actors::usage_logger::UsageRecord;
use crate::state::{LiveRef, Worker};
use crate::stream::usage::TokenUsage;
use crate::textfmt;
use crate::users::admission::{Reservation, Used};

/// Status recorded when the client left before the reply was complete
/// (nginx's convention).
pub const CLIENT_CLOSED: u16 = 499;

/// How the request ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// The reply (upstream's or ours) was delivered whole.
    Delivered { status: u16 },
    /// The gateway refused or failed the request before any upstream reply.
    Rejected { status: u16, error: String },
    /// The upstream broke off after the reply had started.
    UpstreamBroke { status: u16, error: String },
    /// The client went away before the end.
    ClientLeft,
}

pub struct Finisher {
    /// The request's worker: the shared state, reached without counting.
    worker: web::Data<Worker>,
    /// The config snapshot the request runs on (endpoint indexes are its).
    live: LiveRef,
    started: Instant,
    first_byte: Option<Instant>,
    endpoint: Option<usize>,
    lease: Option<KeyLease>,
    usage: Option<TokenUsage>,
    /// The admitted user and the tokens reserved for this request.
    user: Option<(String, Reservation)>,
    record: UsageRecord,
    finished: bool,
}

impl Finisher {
    pub fn new(
        worker: web::Data<Worker>,
        live: LiveRef,
        request_id: String,
        ip: IpAddr,
        method: &str,
        path: &str,
    ) -> Self {
        Finisher {
            worker,
            live,
            started: Instant::now(),
            first_byte: None,
            endpoint: None,
            lease: None,
            usage: None,
            user: None,
            record: UsageRecord {
                request_id,
                ip: textfmt::ip(ip),
                method: method.to_string(),
                path: path.to_string(),
                ..UsageRecord::default()
            },
            finished: false,
        }
    }

    pub fn set_client(&mut self, client_id: String) {
        self.record.client = client_id;
    }

    pub fn set_user(&mut self, user_id: String, reservation: Reservation) {
        self.user = Some((user_id, reservation));
    }

    pub fn set_request(&mut self, model: Option<&str>, stream: bool) {
        self.record.model = model.map(str::to_string);
        self.record.stream = stream;
    }

    /// A new attempt starts on `endpoint`, with `lease` if a pooled key is used.
    pub fn begin_attempt(
        &mut self,
        endpoint: usize,
        endpoint_id: &str,
        upstream_model: Option<&str>,
    ) {
        self.record.attempts += 1;
        self.endpoint = Some(endpoint);
        self.record.endpoint = Some(endpoint_id.to_string());
        self.record.upstream_model = upstream_model.map(str::to_string);
    }

    /// The attempt that will answer the client keeps its key until the end.
    pub fn keep_lease(&mut self, lease: Option<KeyLease>) {
        self.record.key_id = lease.as_ref().map(|l| l.key_id.clone());
        self.lease = lease;
    }

    pub fn mark_first_byte(&mut self) {
        if self.first_byte.is_none() {
            self.first_byte = Some(Instant::now());
        }
    }

    pub fn set_usage(&mut self, usage: Option<TokenUsage>) {
        if usage.is_some() {
            self.usage = usage;
        }
    }

    pub fn request_id(&self) -> &str {
        &self.record.request_id
    }

    /// Ends the request: reports the key's outcome and logs the record.
    pub fn finish(mut self, ending: Ending) {
        self.complete(ending);
    }

    fn complete(&mut self, ending: Ending) {
        if self.finished {
            return;
        }
        self.finished = true;
        let ttfb = self.first_byte.map(|t| t.duration_since(self.started));
        let (status, error, key_outcome) = match ending {
            Ending::Delivered { status } => (
                status,
                None,
                match status < 400 {
                    true => KeyOutcome::Success {
                        latency: ttfb.unwrap_or_else(|| self.started.elapsed()),
                    },
                    false => KeyOutcome::ClientError,
                },
            ),
            Ending::Rejected { status, error } => (status, Some(error), KeyOutcome::ClientError),
            Ending::UpstreamBroke { status, error } => (
                status,
                Some(error.clone()),
                KeyOutcome::Failed { reason: error },
            ),
            Ending::ClientLeft => (
                CLIENT_CLOSED,
                Some("client disconnected".into()),
                KeyOutcome::ClientError,
            ),
        };
        if let (Some(endpoint), Some(ttfb), true) = (self.endpoint, ttfb, status < 400) {
            self.live.observe_latency(endpoint, ttfb);
        }
        let usage = self.usage.unwrap_or_default();
        let cost_usd = self.cost(&usage);
        if let Some(lease) = self.lease.take() {
            if cost_usd > 0.0 {
                let pool = &self.worker.state().key_pool;
                pool.spend_lease(&lease, cost_usd);
            }
            self.worker.state().key_pool.report(lease, key_outcome);
        }
        if let Some((user_id, reservation)) = self.user.take() {
            self.worker.state().users.charge(
                user_id,
                reservation,
                Used {
                    prompt_tokens: usage.prompt_tokens,
                    completion_tokens: usage.completion_tokens,
                    cost_usd,
                    counted: self.record.attempts > 0,
                },
            );
        }
        let mut record = std::mem::take(&mut self.record);
        record.time = textfmt::rfc3339_millis(std::time::SystemTime::now());
        record.status = status;
        record.error = error;
        record.latency_ms = self.started.elapsed().as_millis() as u64;
        record.ttfb_ms = ttfb.map(|d| d.as_millis() as u64);
        record.prompt_tokens = usage.prompt_tokens;
        record.completion_tokens = usage.completion_tokens;
        record.cached_tokens = usage.cached_tokens;
        record.cost_usd = cost_usd;
        log::info!(
            "{} {} {} {} model={} endpoint={} key={} attempts={} {}ms tokens={}+{}",
            record.request_id,
            record.method,
            record.path,
            record.status,
            record.model.as_deref().unwrap_or("-"),
            record.endpoint.as_deref().unwrap_or("-"),
            record.key_id.as_deref().unwrap_or("-"),
            record.attempts,
            record.latency_ms,
            record.prompt_tokens,
            record.completion_tokens,
        );
        self.worker.state().usage.record(record);
    }
}

impl Finisher {
    /// USD for `usage` at the price of the upstream model on the endpoint of
    /// the last attempt; 0 without an attempt, a model or a known price.
    fn cost(&self, usage: &TokenUsage) -> f64 {
        match (self.endpoint, self.record.upstream_model.as_deref()) {
            (Some(endpoint), Some(model)) => self
                .live
                .price(endpoint, model)
                .map_or(0.0, |price| price.cost(usage)),
            _ => 0.0,
        }
    }
}

impl Drop for Finisher {
    /// A request dropped unfinished is a client that went away.
    fn drop(&mut self) {
        self.complete(Ending::ClientLeft);
    }
}
