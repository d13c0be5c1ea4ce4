//! A fake upstream on loopback: records every request it gets and answers
//! from a script (JSON, SSE streams with delays, cut-off streams, errors,
//! slow answers). It runs on its own thread and actix system, so it is
//! independent of the test's runtime.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::Value;

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// What the fake answers.
#[derive(Debug, Clone)]
pub enum Reply {
    Json {
        status: u16,
        body: Value,
        headers: Vec<(String, String)>,
    },
    Raw {
        status: u16,
        content_type: String,
        body: Vec<u8>,
    },
    /// SSE: each string is sent as its own chunk after `delay`; with `cut_after`
    /// the connection is dropped after that many chunks.
    Sse {
        chunks: Vec<String>,
        delay: Duration,
        cut_after: Option<usize>,
    },
    /// A JSON body that announces `announced` bytes, sends `sent`, then
    /// drops the connection.
    CutJson { announced: u64, sent: Vec<u8> },
    /// Wait, then answer.
    Slow { delay: Duration, then: Box<Reply> },
}

impl Reply {
    pub fn json(body: Value) -> Reply {
        Reply::Json {
            status: 200,
            body,
            headers: vec![],
        }
    }
    pub fn status(status: u16, body: Value) -> Reply {
        Reply::Json {
            status,
            body,
            headers: vec![],
        }
    }
    pub fn with_header(self, name: &str, value: &str) -> Reply {
        match self {
            Reply::Json {
                status,
                body,
                mut headers,
            } => {
                headers.push((name.into(), value.into()));
                Reply::Json {
                    status,
                    body,
                    headers,
                }
            }
            other => other,
        }
    }
    pub fn sse(chunks: Vec<String>, delay_ms: u64) -> Reply {
        Reply::Sse {
            chunks,
            delay: Duration::from_millis(delay_ms),
            cut_after: None,
        }
    }
}

type Script = Arc<dyn Fn(&Recorded, usize) -> Reply + Send + Sync>;

pub struct FakeUpstream {
    pub url: String,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    /// Streams the fake was still sending when the other side went away.
    pub cancelled_streams: Arc<AtomicUsize>,
    pub finished_streams: Arc<AtomicUsize>,
}

impl FakeUpstream {
    /// Starts a fake whose answer to the n-th request (0-based) is
    /// `script(request, n)`.
    pub fn start(
        script: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static,
    ) -> FakeUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let cancelled = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicUsize::new(0));
        let script: Script = Arc::new(script);
        let state = (
            recorded.clone(),
            script,
            cancelled.clone(),
            finished.clone(),
        );
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(web::Data::new(state.clone()))
                        .default_service(web::to(answer))
                })
                .workers(1)
                .disable_signals()
                .listen(listener)
                .unwrap()
                .run();
                let _ = server.await;
            })
        });
        FakeUpstream {
            url,
            recorded,
            cancelled_streams: cancelled,
            finished_streams: finished,
        }
    }

    /// Answers every request with the same reply.
    pub fn always(reply: Reply) -> FakeUpstream {
        FakeUpstream::start(move |_, _| reply.clone())
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.recorded.lock().unwrap().clone()
    }

    pub fn hits(&self) -> usize {
        self.recorded.lock().unwrap().len()
    }
}

type State = (
    Arc<Mutex<Vec<Recorded>>>,
    Script,
    Arc<AtomicUsize>,
    Arc<AtomicUsize>,
);

async fn answer(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<State>,
) -> HttpResponse {
    let mut body = Vec::new();
    while let Some(Ok(chunk)) = payload.next().await {
        body.extend_from_slice(&chunk);
    }
    let recorded = Recorded {
        method: req.method().to_string(),
        path: req.path().to_string(),
        query: req.query_string().to_string(),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body,
    };
    let (log, script, cancelled, finished) = state.get_ref().clone();
    let n = {
        let mut log = log.lock().unwrap();
        log.push(recorded.clone());
        log.len() - 1
    };
    let reply = script(&recorded, n);
    build(reply, cancelled, finished).await
}

/// Counts a stream as cancelled when dropped before its last chunk.
struct StreamGuard {
    done: bool,
    cancelled: Arc<AtomicUsize>,
    finished: Arc<AtomicUsize>,
}

impl StreamGuard {
    fn complete(&mut self) {
        self.done = true;
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        match self.done {
            true => self.finished.fetch_add(1, Ordering::SeqCst),
            false => self.cancelled.fetch_add(1, Ordering::SeqCst),
        };
    }
}

async fn build(
    reply: Reply,
    cancelled: Arc<AtomicUsize>,
    finished: Arc<AtomicUsize>,
) -> HttpResponse {
    let mut reply = reply;
    while let Reply::Slow { delay, then } = reply {
        actix_web::rt::time::sleep(delay).await;
        reply = *then;
    }
    match reply {
        Reply::Json {
            status,
            body,
            headers,
        } => {
            let mut builder =
                HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap());
            for (k, v) in headers {
                builder.insert_header((k, v));
            }
            builder.json(body)
        }
        Reply::Raw {
            status,
            content_type,
            body,
        } => HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
            .content_type(content_type)
            .body(body),
        Reply::Sse {
            chunks,
            delay,
            cut_after,
        } => {
            let total = chunks.len();
            let guard = StreamGuard {
                done: false,
                cancelled,
                finished,
            };
            let stream = futures_util::stream::unfold(
                (0usize, chunks, guard),
                move |(i, chunks, mut guard)| async move {
                    if cut_after == Some(i) {
                        // Let what was sent leave first, then break the connection.
                        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
                        guard.complete();
                        return Some((
                            Err(actix_web::error::ErrorInternalServerError("cut")),
                            (i + 1, chunks, guard),
                        ));
                    }
                    if i >= total {
                        guard.complete();
                        return None;
                    }
                    if i > 0 && !delay.is_zero() {
                        actix_web::rt::time::sleep(delay).await;
                    }
                    let chunk = Bytes::from(chunks[i].clone());
                    Some((Ok::<Bytes, actix_web::Error>(chunk), (i + 1, chunks, guard)))
                },
            );
            HttpResponse::Ok()
                .content_type("text/event-stream")
                .streaming(stream)
        }
        Reply::CutJson { announced, sent } => {
            let parts: Vec<Result<Bytes, actix_web::Error>> = vec![
                Ok(Bytes::from(sent)),
                Err(actix_web::error::ErrorInternalServerError("cut")),
            ];
            let stream = futures_util::stream::iter(parts).then(|part| async move {
                if part.is_err() {
                    // Let what was sent leave first, then break the connection.
                    actix_web::rt::time::sleep(Duration::from_millis(50)).await;
                }
                part
            });
            HttpResponse::Ok()
                .content_type("application/json")
                .no_chunking(announced)
                .streaming(stream)
        }
        Reply::Slow { .. } => HttpResponse::InternalServerError().finish(),
    }
}
