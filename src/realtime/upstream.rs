//! The upstream side of a session: where each provider kind serves its
//! Realtime API, how it wants the key, and one handshake attempt.
//!
//! - `openai`, `openai_compatible`: `ws(s)://{base}/v1/realtime?model=…`,
//!   `Authorization: Bearer`, `OpenAI-Beta` passed on when the client sent it.
//! - `azure`: `ws(s)://{base}/openai/realtime?api-version=…&deployment=…`,
//!   `api-key` header.
//!
//! `https://` base URLs are dialled as `wss://`, `http://` as `ws://`.

use std::time::Duration;

use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::header::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::config::{EndpointConfig, ProviderKind};
use crate::pipeline::send;
use crate::providers;

/// An open upstream WebSocket.
pub type UpstreamSocket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Bytes of a refused handshake's body kept for the client.
const REFUSAL_BODY_LIMIT: usize = 16 * 1024;

/// Endpoint kinds that serve the Realtime API.
pub fn has_realtime(kind: ProviderKind) -> bool {
    matches!(
        kind,
        ProviderKind::OpenAi | ProviderKind::OpenAiCompatible | ProviderKind::Azure
    )
}

/// What one handshake needs besides the endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Dial<'a> {
    /// The model name the upstream knows (after `model_mapping`).
    pub upstream_model: &'a str,
    /// The client's other query parameters, already encoded.
    pub extra_query: &'a str,
    pub key: Option<&'a str>,
    pub beta: Option<&'a str>,
    /// Largest message accepted from the upstream.
    pub max_message_bytes: usize,
    pub timeout: Duration,
}

/// Why a handshake did not open a socket.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// The upstream answered with an HTTP status instead of 101.
    Status {
        status: u16,
        retry_after: Option<Duration>,
        body: Vec<u8>,
    },
    Timeout,
    /// Connect, TLS or protocol trouble.
    Transport(String),
}

/// The `ws(s)://` URL of the endpoint's Realtime API.
pub fn url(endpoint: &EndpointConfig, upstream_model: &str, extra_query: &str) -> String {
    let mut query = match endpoint.provider {
        ProviderKind::Azure => {
            let deployment = endpoint
                .deployments
                .get(upstream_model)
                .map_or(upstream_model, String::as_str);
            format!(
                "api-version={}&deployment={}",
                encode(&endpoint.api_version),
                encode(deployment)
            )
        }
        _ => format!("model={}", encode(upstream_model)),
    };
    if !extra_query.is_empty() {
        query.push('&');
        query.push_str(extra_query);
    }
    let http = match endpoint.provider {
        ProviderKind::Azure => format!(
            "{}/openai/realtime?{query}",
            endpoint.base_url.trim_end_matches('/')
        ),
        _ => providers::upstream_url(endpoint, "/v1/realtime", &query),
    };
    to_ws_scheme(&http)
}

