//! Vertex access tokens, one per service account, shared by every worker.
//! A token lives an hour; it is reused until a minute before it expires,
//! then one caller refreshes it while the others for that account wait for
//! the result (a per-account async lock) instead of all asking Google.
//! The std mutexes only guard map look-ups and are never held across an
//! await.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use awc::http::header::{ACCEPT, CONTENT_TYPE};
use serde::Deserialize;

use super::{jwt, ServiceAccount, VertexAuthError};

/// A token expiring sooner than this is refreshed before use.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// The token endpoint answers in well under a second; the client's own
/// timeout is sized for long LLM answers instead.
const TOKEN_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;
const MAX_ERROR_MESSAGE_CHARS: usize = 300;
/// `urn:ietf:params:oauth:grant-type:jwt-bearer`, form-encoded.
pub const JWT_BEARER_GRANT: &str = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer";

#[derive(Clone)]
struct CachedToken {
    token: String,
    expires_at: Instant,
}

/// Access tokens by client email. Clones share one cache.
#[derive(Clone, Default)]
pub struct TokenCache {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    tokens: Mutex<HashMap<String, CachedToken>>,
    refresh_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Google's token endpoint answer (RFC 6749 §5.1).
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: Option<u64>,
    token_type: Option<String>,
}

/// An OAuth error (`{"error","error_description"}`) or a Google API error
/// (`{"error":{"message"}}`).
#[derive(Deserialize)]
struct ErrorResponse {
    error: ErrorField,
    error_description: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ErrorField {
    Code(String),
    Detailed { message: String },
}

impl TokenCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// A valid access token for the account: the cached one, or a new one
    /// from the account's token endpoint.
    pub async fn access_token(
        &self,
        client: &awc::Client,
        sa: &ServiceAccount,
    ) -> Result<String, VertexAuthError> {
        if let Some(token) = self.fresh(&sa.client_email) {
            return Ok(token);
        }
        let lock = self.refresh_lock(&sa.client_email);
        let _refreshing = lock.lock().await;
        // Whoever held the lock before us may have refreshed already.
        if let Some(token) = self.fresh(&sa.client_email) {
            return Ok(token);
        }
        let fetched = fetch_token(client, sa).await?;
        let lifetime = Duration::from_secs(fetched.expires_in.unwrap_or(3600));
        lock_map(&self.inner.tokens).insert(
            sa.client_email.clone(),
            CachedToken {
                token: fetched.access_token.clone(),
                expires_at: Instant::now() + lifetime,
            },
        );
        Ok(fetched.access_token)
    }

    /// Forgets the account's token, e.g. after the upstream answered 401, so
    /// the next [`access_token`](Self::access_token) fetches a new one.
    pub fn invalidate(&self, client_email: &str) {
        lock_map(&self.inner.tokens).remove(client_email);
    }

    fn fresh(&self, client_email: &str) -> Option<String> {
        let tokens = lock_map(&self.inner.tokens);
        let cached = tokens.get(client_email)?;
        (cached.expires_at > Instant::now() + REFRESH_MARGIN).then(|| cached.token.clone())
    }

    fn refresh_lock(&self, client_email: &str) -> Arc<tokio::sync::Mutex<()>> {
        lock_map(&self.inner.refresh_locks)
            .entry(client_email.to_string())
            .or_default()
            .clone()
    }
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("accounts", &lock_map(&self.inner.tokens).len())
            .finish()
    }
}

/// A panic elsewhere cannot leave these maps half-written (each operation is
/// one insert or remove), so a poisoned lock is still safe to use.
fn lock_map<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn fetch_token(
    client: &awc::Client,
    sa: &ServiceAccount,
) -> Result<TokenResponse, VertexAuthError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let assertion = jwt::signed_assertion(sa, now)?;
    // The assertion is base64url and dots: nothing to percent-encode.
    let form = format!("grant_type={JWT_BEARER_GRANT}&assertion={assertion}");
    let mut response = client
        .post(&sa.token_uri)
        .timeout(TOKEN_REQUEST_TIMEOUT)
        .insert_header((CONTENT_TYPE, "application/x-www-form-urlencoded"))
        .insert_header((ACCEPT, "application/json"))
        .send_body(form)
        .await
        .map_err(|error| VertexAuthError::Transport(error.to_string()))?;
    let status = response.status();
    let body = response
        .body()
        .limit(MAX_TOKEN_RESPONSE_BYTES)
        .await
        .map_err(|error| VertexAuthError::Transport(error.to_string()))?;
    if !status.is_success() {
        return Err(VertexAuthError::TokenEndpoint {
            status: status.as_u16(),
            message: error_message(&body),
        });
    }
    // serde's message could quote a value from the body; say only what is wrong.
    let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|_| {
        VertexAuthError::BadTokenResponse("expected JSON with a string access_token".into())
    })?;
    if parsed.access_token.is_empty() {
        return Err(VertexAuthError::BadTokenResponse(
            "empty access_token".into(),
        ));
    }
    match parsed.token_type.as_deref() {
        Some(kind) if !kind.eq_ignore_ascii_case("bearer") => Err(
            VertexAuthError::BadTokenResponse(format!("token_type {kind:?} is not Bearer")),
        ),
        _ => Ok(parsed),
    }
}

