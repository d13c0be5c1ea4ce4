//! What the client's upgrade request tells: its key, as each official client
//! sends it, the model, the beta opt-in, and whether it is an upgrade at all.
//!
//! Server-side clients send `Authorization: Bearer <key>`. Browsers cannot set
//! headers on a WebSocket, so OpenAI's browser convention puts the key in the
//! `Sec-WebSocket-Protocol` list as `openai-insecure-api-key.<key>`, next to
//! `realtime` (the protocol the server answers with) and, for the beta API,
//! `openai-beta.realtime-v1`.

use actix_web::http::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use actix_web::HttpRequest;
use serde::Deserialize;

/// The subprotocol the gateway answers with when the client offers it.
pub const REALTIME_PROTOCOL: &str = "realtime";
/// Prefix of the subprotocol that carries a browser's key.
pub const KEY_PROTOCOL_PREFIX: &str = "openai-insecure-api-key.";
/// The subprotocol a browser uses instead of `OpenAI-Beta: realtime=v1`.
pub const BETA_PROTOCOL: &str = "openai-beta.realtime-v1";
const BETA_HEADER: &str = "openai-beta";

/// The subprotocols the client offered, in its order.
pub fn offered_protocols(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all("sec-websocket-protocol")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
}

/// The headers `auth::authenticate` should see: the request's own, plus the
/// subprotocol key as a bearer token when no `Authorization` was sent.
pub fn auth_headers(headers: &HeaderMap) -> HeaderMap {
    let mut map = headers.clone();
    if map.contains_key(AUTHORIZATION) {
        return map;
    }
    let key = offered_protocols(headers).find_map(|p| p.strip_prefix(KEY_PROTOCOL_PREFIX));
    if let Some(value) = key.and_then(|k| HeaderValue::from_str(&format!("Bearer {k}")).ok()) {
        map.insert(AUTHORIZATION, value);
    }
    map
}

/// The `OpenAI-Beta` value to send upstream: the client's header, or
/// `realtime=v1` when a browser offered the beta subprotocol.
pub fn beta(headers: &HeaderMap) -> Option<String> {
    let header = headers
        .get(BETA_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    header.or_else(|| {
        offered_protocols(headers)
            .any(|p| p == BETA_PROTOCOL)
            .then(|| "realtime=v1".to_string())
    })
}

/// Whether the request asks for a WebSocket (RFC 6455 §4.2.1), checked
/// before any upstream is dialled.
pub fn is_upgrade(req: &HttpRequest) -> bool {
    let headers = req.headers();
    let has_token = |name: &str, token: &str| {
        headers
            .get_all(name)
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    has_token("upgrade", "websocket")
        && has_token("connection", "upgrade")
        && headers.contains_key("sec-websocket-key")
        && headers
            .get("sec-websocket-version")
            .is_some_and(|v| v.as_bytes() == b"13")
}

/// The query string of `/v1/realtime`.
#[derive(Debug, Default, Deserialize)]
pub struct RealtimeQuery {
    pub model: Option<String>,
}

/// The requested model (`?model=`), if any.
pub fn model(query: &str) -> Option<String> {
    actix_web::web::Query::<RealtimeQuery>::from_query(query)
        .ok()
        .and_then(|q| q.into_inner().model)
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty())
}

/// The client's other query parameters, passed on verbatim (`model` is
/// replaced by the upstream's name for it).
pub fn other_params(query: &str) -> String {
    query
        .split('&')
        .filter(|pair| !pair.is_empty() && *pair != "model" && !pair.starts_with("model="))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderName;
    use actix_web::test::TestRequest;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn browser_key_comes_from_the_subprotocol() {
        let map = headers(&[(
            "sec-websocket-protocol",
            "realtime, openai-insecure-api-key.fk-browser, openai-beta.realtime-v1",
        )]);
        let auth = auth_headers(&map);
        assert_eq!(auth.get(AUTHORIZATION).unwrap(), "Bearer fk-browser");
        assert_eq!(beta(&map).as_deref(), Some("realtime=v1"));
    }

    #[test]
    fn authorization_header_wins_and_beta_header_is_kept() {
        let map = headers(&[
            ("authorization", "Bearer fk-server"),
            ("sec-websocket-protocol", "openai-insecure-api-key.other"),
            ("openai-beta", "realtime=v1"),
        ]);
        assert_eq!(
            auth_headers(&map).get(AUTHORIZATION).unwrap(),
            "Bearer fk-server"
        );
        assert_eq!(beta(&map).as_deref(), Some("realtime=v1"));
        assert_eq!(beta(&HeaderMap::new()), None);
    }

    #[test]
    fn model_and_other_params() {
        assert_eq!(
            model("model=gpt-4o-realtime%2Dpreview&x=1").as_deref(),
            Some("gpt-4o-realtime-preview")
        );
        assert_eq!(model("x=1"), None);
        assert_eq!(model("model="), None);
        assert_eq!(other_params("model=a&call_id=c1&x"), "call_id=c1&x");
        assert_eq!(other_params("model=a"), "");
    }

    #[test]
    fn upgrade_needs_every_header() {
        let full = TestRequest::get()
            .insert_header(("upgrade", "WebSocket"))
            .insert_header(("connection", "keep-alive, Upgrade"))
            .insert_header(("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="))
            .insert_header(("sec-websocket-version", "13"))
            .to_http_request();
        assert!(is_upgrade(&full));
        let plain = TestRequest::get().to_http_request();
        assert!(!is_upgrade(&plain));
    }
}