fn to_ws_scheme(url: &str) -> String {
    if let Some(rest) = url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        url.to_string()
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass).
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(byte))
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// The handshake request: the URL plus the key the way the kind wants it.
pub fn request(endpoint: &EndpointConfig, dial: &Dial<'_>) -> Result<Request, Refusal> {
    let url = url(endpoint, dial.upstream_model, dial.extra_query);
    let mut request = url
        .into_client_request()
        .map_err(|e| Refusal::Transport(format!("bad upstream URL: {e}")))?;
    let mut headers: Vec<(&'static str, String)> = Vec::new();
    if let Some(key) = dial.key {
        headers.push(match endpoint.provider {
            ProviderKind::Azure => ("api-key", key.to_string()),
            _ => ("authorization", format!("Bearer {key}")),
        });
    }
    if let (Some(beta), false) = (dial.beta, endpoint.provider == ProviderKind::Azure) {
        headers.push(("openai-beta", beta.to_string()));
    }
    for (name, value) in headers {
        let value = HeaderValue::from_str(&value)
            .map_err(|_| Refusal::Transport(format!("{name} is not a valid header value")))?;
        request
            .headers_mut()
            .insert(HeaderName::from_static(name), value);
    }
    Ok(request)
}

/// One handshake, within `dial.timeout`.
pub async fn connect(
    endpoint: &EndpointConfig,
    dial: &Dial<'_>,
) -> Result<UpstreamSocket, Refusal> {
    let request = request(endpoint, dial)?;
    let config = WebSocketConfig::default()
        .max_message_size(Some(dial.max_message_bytes))
        .max_frame_size(Some(dial.max_message_bytes));
    let handshake = tokio_tungstenite::connect_async_with_config(request, Some(config), true);
    match tokio::time::timeout(dial.timeout, handshake).await {
        Err(_) => Err(Refusal::Timeout),
        Ok(Ok((socket, _response))) => Ok(socket),
        Ok(Err(WsError::Http(response))) => {
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| awc::http::header::HeaderValue::from_bytes(v.as_bytes()).ok())
                .and_then(|v| {
                    let mut headers = awc::http::header::HeaderMap::new();
                    headers.insert(awc::http::header::RETRY_AFTER, v);
                    send::retry_after(&headers)
                });
            let mut body = response.into_body().unwrap_or_default();
            body.truncate(REFUSAL_BODY_LIMIT);
            Err(Refusal::Status {
                status,
                retry_after,
                body,
            })
        }
        Ok(Err(e)) => Err(Refusal::Transport(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_toml_str;

    fn endpoints() -> Vec<EndpointConfig> {
        from_toml_str(
            r#"
            [[endpoints]]
            id = "oa"
            provider = "openai"
            [[endpoints]]
            id = "local"
            provider = "openai_compatible"
            base_url = "http://127.0.0.1:9/v1"
            [[endpoints]]
            id = "az"
            provider = "azure"
            base_url = "https://res.example.com/"
            api_version = "2024-10-01-preview"
            deployments = { "gpt-4o-realtime-preview" = "rt deploy" }
            "#,
            &Default::default(),
            &Default::default(),
        )
        .unwrap()
        .endpoints
    }

    fn dial<'a>(model: &'a str, key: Option<&'a str>, beta: Option<&'a str>) -> Dial<'a> {
        Dial {
            upstream_model: model,
            extra_query: "",
            key,
            beta,
            max_message_bytes: 1024,
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn urls_per_kind() {
        let e = endpoints();
        assert_eq!(
            url(&e[0], "gpt-realtime", ""),
            "wss://api.openai.com/v1/realtime?model=gpt-realtime"
        );
        assert_eq!(
            url(&e[1], "my model", "call_id=c1"),
            "ws://127.0.0.1:9/v1/realtime?model=my%20model&call_id=c1"
        );
        assert_eq!(
            url(&e[2], "gpt-4o-realtime-preview", ""),
            "wss://res.example.com/openai/realtime?api-version=2024-10-01-preview&deployment=rt%20deploy"
        );
        assert_eq!(
            url(&e[2], "other", ""),
            "wss://res.example.com/openai/realtime?api-version=2024-10-01-preview&deployment=other"
        );
    }

    #[test]
    fn key_and_beta_headers_per_kind() {
        let e = endpoints();
        let openai = request(&e[0], &dial("m", Some("sk-1"), Some("realtime=v1"))).unwrap();
        assert_eq!(openai.headers()["authorization"], "Bearer sk-1");
        assert_eq!(openai.headers()["openai-beta"], "realtime=v1");
        let azure = request(&e[2], &dial("m", Some("az-1"), Some("realtime=v1"))).unwrap();
        assert_eq!(azure.headers()["api-key"], "az-1");
        assert!(azure.headers().get("authorization").is_none());
        let keyless = request(&e[1], &dial("m", None, None)).unwrap();
        assert!(keyless.headers().get("authorization").is_none());
        assert!(keyless.headers().get("openai-beta").is_none());
        assert!(has_realtime(ProviderKind::Azure) && !has_realtime(ProviderKind::Mock));
    }
}
