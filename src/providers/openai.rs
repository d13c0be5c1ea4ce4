//! OpenAI and OpenAI-compatible upstreams: `Authorization: Bearer <key>`.

pub fn authorize(request: awc::ClientRequest, key: &str) -> awc::ClientRequest {
    request.insert_header(("authorization", format!("Bearer {key}")))
}
