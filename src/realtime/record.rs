//! The accounting of one realtime session: a usage record per
//! `response.done`, a summary record when the session ends (or one refusal
//! record if it never opened), the upstream key's outcome, and the session's
//! start and stop in the application log (key ids only, never a key).
//!
//! Like the HTTP pipeline's `Finisher`, it finishes on `Drop` if nobody
//! finished it, so a session torn down by a shutdown still leaves its record.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use actix_web::web;

use super::relay::{Closer, Outcome};
use super::usage::ResponseUsage;
use crate::actors::key_pool::{KeyLease, KeyOutcome};
use crate::actors::usage_logger::{RealtimeDetail, UsageRecord};
use crate::pipeline::finish::CLIENT_CLOSED;
use crate::state::AppState;

/// Status of the summary record of a session that opened.
pub const SWITCHING_PROTOCOLS: u16 = 101;

pub struct SessionLog {
    state: web::Data<AppState>,
    started: Instant,
    handshake: Option<Duration>,
    lease: Option<KeyLease>,
    /// Template every record of the session starts from.
    base: UsageRecord,
    responses: u64,
    finished: bool,
    /// The admitted user, charged per response.
    user: Option<String>,
}

impl SessionLog {
    pub fn new(state: web::Data<AppState>, session_id: &str, ip: IpAddr, path: &str) -> Self {
        SessionLog {
            state,
            started: Instant::now(),
            handshake: None,
            lease: None,
            base: UsageRecord {
                request_id: session_id.to_string(),
                ip: ip.to_string(),
                method: "GET".into(),
                path: path.to_string(),
                stream: true,
                ..UsageRecord::default()
            },
            responses: 0,
            finished: false,
            user: None,
        }
    }

    pub fn session_id(&self) -> &str {
        &self.base.request_id
    }

    pub fn set_client(&mut self, client_id: String) {
        self.base.client = client_id;
    }

    /// Charge this user the tokens of every `response.done`.
    pub fn set_user(&mut self, user_id: String) {
        self.user = Some(user_id);
    }

    pub fn set_model(&mut self, model: &str) {
        self.base.model = Some(model.to_string());
    }

    /// A handshake attempt starts on this endpoint.
    pub fn begin_attempt(&mut self, endpoint_id: &str, upstream_model: &str) {
        self.base.attempts += 1;
        self.base.endpoint = Some(endpoint_id.to_string());
        self.base.upstream_model = Some(upstream_model.to_string());
    }

    /// The upstream accepted: the key stays lent until the session ends.
    pub fn opened(&mut self, lease: Option<KeyLease>) {
        let handshake = self.started.elapsed();
        self.handshake = Some(handshake);
        self.base.key_id = lease.as_ref().map(|l| l.key_id.clone());
        self.base.ttfb_ms = Some(millis(handshake));
        self.lease = lease;
        log::info!(
            "{} realtime session started: client={} model={} endpoint={} key={} attempts={} handshake={}ms",
            self.base.request_id,
            self.base.client,
            self.base.model.as_deref().unwrap_or("-"),
            self.base.endpoint.as_deref().unwrap_or("-"),
            self.base.key_id.as_deref().unwrap_or("-"),
            self.base.attempts,
            millis(handshake),
        );
    }

