//! UsageLogger: receives one [`UsageRecord`] per request (success, error or
//! client disconnect) and hands them to the DiskWriter in batches, so no disk
//! write ever waits in the request path. A record is serialized on the
//! request's own thread and pushed onto a buffer behind a mutex (no message
//! per request, see `actors`); the actor sends the buffers to disk once a
//! second, a full buffer goes at once. Flushed on shutdown.
//!
//! The buffer is split in [`SHARDS`], and a thread keeps to the shard it
//! was handed first: requests on two cores taking turns on one lock move
//! its cache line between the cores each time (see `state::worker`). Lines
//! of different shards reach the file in batch order, not strictly in time
//! order; the usage query sorts by time.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use serde::Serialize;

use super::lock;
use crate::error::GatewayError;
use crate::json::line::JsonObject;
use crate::storage::usage_log::UsageLine;
use crate::storage::writer::{AppendUsage, DiskWriter};

const FLUSH_EVERY: Duration = Duration::from_secs(1);
const FLUSH_AT: usize = 512;
/// More than the worker threads of most machines; more threads share.
const SHARDS: usize = 8;

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
    /// Shared with the key pool's entry, not copied.
    pub key_id: Option<Arc<str>>,
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

impl UsageRecord {
    /// The record's JSON line: what `serde_json::to_string` writes (tested
    /// below), written field by field, since every request writes one.
    pub fn to_json(&self) -> String {
        if self.realtime.is_some() {
            return serde_json::to_string(self).unwrap_or_default();
        }
        let mut object = JsonObject::with_capacity(512);
        object.str("time", &self.time);
        object.str("request_id", &self.request_id);
        object.str("client", &self.client);
        object.str("ip", &self.ip);
        object.str("method", &self.method);
        object.str("path", &self.path);
        object.opt_str("endpoint", self.endpoint.as_deref());
        object.opt_str("key_id", self.key_id.as_deref());
        object.opt_str("model", self.model.as_deref());
        object.opt_str("upstream_model", self.upstream_model.as_deref());
        object.bool("stream", self.stream);
        object.u64("status", u64::from(self.status));
        object.u64("latency_ms", self.latency_ms);
        object.opt_u64("ttfb_ms", self.ttfb_ms);
        object.u64("attempts", u64::from(self.attempts));
        object.u64("prompt_tokens", self.prompt_tokens);
        object.u64("completion_tokens", self.completion_tokens);
        object.u64("cached_tokens", self.cached_tokens);
        object.f64("cost_usd", self.cost_usd);
        object.opt_str("error", self.error.as_deref());
        object.finish()
    }
}

// ---- actor: the periodic flush ----

pub struct UsageLogger {
    buffer: Arc<Buffer>,
    writer: Addr<DiskWriter>,
}

impl Actor for UsageLogger {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(FLUSH_EVERY, |actor, _| {
            if let Some(batch) = take_batch(&actor.buffer) {
                actor.writer.do_send(batch);
            }
        });
    }
}

/// The lines not yet handed to the DiskWriter, by shard.
struct Buffer([Shard; SHARDS]);

/// One shard, alone on its cache lines.
#[repr(align(128))]
#[derive(Default)]
struct Shard(Mutex<Vec<UsageLine>>);

impl Buffer {
    fn new() -> Self {
        Buffer(std::array::from_fn(|_| Shard::default()))
    }

    /// This thread's shard.
    fn mine(&self) -> &Mutex<Vec<UsageLine>> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        thread_local! {
            static MINE: Cell<Option<usize>> = const { Cell::new(None) };
        }
        let index = MINE.with(|mine| match mine.get() {
            Some(index) => index,
            None => {
                let index = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
                mine.set(Some(index));
                index
            }
        });
        &self.0[index].0
    }
}

/// Everything buffered, as one batch for the DiskWriter.
fn take_batch(buffer: &Buffer) -> Option<AppendUsage> {
    let mut records = Vec::new();
    for shard in &buffer.0 {
        records.append(&mut lock(&shard.0));
    }
    (!records.is_empty()).then_some(AppendUsage { records })
}

// ---- handle ----

#[derive(Clone)]
pub struct UsageLoggerHandle {
    buffer: Arc<Buffer>,
    writer: Addr<DiskWriter>,
    /// Keeps the periodic flush alive while records may come.
    _flusher: Addr<UsageLogger>,
}

impl UsageLoggerHandle {
    /// Starts the periodic flush. Must run inside an actix `System`.
    pub fn start(writer: Addr<DiskWriter>) -> Self {
        let buffer = Arc::new(Buffer::new());
        let flusher = UsageLogger {
            buffer: buffer.clone(),
            writer: writer.clone(),
        }
        .start();
        UsageLoggerHandle {
            buffer,
            writer,
            _flusher: flusher,
        }
    }

    /// Never fails and never waits: callable from `Drop`.
    pub fn record(&self, record: UsageRecord) {
        let line = UsageLine {
            json: record.to_json(),
            time: record.time,
            request_id: record.request_id,
        };
        let full = {
            let mut buffer = lock(self.buffer.mine());
            buffer.push(line);
            (buffer.len() >= FLUSH_AT).then(|| std::mem::take(&mut *buffer))
        };
        if let Some(records) = full {
            self.writer.do_send(AppendUsage { records });
        }
    }

    /// Writes the buffer and waits for the writer, for shutdown, the admin
    /// usage query and tests.
    pub async fn flush(&self) -> Result<(), GatewayError> {
        if let Some(batch) = take_batch(&self.buffer) {
            match self.writer.send(batch).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => log::error!("usage records could not be written: {e}"),
                Err(e) => return Err(super::mailbox_error("DiskWriter", e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_record() -> UsageRecord {
        UsageRecord {
            time: "2026-12-04T15:22:44.123Z".into(),
            request_id: "req_0123456789abcdef01234567".into(),
            client: "u-\"quoted\" \\ name".into(),
            ip: "2001:db8::1".into(),
            method: "POST".into(),
            path: "/v1/chat/completions\n\u{1}".into(),
            endpoint: Some("openai-main".into()),
            key_id: Some("k-…a1b2".into()),
            model: Some("gpt-4o".into()),
            upstream_model: Some("gpt-4o-2024-08-06".into()),
            stream: true,
            status: 499,
            latency_ms: 1234,
            ttfb_ms: Some(56),
            attempts: 2,
            prompt_tokens: 19,
            completion_tokens: 10,
            cached_tokens: 8,
            cost_usd: 0.000_012_3,
            error: Some("client disconnected\t(early)".into()),
            realtime: None,
        }
    }

    #[test]
    fn the_json_line_is_what_serde_writes() {
        for record in [UsageRecord::default(), full_record()] {
            assert_eq!(record.to_json(), serde_json::to_string(&record).unwrap());
        }
        let realtime = UsageRecord {
            realtime: Some(RealtimeDetail::Session {
                duration_ms: 5,
                frames_from_client: 1,
                frames_to_client: 2,
                bytes_from_client: 3,
                bytes_to_client: 4,
                close_code: Some(1000),
                closed_by: "client",
                responses: 1,
            }),
            ..full_record()
        };
        assert_eq!(
            realtime.to_json(),
            serde_json::to_string(&realtime).unwrap()
        );
    }
}
