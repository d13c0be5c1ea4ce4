//! The checks a kind's real service makes before it answers: keys, Azure's
//! `api-version`, `anthropic-version`, Bedrock's SigV4 signature over the
//! request exactly as received, and Vertex's OAuth token endpoint.

use actix_web::HttpResponse;
use serde_json::Value;

use aigate::providers::bedrock::sigv4::{self, AwsCredentials};
use aigate::providers::vertex::jwt;

use super::{header, Seen, Shared};

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

/// The kind's checks; `Ok` names the key that authenticated the request.
pub(crate) fn check(shared: &Shared, seen: &Seen) -> Result<String, (u16, String)> {
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
pub(crate) fn token_endpoint(shared: &Shared, seen: &Seen) -> HttpResponse {
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
