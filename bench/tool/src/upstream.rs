//! The fake OpenAI-compatible upstream for what nginx cannot fake alone: a
//! fixed delay before the answer (`--delay-ms`, the 60 ms variant) and SSE
//! streams paced one event every `--interval-ms` (the thousand open
//! streams). The answers are the same fixture files nginx serves: a request
//! whose body says `"stream": true` gets the SSE fixture, any other the JSON.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::time::Sleep;

use crate::args::Args;

struct Fixtures {
    json: Bytes,
    /// The stream, one SSE event per entry.
    events: Vec<Bytes>,
    delay: Duration,
    interval: Duration,
}

pub fn run(args: &Args) -> Result<String, String> {
    let listen = args.text("listen")?.to_string();
    let read = |key: &str| {
        let path = args.text(key)?;
        std::fs::read(path).map_err(|e| format!("--{key} {path}: {e}"))
    };
    let fixtures = Arc::new(Fixtures {
        json: Bytes::from(read("json-file")?),
        events: split_events(&read("sse-file")?),
        delay: Duration::from_millis(args.number("delay-ms", Some(0))?),
        interval: Duration::from_millis(args.number("interval-ms", Some(0))?),
    });
    let threads: usize = args.number("threads", Some(1))?;
    let runtime = match threads {
        0 | 1 => tokio::runtime::Builder::new_current_thread(),
        _ => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(threads);
            builder
        }
    }
    .enable_all()
    .build()
    .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(&listen)
            .await
            .map_err(|e| format!("bind {listen}: {e}"))?;
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let fixtures = fixtures.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| answer(req, fixtures.clone()));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

/// Splits an SSE file into its events (each ending in a blank line).
fn split_events(text: &[u8]) -> Vec<Bytes> {
    let mut events = Vec::new();
    let mut start = 0;
    for i in 0..text.len() {
        if text[i..].starts_with(b"\n\n") {
            events.push(Bytes::copy_from_slice(&text[start..i + 2]));
            start = i + 2;
        }
    }
    if start < text.len() {
        events.push(Bytes::copy_from_slice(&text[start..]));
    }
    events
}

async fn answer(
    req: Request<Incoming>,
    fixtures: Arc<Fixtures>,
) -> Result<Response<Paced>, Infallible> {
    let body = match req.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    if !fixtures.delay.is_zero() {
        tokio::time::sleep(fixtures.delay).await;
    }
    let (content_type, chunks) = match asks_stream(&body) {
        true if fixtures.interval.is_zero() => {
            let whole: Vec<u8> = fixtures.events.concat();
            ("text/event-stream", VecDeque::from([Bytes::from(whole)]))
        }
        true => (
            "text/event-stream",
            fixtures.events.iter().cloned().collect(),
        ),
        false => ("application/json", VecDeque::from([fixtures.json.clone()])),
    };
    let paced = Paced {
        chunks,
        interval: fixtures.interval,
        sleep: None,
    };
    let mut response = Response::new(paced);
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert("content-type", value);
    }
    Ok(response)
}

/// `"stream": true` anywhere in the body (the fixture requests are flat).
fn asks_stream(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    compact.contains("\"stream\":true")
}

/// A body sent chunk by chunk, `interval` apart.
struct Paced {
    chunks: VecDeque<Bytes>,
    interval: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Body for Paced {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(sleep) = this.sleep.as_mut() {
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.sleep = None;
        }
        match this.chunks.pop_front() {
            None => Poll::Ready(None),
            Some(chunk) => {
                if !this.chunks.is_empty() && !this.interval.is_zero() {
                    this.sleep = Some(Box::pin(tokio::time::sleep(this.interval)));
                }
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Unpaced bodies have a known length (sent with Content-Length).
    fn size_hint(&self) -> SizeHint {
        match self.interval.is_zero() {
            true => SizeHint::with_exact(self.chunks.iter().map(|c| c.len() as u64).sum()),
            false => SizeHint::default(),
        }
    }
}
