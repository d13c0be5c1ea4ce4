//! The request fields the gateway needs (model, stream, stream usage option),
//! read without building a full JSON tree of the body, and the one rewrite it
//! may have to make before forwarding.

use serde::Deserialize;
use serde_json::{Map, Value};

/// What the gateway reads from a JSON request body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestPeek {
    pub model: Option<String>,
    pub stream: bool,
    /// `stream_options.include_usage` as the client sent it.
    pub include_usage: bool,
}

#[derive(Deserialize)]
struct PeekFields {
    #[serde(default)]
    model: Option<Value>,
    #[serde(default)]
    stream: Option<Value>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

/// Why a body could not be peeked.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PeekError {
    #[error("We could not parse the JSON body of your request: {0}")]
    InvalidJson(String),
    #[error("The request body must be a JSON object.")]
    NotAnObject,
    #[error("'model' must be a string.")]
    ModelNotString,
}

impl RequestPeek {
    /// Reads `model`, `stream` and `stream_options.include_usage`; other fields
    /// are skipped by serde without being materialised.
    pub fn from_json(body: &[u8]) -> Result<Self, PeekError> {
        let trimmed = body.iter().find(|b| !b.is_ascii_whitespace());
        if trimmed != Some(&b'{') {
            return match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                Ok(_) => Err(PeekError::NotAnObject),
                Err(e) => Err(PeekError::InvalidJson(e.to_string())),
            };
        }
        let fields: PeekFields =
            serde_json::from_slice(body).map_err(|e| PeekError::InvalidJson(e.to_string()))?;
        let model = match fields.model {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => return Err(PeekError::ModelNotString),
        };
        Ok(RequestPeek {
            model,
            stream: matches!(fields.stream, Some(Value::Bool(true))),
            include_usage: fields
                .stream_options
                .and_then(|o| o.include_usage)
                .unwrap_or(false),
        })
    }
}

/// Changes the gateway may make to a same-dialect body before forwarding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BodyRewrite {
    /// Replace `model` with this upstream name.
    pub model: Option<String>,
    /// Set `stream_options.include_usage = true` so the stream reports usage.
    pub ask_stream_usage: bool,
}

impl BodyRewrite {
    pub fn is_noop(&self) -> bool {
        self.model.is_none() && !self.ask_stream_usage
    }

    /// Applies the rewrite; returns the body unchanged when there is nothing
    /// to do (the common case: the client's bytes go upstream as they came).
    pub fn apply(&self, body: bytes::Bytes) -> Result<bytes::Bytes, PeekError> {
        if self.is_noop() {
            return Ok(body);
        }
        let mut object: Map<String, Value> =
            serde_json::from_slice(&body).map_err(|e| PeekError::InvalidJson(e.to_string()))?;
        if let Some(model) = &self.model {
            object.insert("model".into(), Value::String(model.clone()));
        }
        if self.ask_stream_usage {
            let options = object
                .entry("stream_options")
                .or_insert_with(|| Value::Object(Map::new()));
            if !options.is_object() {
                *options = Value::Object(Map::new());
            }
            if let Value::Object(options) = options {
                options.insert("include_usage".into(), Value::Bool(true));
            }
        }
        serde_json::to_vec(&object)
            .map(bytes::Bytes::from)
            .map_err(|e| PeekError::InvalidJson(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peeks_model_and_stream() {
        let peek = RequestPeek::from_json(
            br#"{"messages":[{"role":"user","content":"hi"}],"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true}}"#,
        )
        .unwrap();
        assert_eq!(peek.model.as_deref(), Some("gpt-4o"));
        assert!(peek.stream && peek.include_usage);
    }

    #[test]
    fn rejects_bad_json_and_non_objects() {
        assert!(matches!(
            RequestPeek::from_json(b"{\"model\":"),
            Err(PeekError::InvalidJson(_))
        ));
        assert_eq!(RequestPeek::from_json(b"[1]"), Err(PeekError::NotAnObject));
        assert_eq!(
            RequestPeek::from_json(br#"{"model":3}"#),
            Err(PeekError::ModelNotString)
        );
    }

    #[test]
    fn noop_rewrite_keeps_bytes() {
        let body = bytes::Bytes::from_static(br#"{ "model" : "a" }"#);
        let out = BodyRewrite::default().apply(body.clone()).unwrap();
        assert_eq!(out, body);
    }

    #[test]
    fn rewrite_maps_model_and_asks_usage() {
        let rewrite = BodyRewrite {
            model: Some("up".into()),
            ask_stream_usage: true,
        };
        let out = rewrite
            .apply(bytes::Bytes::from_static(br#"{"model":"a","stream":true}"#))
            .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["model"], "up");
        assert_eq!(v["stream_options"]["include_usage"], true);
    }
}
