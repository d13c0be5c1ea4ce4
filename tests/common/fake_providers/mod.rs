//! Fake upstreams that speak each provider kind's wire and check what they
//! receive the way the real service would: bearer and header keys, Azure's
//! `api-version`, Bedrock's SigV4 signature (recomputed over the raw path and
//! headers as received), and Vertex's OAuth dance (a token endpoint that
//! verifies the RS256 assertion with the test key's public half and hands out
//! tokens the model endpoint then requires). A request that fails a check is
//! answered 401/403 and the reason is kept in [`FakeProvider::violations`],
//! so a test can fail with the exact cause instead of a confusing diff.
//!
//! Answers are scripted per request; streams go out in small network chunks
//! (every event split in two) so decoders meet events cut across reads.
//!
//! - [`answer`]: scripted answers and their wire encodings (SSE, AWS
//!   event-stream).
//! - [`checks`]: what each kind's real service would check.

mod answer;
mod checks;

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::Value;

use aigate::providers::vertex::{jwt, ServiceAccount};

pub use answer::Answer;
use checks::{check, token_endpoint};
pub use checks::{Auth, Expect};

/// The test-only service-account key every Vertex account of the tests uses.
pub const VERTEX_KEY_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/vertex/service_account.json"
);

/// One model request as the fake received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// The raw path from the request line (still percent-encoded).
    pub path: String,
    pub query: String,
    /// In arrival order, names lower-case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Which pooled key (or account, or access key id) authenticated it.
    pub key: String,
}

impl Seen {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

type Script = Arc<dyn Fn(&Seen, usize) -> Answer + Send + Sync>;

pub(crate) struct Shared {
    url: String,
    auth: Auth,
    expect: Expect,
    script: Script,
    seen: Mutex<Vec<Seen>>,
    violations: Mutex<Vec<String>>,
    /// Vertex: issued token → account email.
    tokens: Mutex<HashMap<String, String>>,
    token_requests: Mutex<usize>,
    /// Vertex: the test key's public half.
    public_key: Vec<u8>,
}

pub struct FakeProvider {
    pub url: String,
    shared: Arc<Shared>,
}

impl FakeProvider {
    /// Starts a fake whose answer to the n-th model request (0-based, counted
    /// only among requests that passed the checks) is `script(request, n)`.
    pub fn start(
        auth: Auth,
        expect: Expect,
        script: impl Fn(&Seen, usize) -> Answer + Send + Sync + 'static,
    ) -> FakeProvider {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let public_key = match auth {
            Auth::Vertex { .. } => jwt::public_key_der(&test_account()).unwrap(),
            _ => Vec::new(),
        };
        let shared = Arc::new(Shared {
            url: url.clone(),
            auth,
            expect,
            script: Arc::new(script),
            seen: Mutex::new(Vec::new()),
            violations: Mutex::new(Vec::new()),
            tokens: Mutex::new(HashMap::new()),
            token_requests: Mutex::new(0),
            public_key,
        });
        let state = shared.clone();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(web::Data::from(state.clone()))
                        .default_service(web::to(handle))
                })
                .workers(1)
                .disable_signals()
                .listen(listener)
                .unwrap()
                .run();
                let _ = server.await;
            })
        });
        FakeProvider { url, shared }
    }

    /// Model requests that passed the checks, in arrival order.
    pub fn requests(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// Every check that failed (empty when the gateway behaved).
    pub fn violations(&self) -> Vec<String> {
        self.shared.violations.lock().unwrap().clone()
    }

    pub fn token_requests(&self) -> usize {
        *self.shared.token_requests.lock().unwrap()
    }

    /// A service-account key file for `email` whose `token_uri` is this
    /// fake's token endpoint.
    pub fn service_account_json(&self, email: &str) -> String {
        let mut key: Value =
            serde_json::from_str(&std::fs::read_to_string(VERTEX_KEY_FILE).unwrap()).unwrap();
        key["client_email"] = Value::String(email.to_string());
        key["token_uri"] = Value::String(format!("{}/token", self.url));
        key.to_string()
    }
}

pub(crate) fn test_account() -> ServiceAccount {
    ServiceAccount::from_json(&std::fs::read_to_string(VERTEX_KEY_FILE).unwrap()).unwrap()
}

pub(crate) fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

async fn handle(
    req: HttpRequest,
    mut payload: web::Payload,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let mut body = Vec::new();
    while let Some(Ok(chunk)) = payload.next().await {
        body.extend_from_slice(&chunk);
    }
    let mut seen = Seen {
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        query: req.uri().query().unwrap_or("").to_string(),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body,
        key: String::new(),
    };
    if matches!(shared.auth, Auth::Vertex { .. }) && seen.path == "/token" {
        return token_endpoint(&shared, &seen);
    }
    match check(&shared, &seen) {
        Ok(key) => seen.key = key,
        Err((status, why)) => {
            shared.violations.lock().unwrap().push(why.clone());
            return HttpResponse::build(status_code(status))
                .json(serde_json::json!({"error": {"message": format!("fake upstream: {why}")}}));
        }
    }
    let n = {
        let mut log = shared.seen.lock().unwrap();
        log.push(seen.clone());
        log.len() - 1
    };
    respond((shared.script)(&seen, n))
}

pub(crate) fn status_code(status: u16) -> actix_web::http::StatusCode {
    actix_web::http::StatusCode::from_u16(status).unwrap()
}

fn respond(answer: Answer) -> HttpResponse {
    match answer {
        Answer::Json {
            status,
            headers,
            body,
        } => {
            let mut builder = HttpResponse::build(status_code(status));
            for (name, value) in headers {
                builder.insert_header((name, value));
            }
            builder.content_type("application/json").body(body)
        }
        Answer::Stream {
            content_type,
            chunks,
            cut,
        } => {
            let mut items: Vec<Result<Bytes, actix_web::Error>> =
                chunks.into_iter().map(Ok).collect();
            if cut {
                items.push(Err(actix_web::error::ErrorInternalServerError("cut")));
            }
            let stream = futures_util::stream::iter(items).then(|item| async move {
                // Let each chunk leave on its own before the next (and before
                // a cut), as a real upstream's pacing would.
                actix_web::rt::time::sleep(std::time::Duration::from_millis(1)).await;
                item
            });
            HttpResponse::Ok()
                .content_type(content_type)
                .streaming(stream)
        }
    }
}