    /// One `response.done`: its own record, filed as `<session>.<n>`.
    pub fn response(&mut self, usage: ResponseUsage) {
        self.responses += 1;
        let mut record = self.base.clone();
        record.request_id = format!("{}.{}", self.base.request_id, self.responses);
        record.time = now();
        record.status = 200;
        record.latency_ms = millis(self.started.elapsed());
        record.prompt_tokens = usage.tokens.prompt_tokens;
        record.completion_tokens = usage.tokens.completion_tokens;
        record.cached_tokens = usage.tokens.cached_tokens;
        record.realtime = Some(RealtimeDetail::Response {
            session_id: self.base.request_id.clone(),
            response_id: usage.response_id,
            response_status: usage.status,
            input_text_tokens: usage.input_text,
            input_audio_tokens: usage.input_audio,
            input_image_tokens: usage.input_image,
            output_text_tokens: usage.output_text,
            output_audio_tokens: usage.output_audio,
        });
        if let Some(user_id) = &self.user {
            self.state.users.charge_tokens(
                user_id.clone(),
                record.model.clone(),
                crate::users::admission::Used {
                    prompt_tokens: record.prompt_tokens,
                    completion_tokens: record.completion_tokens,
                    cost_usd: 0.0,
                    counted: false,
                },
            );
        }
        self.state.usage.record(record);
    }

    /// The session was refused before it opened.
    pub fn rejected(mut self, status: u16, error: String) {
        self.refuse(status, error);
    }

    fn refuse(&mut self, status: u16, error: String) {
        if self.finished {
            return;
        }
        self.finished = true;
        if let Some(lease) = self.lease.take() {
            self.state.key_pool.report(lease, KeyOutcome::ClientError);
        }
        let mut record = std::mem::take(&mut self.base);
        record.time = now();
        record.status = status;
        record.error = Some(error);
        record.latency_ms = millis(self.started.elapsed());
        log::info!(
            "{} GET {} {} realtime session refused: model={} endpoint={} attempts={}",
            record.request_id,
            record.path,
            record.status,
            record.model.as_deref().unwrap_or("-"),
            record.endpoint.as_deref().unwrap_or("-"),
            record.attempts,
        );
        self.state.usage.record(record);
    }

    /// The session ended: its summary record and the key's outcome.
    pub fn closed(mut self, outcome: Outcome) {
        self.finish(outcome);
    }

    fn finish(&mut self, outcome: Outcome) {
        if self.finished {
            return;
        }
        self.finished = true;
        let duration = self.started.elapsed();
        if let Some(lease) = self.lease.take() {
            let key_outcome = match (outcome.closed_by, &outcome.error) {
                (Closer::Upstream, Some(error)) => KeyOutcome::Failed {
                    reason: error.clone(),
                },
                _ => KeyOutcome::Success {
                    latency: self.handshake.unwrap_or(duration),
                },
            };
            self.state.key_pool.report(lease, key_outcome);
        }
        let mut record = std::mem::take(&mut self.base);
        record.time = now();
        record.status = SWITCHING_PROTOCOLS;
        record.latency_ms = millis(duration);
        record.error = outcome.error.clone();
        let tally = outcome.tally;
        record.realtime = Some(RealtimeDetail::Session {
            duration_ms: millis(duration),
            frames_from_client: tally.from_client.frames,
            frames_to_client: tally.to_client.frames,
            bytes_from_client: tally.from_client.bytes,
            bytes_to_client: tally.to_client.bytes,
            close_code: outcome.close_code,
            closed_by: outcome.closed_by.as_str(),
            responses: self.responses,
        });
        log::info!(
            "{} realtime session ended by {}: code={} error={} {}ms frames in/out={}/{} bytes in/out={}/{} responses={}",
            record.request_id,
            outcome.closed_by.as_str(),
            outcome
                .close_code
                .map_or_else(|| "-".to_string(), |c| c.to_string()),
            outcome.error.as_deref().unwrap_or("-"),
            record.latency_ms,
            tally.from_client.frames,
            tally.to_client.frames,
            tally.from_client.bytes,
            tally.to_client.bytes,
            self.responses,
        );
        self.state.usage.record(record);
    }
}

impl Drop for SessionLog {
    /// Dropped unfinished: before opening, the client left during the
    /// handshake; after, the session was torn down with the gateway.
    fn drop(&mut self) {
        match self.handshake {
            None => self.refuse(CLIENT_CLOSED, "client disconnected".into()),
            Some(_) => self.finish(Outcome::torn_down()),
        }
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
