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

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::Engine as _;
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::Value;

use aigate::providers::bedrock::event_stream::{encode_message, HeaderValue};
use aigate::providers::bedrock::sigv4::{self, AwsCredentials};
use aigate::providers::vertex::{jwt, ServiceAccount};

/// The test-only service-account key every Vertex account of the tests uses.
pub const VERTEX_KEY_FILE: &str = "tests/fixtures/vertex/service_account.json";

/// How a fake authenticates requests, per provider kind.
#[derive(Clone)]
pub enum Auth {
    /// `authorization: Bearer <key>` (OpenAI).
    Bearer(Vec<String>),
    /// A key in a header: `x-api-key` (Anthropic), `api-key` (Azure),
    /// `x-goog-api-key` (Gemini).
    Header {
        name: &'static str,
        keys: Vec<String>,
    },
    /// Google OAuth: `/token` trades a signed JWT of one of these service
    /// accounts for a token; model calls need `Bearer <that token>`.
    Vertex { emails: Vec<String> },
    /// AWS SigV4 over the request as received; credentials in the pool's
    /// `ID:SECRET[:TOKEN]` form.
    SigV4 {
        credentials: Vec<String>,
        region: String,
    },
}

/// Extra checks a kind's real service would make.
#[derive(Clone, Default)]
pub struct Expect {
    /// A query parameter every model request must carry (Azure's
    /// `api-version`).
    pub query: Option<(String, String)>,
    /// A header every model request must carry (`anthropic-version`).
    pub header: Option<String>,
}

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

/// What the fake answers.
#[derive(Debug, Clone)]
pub enum Answer {
    Json {
        status: u16,
        headers: Vec<(String, String)>,
        body: Bytes,
    },
    Stream {
        content_type: String,
        chunks: Vec<Bytes>,
        /// Drop the connection after the last chunk instead of ending cleanly.
        cut: bool,
    },
}

