//! AWS Signature Version 4 for Bedrock requests, and its check for the test
//! suite's fake Bedrock upstream.
//!
//! The cryptography and canonicalisation are the maintained `aws-sigv4`
//! crate's; this module only adapts our credentials and plain
//! `(name, value)` headers to it. Bedrock model ids hold ':' and travel
//! percent-encoded (`%3A`); as for every non-S3 service the canonical URI is
//! that path encoded once more (`%253A`), which the crate's default
//! `PercentEncodingMode::Double` does.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign as sign_request, SignableBody, SignableRequest, SigningSettings,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

/// The only algorithm SigV4 (not SigV4a) signs with.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Why a request could not be signed, or credentials not parsed.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("AWS credentials must be ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN] ({0})")]
    BadCredentials(&'static str),
    #[error("request URL {0:?} has no scheme and host, and no host header was given")]
    NoHost(String),
    #[error("signing parameters rejected: {0}")]
    Params(#[from] v4::signing_params::BuildError),
    #[error("request could not be signed: {0}")]
    Sign(#[from] aws_sigv4::http_request::SigningError),
}

/// The secret half of an AWS key pair; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretAccessKey(String);

impl SecretAccessKey {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for signing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretAccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("*****")
    }
}

impl fmt::Display for SecretAccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("*****")
    }
}

/// One AWS identity from a key pool entry.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: SecretAccessKey,
    pub session_token: Option<String>,
}

impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The session token is a bearer credential too: hide it as well.
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key)
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "*****"),
            )
            .finish()
    }
}

impl AwsCredentials {
    /// Parses the pool form `ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]`.
    /// Only the first two ':' split, so a token may itself hold ':'.
    pub fn parse(joined: &str) -> Result<Self, SigningError> {
        let mut parts = joined.trim().splitn(3, ':');
        let id = parts.next().unwrap_or_default().trim();
        let secret = parts
            .next()
            .ok_or(SigningError::BadCredentials(
                "no ':' after the access key id",
            ))?
            .trim();
        let token = parts.next().map(str::trim);
        if id.is_empty() {
            return Err(SigningError::BadCredentials("empty access key id"));
        }
        if secret.is_empty() {
            return Err(SigningError::BadCredentials("empty secret access key"));
        }
        if token.is_some_and(str::is_empty) {
            return Err(SigningError::BadCredentials("empty session token"));
        }
        Ok(Self {
            access_key_id: id.to_owned(),
            secret_access_key: SecretAccessKey::new(secret),
            session_token: token.map(str::to_owned),
        })
    }

    fn identity(&self, with_token: bool) -> Identity {
        let token = self.session_token.clone().filter(|_| with_token);
        Credentials::new(
            &self.access_key_id,
            self.secret_access_key.expose(),
            token,
            None,
            "aigate",
        )
        .into()
    }
}

/// The parts of a request that SigV4 covers.
#[derive(Debug, Clone, Copy)]
pub struct SignableParts<'a> {
    pub method: &'a str,
    /// The full URL as it will be sent, path already percent-encoded.
    pub url: &'a str,
    /// Headers that will be sent (e.g. host, content-type, accept).
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// Signs a request; returns the headers to add (`authorization`,
/// `x-amz-date`, and `x-amz-security-token` when there is a session token).
pub fn sign(
    req: &SignableParts<'_>,
    creds: &AwsCredentials,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Result<Vec<(String, String)>, SigningError> {
    // The crate panics on a URL with no authority unless a host header is
    // given: refuse such a request here instead.
    let has_host_header = req
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("host"));
    if !has_host_header && !has_authority(req.url) {
        return Err(SigningError::NoHost(req.url.to_owned()));
    }
    let identity = creds.identity(true);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()?
        .into();
    let headers = req.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()));
    let signable =
        SignableRequest::new(req.method, req.url, headers, SignableBody::Bytes(req.body))?;
    let (instructions, _signature) = sign_request(signable, &params)?.into_parts();
    let (added, _params) = instructions.into_parts();
    Ok(added
        .into_iter()
        .map(|h| (h.name().to_owned(), h.value().to_owned()))
        .collect())
}

