//! UsageLogger: receives one [`UsageRecord`] per request (success, error or
//! client disconnect) and hands them to the DiskWriter in batches, so no disk
//! write ever waits in the request path. Flushed on shutdown.

use std::time::Duration;

use actix::prelude::*;
use serde::Serialize;

use crate::error::GatewayError;
use crate::storage::usage_batch::UsageLine;
use crate::storage::writer::{AppendUsage, DiskWriter};

const FLUSH_EVERY: Duration = Duration::from_secs(1);
const FLUSH_AT: usize = 512;

/// What the gateway remembers of one request.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct UsageRecord {
    /// RFC 3339, UTC.
    pub time: String,
    pub request_id: String,
    /// A stable, non-reversible id of the client key (or "anonymous",
    /// "passthrough").
    pub client: String,
    pub ip: String,
    pub method: String,
    pub path: String,
    pub endpoint: Option<String>,
    pub key_id: Option<String>,
    pub model: Option<String>,
    pub upstream_model: Option<String>,
    pub stream: bool,
    pub status: u16,
    pub latency_ms: u64,
    pub ttfb_ms: Option<u64>,
    pub attempts: u32,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    /// USD at the upstream model's price on the endpoint (0 when unpriced).
    pub cost_usd: f64,
    pub error: Option<String>,
    /// Realtime (WebSocket) records only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub realtime: Option<RealtimeDetail>,
}

/// What a `/v1/realtime` record adds: one record per `response.done` event
/// (its tokens are also in the record's token fields) and one summary per
/// session, written when it closes (`kind` says which).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RealtimeDetail {
    Response {
        /// The `request_id` of the session's summary record.
        session_id: String,
        response_id: Option<String>,
        /// `completed`, `cancelled`, `failed` or `incomplete`.
        response_status: Option<String>,
        input_text_tokens: u64,
        input_audio_tokens: u64,
        input_image_tokens: u64,
        output_text_tokens: u64,
        output_audio_tokens: u64,
    },
    Session {
        duration_ms: u64,
        frames_from_client: u64,
        frames_to_client: u64,
        bytes_from_client: u64,
        bytes_to_client: u64,
        /// The close code passed on (`None`: the connection just ended).
        close_code: Option<u16>,
        /// `client`, `upstream` or `gateway`.
        closed_by: &'static str,
        /// `response.done` events seen.
        responses: u64,
    },
}

// ---- messages ----

#[derive(Message)]
#[rtype(result = "()")]
pub struct Record(pub UsageRecord);

/// Hand every buffered record to disk and wait until it is written.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Flush;

// ---- actor ----

pub struct UsageLogger {
    buffer: Vec<UsageRecord>,
    writer: Addr<DiskWriter>,
}

impl UsageLogger {
    pub fn new(writer: Addr<DiskWriter>) -> Self {
        UsageLogger {
            buffer: Vec::new(),
            writer,
        }
    }

    fn batch(&mut self) -> Option<AppendUsage> {
        if self.buffer.is_empty() {
            return None;
        }
        let records = std::mem::take(&mut self.buffer)
            .into_iter()
            .map(|r| UsageLine {
                json: serde_json::to_string(&r).unwrap_or_default(),
                time: r.time,
                request_id: r.request_id,
            })
            .collect();
        Some(AppendUsage { records })
    }

    fn flush_soon(&mut self) {
        if let Some(batch) = self.batch() {
            self.writer.do_send(batch);
        }
    }
}

impl Actor for UsageLogger {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(FLUSH_EVERY, |actor, _| actor.flush_soon());
    }
}

/// Buffers the record; a full buffer goes to disk at once.
impl Handler<Record> for UsageLogger {
    type Result = ();
    fn handle(&mut self, Record(record): Record, _: &mut Self::Context) {
        self.buffer.push(record);
        if self.buffer.len() >= FLUSH_AT {
            self.flush_soon();
        }
    }
}

/// Writes the buffer and waits for the writer, for shutdown and tests.
impl Handler<Flush> for UsageLogger {
    type Result = ResponseFuture<()>;
    fn handle(&mut self, _: Flush, _: &mut Self::Context) -> Self::Result {
        let batch = self.batch();
        let writer = self.writer.clone();
        Box::pin(async move {
            if let Some(batch) = batch {
                if let Ok(Err(e)) = writer.send(batch).await {
                    log::error!("usage records could not be written: {e}");
                }
            }
        })
    }
}

// ---- handle ----

#[derive(Clone)]
pub struct UsageLoggerHandle(pub Addr<UsageLogger>);

impl UsageLoggerHandle {
    /// Never fails and never waits: callable from `Drop`.
    pub fn record(&self, record: UsageRecord) {
        self.0.do_send(Record(record));
    }

    pub async fn flush(&self) -> Result<(), GatewayError> {
        self.0
            .send(Flush)
            .await
            .map_err(|e| super::mailbox_error("UsageLogger", e))
    }
}