/// The endpoint's own words for a failure, kept short.
fn error_message(body: &[u8]) -> String {
    let message = match serde_json::from_slice::<ErrorResponse>(body) {
        Ok(ErrorResponse {
            error: ErrorField::Code(code),
            error_description: Some(description),
        }) => format!("{code}: {description}"),
        Ok(ErrorResponse {
            error: ErrorField::Code(code),
            error_description: None,
        }) => code,
        Ok(ErrorResponse {
            error: ErrorField::Detailed { message },
            ..
        }) => message,
        Err(_) => String::from_utf8_lossy(body).trim().to_string(),
    };
    match message.is_empty() {
        true => "(empty body)".to_string(),
        false => message.chars().take(MAX_ERROR_MESSAGE_CHARS).collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};

    use actix_web::http::StatusCode;
    use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
    use serde_json::json;

    use super::*;

    const FIXTURE: &str = include_str!("../../../tests/fixtures/vertex/service_account.json");

    /// A token endpoint that checks each assertion the way Google would
    /// (signature, grant type, claims) and counts the requests.
    struct FakeTokenEndpoint {
        url: String,
        public_key: Vec<u8>,
        calls: AtomicUsize,
        expires_in: AtomicU64,
        /// 0: answer with a token; otherwise answer with this status.
        fail_with: AtomicU16,
        issuers: Mutex<Vec<String>>,
    }

    fn account() -> ServiceAccount {
        ServiceAccount::from_json(FIXTURE).unwrap()
    }

    fn start_fake() -> (Arc<FakeTokenEndpoint>, ServiceAccount) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        let mut sa = account();
        sa.token_uri = url.clone();
        let fake = Arc::new(FakeTokenEndpoint {
            url,
            public_key: jwt::public_key_der(&sa).unwrap(),
            calls: AtomicUsize::new(0),
            expires_in: AtomicU64::new(3599),
            fail_with: AtomicU16::new(0),
            issuers: Mutex::new(Vec::new()),
        });
        let state = fake.clone();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(web::Data::new(state.clone()))
                        .route("/token", web::post().to(token_endpoint))
                })
                .workers(1)
                .disable_signals()
                .listen(listener)
                .unwrap()
                .run();
                let _ = server.await;
            })
        });
        (fake, sa)
    }

    async fn token_endpoint(
        fake: web::Data<Arc<FakeTokenEndpoint>>,
        request: HttpRequest,
        body: String,
    ) -> HttpResponse {
        let n = fake.calls.fetch_add(1, Ordering::SeqCst) + 1;
        // Widen the window in which concurrent callers could race.
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        let fail_with = fake.fail_with.load(Ordering::SeqCst);
        if fail_with != 0 {
            return HttpResponse::build(StatusCode::from_u16(fail_with).unwrap()).json(json!({
                "error": "invalid_grant",
                "error_description": "Invalid JWT Signature."
            }));
        }
        let bad = |why: &str| HttpResponse::BadRequest().body(why.to_string());
        let content_type = request.headers().get(CONTENT_TYPE);
        if content_type.and_then(|v| v.to_str().ok()) != Some("application/x-www-form-urlencoded") {
            return bad("content type");
        }
        let form: HashMap<&str, &str> = body.split('&').filter_map(|p| p.split_once('=')).collect();
        if form.get("grant_type") != Some(&JWT_BEARER_GRANT) {
            return bad("grant_type");
        }
        let Some(assertion) = form.get("assertion") else {
            return bad("no assertion");
        };
        let claims = match jwt::verify_assertion(assertion, &fake.public_key) {
            Ok(claims) => claims,
            Err(error) => return bad(&error.to_string()),
        };
        let (iat, exp) = (
            claims["iat"].as_u64().unwrap(),
            claims["exp"].as_u64().unwrap(),
        );
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        if claims["aud"] != fake.url.as_str()
            || claims["scope"] != jwt::CLOUD_PLATFORM_SCOPE
            || exp != iat + 3600
            || iat.abs_diff(now) > 5
        {
            return bad("claims");
        }
        let issuer = claims["iss"].as_str().unwrap().to_string();
        fake.issuers.lock().unwrap().push(issuer);
        HttpResponse::Ok().json(json!({
            "access_token": format!("ya29.token-{n}"),
            "expires_in": fake.expires_in.load(Ordering::SeqCst),
            "token_type": "Bearer"
        }))
    }

    fn calls(fake: &FakeTokenEndpoint) -> usize {
        fake.calls.load(Ordering::SeqCst)
    }

    #[test]
    fn cache_is_send_sync_and_clone() {
        fn shareable<T: Send + Sync + Clone + 'static>() {}
        shareable::<TokenCache>();
    }

    #[actix_web::test]
    async fn fetches_once_then_uses_the_cache() {
        let (fake, sa) = start_fake();
        let (cache, client) = (TokenCache::new(), awc::Client::default());
        assert_eq!(
            cache.access_token(&client, &sa).await.unwrap(),
            "ya29.token-1"
        );
        assert_eq!(
            cache.clone().access_token(&client, &sa).await.unwrap(),
            "ya29.token-1"
        );
        assert_eq!(calls(&fake), 1);
        assert_eq!(*fake.issuers.lock().unwrap(), vec![sa.client_email.clone()]);
        assert!(!format!("{cache:?}").contains("ya29"));
    }

    #[actix_web::test]
    async fn concurrent_callers_share_one_refresh() {
        let (fake, sa) = start_fake();
        let (cache, client) = (TokenCache::new(), awc::Client::default());
        let call = || cache.access_token(&client, &sa);
        let (a, b, c, d) = tokio::join!(call(), call(), call(), call());
        for token in [a, b, c, d] {
            assert_eq!(token.unwrap(), "ya29.token-1");
        }
        assert_eq!(calls(&fake), 1);
    }

    #[actix_web::test]
    async fn token_expiring_within_a_minute_is_refreshed() {
        let (fake, sa) = start_fake();
        fake.expires_in.store(30, Ordering::SeqCst);
        let (cache, client) = (TokenCache::new(), awc::Client::default());
        assert_eq!(
            cache.access_token(&client, &sa).await.unwrap(),
            "ya29.token-1"
        );
        assert_eq!(
            cache.access_token(&client, &sa).await.unwrap(),
            "ya29.token-2"
        );
        assert_eq!(calls(&fake), 2);
    }

    #[actix_web::test]
    async fn invalidate_forces_a_refresh() {
        let (fake, sa) = start_fake();
        let (cache, client) = (TokenCache::new(), awc::Client::default());
        assert_eq!(
            cache.access_token(&client, &sa).await.unwrap(),
            "ya29.token-1"
        );
        cache.invalidate(&sa.client_email);
        assert_eq!(
            cache.access_token(&client, &sa).await.unwrap(),
            "ya29.token-2"
        );
        assert_eq!(
            cache.access_token(&client, &sa).await.unwrap(),
            "ya29.token-2"
        );
        assert_eq!(calls(&fake), 2);
    }

    #[actix_web::test]
    async fn accounts_are_cached_separately() {
        let (fake, sa) = start_fake();
        let other = ServiceAccount {
            client_email: "other@aigate-test.iam.gserviceaccount.com".into(),
            ..sa.clone()
        };
        let (cache, client) = (TokenCache::new(), awc::Client::default());
        assert_eq!(
            cache.access_token(&client, &sa).await.unwrap(),
            "ya29.token-1"
        );
        assert_eq!(
            cache.access_token(&client, &other).await.unwrap(),
            "ya29.token-2"
        );
        assert_eq!(
            cache.access_token(&client, &sa).await.unwrap(),
            "ya29.token-1"
        );
        assert_eq!(calls(&fake), 2);
        assert_eq!(fake.issuers.lock().unwrap()[1], other.client_email);
    }

    #[actix_web::test]
    async fn endpoint_refusal_is_an_error_without_secrets() {
        let (fake, sa) = start_fake();
        fake.fail_with.store(401, Ordering::SeqCst);
        let (cache, client) = (TokenCache::new(), awc::Client::default());
        let error = cache.access_token(&client, &sa).await.unwrap_err();
        assert!(
            matches!(error, VertexAuthError::TokenEndpoint { status: 401, .. }),
            "{error:?}"
        );
        assert!(!error.is_retryable());
        let shown = format!("{error} {error:?}");
        assert_eq!(
            error.to_string(),
            "token endpoint answered 401: invalid_grant: Invalid JWT Signature."
        );
        let key_body = sa.private_key.lines().nth(1).unwrap();
        for secret in ["PRIVATE KEY", key_body, "eyJ", "ya29"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        // Nothing was cached: once the endpoint recovers, a token comes.
        fake.fail_with.store(0, Ordering::SeqCst);
        assert_eq!(
            cache.access_token(&client, &sa).await.unwrap(),
            "ya29.token-2"
        );
    }

    #[actix_web::test]
    async fn unreachable_endpoint_is_retryable() {
        let sa = account(); // token_uri is http://127.0.0.1:1/token
        let error = TokenCache::new()
            .access_token(&awc::Client::default(), &sa)
            .await
            .unwrap_err();
        assert!(matches!(error, VertexAuthError::Transport(_)), "{error:?}");
        assert!(error.is_retryable());
    }

    #[test]
    fn error_messages_from_bodies() {
        assert_eq!(
            error_message(br#"{"error":{"code":403,"message":"Permission denied","status":"PERMISSION_DENIED"}}"#),
            "Permission denied"
        );
        assert_eq!(
            error_message(br#"{"error":"invalid_scope"}"#),
            "invalid_scope"
        );
        assert_eq!(error_message(b"  upstream down \n"), "upstream down");
        assert_eq!(error_message(b""), "(empty body)");
        assert_eq!(error_message(&[b'x'; 1000]).len(), MAX_ERROR_MESSAGE_CHARS);
    }
}