impl Answer {
    /// A reply fixture: `{"status", "headers", "body"}`.
    pub fn from_fixture(fixture: &Value) -> Answer {
        let headers = fixture["headers"]
            .as_object()
            .map(|h| {
                h.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        Answer::Json {
            status: fixture["status"].as_u64().unwrap_or(200) as u16,
            headers,
            body: Bytes::from(serde_json::to_vec(&fixture["body"]).unwrap()),
        }
    }

    /// An SSE body, each event (up to its blank line, LF or CRLF) split in two
    /// network chunks.
    pub fn sse(text: &str, cut: bool) -> Answer {
        let mut chunks = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let end = ["\r\n\r\n", "\n\n"]
                .iter()
                .filter_map(|sep| rest.find(sep).map(|at| at + sep.len()))
                .min()
                .unwrap_or(rest.len());
            let (event, tail) = rest.split_at(end);
            chunks.extend(halves(event.as_bytes()));
            rest = tail;
        }
        Answer::Stream {
            content_type: "text/event-stream".into(),
            chunks,
            cut,
        }
    }

    /// An `application/vnd.amazon.eventstream` body from entries
    /// `{"event": type, "payload": {…}}`, `{"event": "chunk", "bytes": {…}}`
    /// (InvokeModel: the inner JSON goes base64 in `{"bytes", "p"}`) or
    /// `{"exception": type, "payload": {…}}`; each message split in two
    /// network chunks.
    pub fn event_stream(entries: &[Value], cut: bool) -> Answer {
        let mut chunks = Vec::new();
        for entry in entries {
            chunks.extend(halves(&event_stream_message(entry)));
        }
        Answer::Stream {
            content_type: "application/vnd.amazon.eventstream".into(),
            chunks,
            cut,
        }
    }
}

fn halves(bytes: &[u8]) -> Vec<Bytes> {
    let mid = bytes.len() / 2;
    [&bytes[..mid], &bytes[mid..]]
        .into_iter()
        .filter(|half| !half.is_empty())
        .map(Bytes::copy_from_slice)
        .collect()
}

fn event_stream_message(entry: &Value) -> Vec<u8> {
    let string = |s: &str| HeaderValue::String(s.to_string());
    if let Some(exception) = entry["exception"].as_str() {
        let headers = vec![
            (":message-type".to_string(), string("exception")),
            (":exception-type".to_string(), string(exception)),
            (":content-type".to_string(), string("application/json")),
        ];
        return encode_message(&headers, &serde_json::to_vec(&entry["payload"]).unwrap());
    }
    let event = entry["event"].as_str().unwrap();
    let payload = match entry.get("bytes") {
        Some(inner) => serde_json::to_vec(&serde_json::json!({
            "bytes": base64::engine::general_purpose::STANDARD
                .encode(serde_json::to_vec(inner).unwrap()),
            "p": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLM",
        }))
        .unwrap(),
        None => serde_json::to_vec(&entry["payload"]).unwrap(),
    };
    let headers = vec![
        (":event-type".to_string(), string(event)),
        (":content-type".to_string(), string("application/json")),
        (":message-type".to_string(), string("event")),
    ];
    encode_message(&headers, &payload)
}

type Script = Arc<dyn Fn(&Seen, usize) -> Answer + Send + Sync>;

struct Shared {
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

fn test_account() -> ServiceAccount {
    ServiceAccount::from_json(&std::fs::read_to_string(VERTEX_KEY_FILE).unwrap()).unwrap()
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
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

fn status_code(status: u16) -> actix_web::http::StatusCode {
    actix_web::http::StatusCode::from_u16(status).unwrap()
}

/// The kind's checks; `Ok` names the key that authenticated the request.
fn check(shared: &Shared, seen: &Seen) -> Result<String, (u16, String)> {
    if let Some((name, value)) = &shared.expect.query {
        let wanted = format!("{name}={value}");
        if !seen.query.split('&').any(|pair| pair == wanted) {
            return Err((404, format!("query {:?} lacks {wanted}", seen.query)));
        }
    }
    if let Some(name) = &shared.expect.header {
        if seen.header(name).is_none() {
            return Err((400, format!("missing header {name}")));
        }
    }
    match &shared.auth {
        Auth::Bearer(keys) => {
            let given = seen
                .header("authorization")
                .and_then(|v| v.strip_prefix("Bearer "));
            match given {
                Some(key) if keys.iter().any(|k| k == key) => Ok(key.to_string()),
                other => Err((401, format!("bearer key {other:?} is not in the pool"))),
            }
        }
        Auth::Header { name, keys } => match seen.header(name) {
            Some(key) if keys.iter().any(|k| k == key) => Ok(key.to_string()),
            other => Err((401, format!("{name} {other:?} is not in the pool"))),
        },
        Auth::Vertex { .. } => {
            let token = seen
                .header("authorization")
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or_default();
            match shared.tokens.lock().unwrap().get(token) {
                Some(email) => Ok(email.clone()),
                None => Err((401, format!("access token {token:?} was never issued"))),
            }
        }
        Auth::SigV4 {
            credentials,
            region,
        } => {
            let authorization = seen.header("authorization").unwrap_or_default();
            let key_id = authorization
                .split("Credential=")
                .nth(1)
                .and_then(|rest| rest.split('/').next())
                .unwrap_or_default();
            let creds = credentials
                .iter()
                .map(|c| AwsCredentials::parse(c).unwrap())
                .find(|c| c.access_key_id == key_id)
                .ok_or((403, format!("unknown access key id {key_id:?}")))?;
            let path_and_query = match seen.query.is_empty() {
                true => seen.path.clone(),
                false => format!("{}?{}", seen.path, seen.query),
            };
            let valid = sigv4::verify(
                &seen.method,
                &path_and_query,
                &seen.headers,
                &seen.body,
                &creds,
                region,
                "bedrock",
            );
            match valid {
                true => Ok(key_id.to_string()),
                false => Err((
                    403,
                    format!("SigV4 signature does not verify for {path_and_query}"),
                )),
            }
        }
    }
}

/// Google's token endpoint: a form with the JWT-bearer grant and an RS256
/// assertion whose claims name one of the accounts, the cloud-platform scope
/// and this endpoint as audience.
fn token_endpoint(shared: &Shared, seen: &Seen) -> HttpResponse {
    *shared.token_requests.lock().unwrap() += 1;
    let refuse = |why: String| {
        shared.violations.lock().unwrap().push(why.clone());
        HttpResponse::BadRequest()
            .json(serde_json::json!({"error": "invalid_grant", "error_description": why}))
    };
    let form = String::from_utf8_lossy(&seen.body).to_string();
    let field = |name: &str| {
        form.split('&')
            .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
            .unwrap_or_default()
            .to_string()
    };
    if field("grant_type") != "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer" {
        return refuse(format!("bad grant_type in {form:?}"));
    }
    let claims = match jwt::verify_assertion(&field("assertion"), &shared.public_key) {
        Ok(claims) => claims,
        Err(e) => return refuse(format!("assertion refused: {e}")),
    };
    let Auth::Vertex { emails } = &shared.auth else {
        return refuse("not a Vertex fake".into());
    };
    let email = claims["iss"].as_str().unwrap_or_default().to_string();
    let audience_ok = claims["aud"] == Value::String(format!("{}/token", shared.url));
    let scope_ok = claims["scope"] == jwt::CLOUD_PLATFORM_SCOPE;
    let times_ok = claims["exp"].as_u64() > claims["iat"].as_u64();
    if !emails.contains(&email) || !audience_ok || !scope_ok || !times_ok {
        return refuse(format!("claims refused: {claims}"));
    }
    let local = email.split('@').next().unwrap_or_default();
    let token = format!("ya29.matrix-token-{local}");
    shared
        .tokens
        .lock()
        .unwrap()
        .insert(token.clone(), email.clone());
    HttpResponse::Ok().json(serde_json::json!({
        "access_token": token, "expires_in": 3599, "token_type": "Bearer"
    }))
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
