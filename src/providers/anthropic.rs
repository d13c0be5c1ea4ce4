//! Anthropic upstreams: the key goes in `x-api-key`; `anthropic-version` is
//! the client's if it sent one, else the endpoint's; `anthropic-beta` is
//! forwarded as the client sent it (it travels with the other headers).

use actix_web::http::header::HeaderMap;

use crate::config::EndpointConfig;

pub fn authorize(
    endpoint: &EndpointConfig,
    request: awc::ClientRequest,
    key: &str,
    client_headers: &HeaderMap,
) -> awc::ClientRequest {
    let request = request.insert_header(("x-api-key", key));
    match client_headers.contains_key("anthropic-version") {
        true => request,
        false => request.insert_header(("anthropic-version", endpoint.anthropic_version.as_str())),
    }
}