fn has_authority(url: &str) -> bool {
    url.split_once("://").is_some_and(|(scheme, rest)| {
        !scheme.is_empty() && !rest.starts_with('/') && !rest.is_empty()
    })
}

/// The fields of a received `Authorization: AWS4-HMAC-SHA256 ...` header.
struct ReceivedAuthorization<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Option<ReceivedAuthorization<'_>> {
    let rest = value.trim().strip_prefix(ALGORITHM)?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for field in rest.split(',') {
        match field.trim().split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => return None,
        }
    }
    let scope: Vec<&str> = credential?.split('/').collect();
    let [access_key_id, date, region, service, "aws4_request"] = scope[..] else {
        return None;
    };
    Some(ReceivedAuthorization {
        access_key_id,
        date,
        region,
        service,
        signed_headers: signed?.split(';').collect(),
        signature: signature?,
    })
}

/// `20150830T123600Z` as a time.
fn parse_amz_date(value: &str) -> Option<SystemTime> {
    let parsed = chrono::NaiveDateTime::parse_from_str(value, "%Y%m%dT%H%M%SZ").ok()?;
    let secs = u64::try_from(parsed.and_utc().timestamp()).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Checks a received request's SigV4 signature, as the fake Bedrock upstream
/// of the tests does: the signature is recomputed over exactly the headers
/// the `authorization` header says were signed, as received. The path must be
/// the raw one from the request line (still percent-encoded). The payload
/// hash is always the body's SHA-256 (no `UNSIGNED-PAYLOAD`), and no
/// clock-skew check is made.
pub fn verify(
    method: &str,
    path_and_query: &str,
    headers: &[(String, String)],
    body: &[u8],
    creds: &AwsCredentials,
    region: &str,
    service: &str,
) -> bool {
    let Some(auth) = header(headers, "authorization").and_then(parse_authorization) else {
        return false;
    };
    let Some(amz_date) = header(headers, "x-amz-date") else {
        return false;
    };
    let scope_ok = auth.access_key_id == creds.access_key_id
        && amz_date.get(..8) == Some(auth.date)
        && auth.region == region
        && auth.service == service;
    let token_ok = header(headers, "x-amz-security-token") == creds.session_token.as_deref();
    let Some(time) = parse_amz_date(amz_date) else {
        return false;
    };
    if !scope_ok || !token_ok || !path_and_query.starts_with('/') {
        return false;
    }
    // Every signed header must have been received; x-amz-date is added back
    // by the signer from `time`.
    let mut signed: Vec<(&str, &str)> = Vec::new();
    for name in &auth.signed_headers {
        let received: Vec<&(String, String)> = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .collect();
        if received.is_empty() {
            return false;
        }
        if *name != "x-amz-date" {
            signed.extend(received.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        }
    }
    recompute(
        method,
        path_and_query,
        signed,
        body,
        creds,
        region,
        service,
        time,
    )
    .is_some_and(|expected| {
        crate::config::constant_time_eq(expected.as_bytes(), auth.signature.as_bytes())
    })
}

#[allow(clippy::too_many_arguments)]
fn recompute(
    method: &str,
    path_and_query: &str,
    signed: Vec<(&str, &str)>,
    body: &[u8],
    creds: &AwsCredentials,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Option<String> {
    // The received token, if signed, is among `signed`: keep the identity
    // token-free so the signer does not add it a second time.
    let identity = creds.identity(false);
    let mut settings = SigningSettings::default();
    // Sign what the client signed, user-agent included if it chose to.
    settings.excluded_headers = None;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .ok()?
        .into();
    // The authority is never used: the received host header is signed.
    let url = format!("http://verify.invalid{path_and_query}");
    let signable =
        SignableRequest::new(method, url, signed.into_iter(), SignableBody::Bytes(body)).ok()?;
    let output = sign_request(signable, &params).ok()?;
    Some(output.signature().to_owned())
}

#[cfg(test)]
#[path = "sigv4_tests.rs"]
mod tests;
