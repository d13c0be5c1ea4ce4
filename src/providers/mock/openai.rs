//! The mock's OpenAI chat completions, whole and streamed.

use bytes::Bytes;
use serde::Serialize;
use serde_json::{json, Value};

use super::{chat_input, pieces, token_limit, ChatInput, MockError};
use crate::stream::sse::data_frame;
use crate::textfmt::random_id;

fn openai_input(req: &Value) -> Result<ChatInput, MockError> {
    let limit = token_limit(req, "max_completion_tokens")?.or(token_limit(req, "max_tokens")?);
    chat_input(&req["messages"], None, limit)
}

/// Serializing these plain structs cannot fail, hence no error path.
fn json_frame(value: &impl Serialize) -> Bytes {
    data_frame(&serde_json::to_string(value).unwrap_or_default())
}

/// A full `chat.completion` object.
pub fn openai_chat(req: &Value, model: &str) -> Result<Value, MockError> {
    let input = openai_input(req)?;
    let completion = input.completion_tokens();
    Ok(json!({
        "id": random_id("chatcmpl-mock-"),
        "object": "chat.completion",
        "created": chrono::Utc::now().timestamp(),
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": input.reply, "refusal": null},
            "logprobs": null,
            "finish_reason": if input.truncated { "length" } else { "stop" },
        }],
        "usage": {
            "prompt_tokens": input.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": input.prompt_tokens + completion,
        },
    }))
}

#[derive(Serialize)]
struct ChatChunk<'a> {
    id: &'a str,
    object: &'static str,
    created: i64,
    model: &'a str,
    choices: Vec<ChunkChoice<'a>>,
    /// Absent unless the client asked for usage; then `null` until the last chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<Value>>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'a str>,
}

#[derive(Serialize)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
}

/// The SSE frames of a streamed chat completion, `data: [DONE]` included.
pub fn openai_chat_stream(req: &Value, model: &str) -> Result<Vec<Bytes>, MockError> {
    let input = openai_input(req)?;
    let include_usage = req["stream_options"]["include_usage"] == true;
    let id = random_id("chatcmpl-mock-");
    let created = chrono::Utc::now().timestamp();
    let chunk = |role, content, finish_reason| ChatChunk {
        id: &id,
        object: "chat.completion.chunk",
        created,
        model,
        choices: vec![ChunkChoice {
            index: 0,
            delta: Delta { role, content },
            logprobs: None,
            finish_reason,
        }],
        usage: include_usage.then_some(None),
    };
    let mut frames = vec![json_frame(&chunk(Some("assistant"), Some(""), None))];
    frames.extend(pieces(&input.reply).map(|piece| json_frame(&chunk(None, Some(piece), None))));
    let finish = if input.truncated { "length" } else { "stop" };
    frames.push(json_frame(&chunk(None, None, Some(finish))));
    if include_usage {
        let completion = input.completion_tokens();
        let mut last = chunk(None, None, None);
        last.choices.clear();
        last.usage = Some(Some(json!({
            "prompt_tokens": input.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": input.prompt_tokens + completion,
        })));
        frames.push(json_frame(&last));
    }
    frames.push(data_frame("[DONE]"));
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::super::{estimate_tokens, sse_events};
    use super::*;
    use crate::stream::usage::{inspect_openai_chunk, OpenAiChunkInfo};

    fn json_chunks(frames: &[Bytes]) -> Vec<Value> {
        let data: Vec<String> = sse_events(frames).into_iter().map(|e| e.data).collect();
        assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
        data[..data.len() - 1]
            .iter()
            .map(|d| serde_json::from_str(d).unwrap())
            .collect()
    }

    fn chat(user: Value) -> Value {
        json!({"model": "m", "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": user},
        ]})
    }

    #[test]
    fn openai_chat_echoes_last_user_text() {
        let reply = openai_chat(&chat(json!("hello there")), "mock-1").unwrap();
        assert!(reply["id"].as_str().unwrap().starts_with("chatcmpl-mock-"));
        assert_eq!(reply["object"], "chat.completion");
        assert_eq!(reply["model"], "mock-1");
        assert!(reply["created"].as_i64().unwrap() > 1_600_000_000);
        assert_eq!(reply["choices"][0]["message"]["role"], "assistant");
        assert_eq!(
            reply["choices"][0]["message"]["content"],
            "Echo: hello there"
        );
        assert_eq!(reply["choices"][0]["finish_reason"], "stop");
        let usage = &reply["usage"];
        assert_eq!(
            usage["completion_tokens"],
            estimate_tokens("Echo: hello there")
        );
        assert_eq!(
            usage["prompt_tokens"],
            estimate_tokens("Be brief.\nfirst\nok\nhello there")
        );
        assert_eq!(
            usage["total_tokens"].as_u64(),
            Some(
                usage["prompt_tokens"].as_u64().unwrap()
                    + usage["completion_tokens"].as_u64().unwrap()
            )
        );
        let parts = json!([{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "b"}]);
        let reply = openai_chat(&chat(parts), "m").unwrap();
        assert_eq!(reply["choices"][0]["message"]["content"], "Echo: a\nb");
    }

    #[test]
    fn openai_chat_truncates_to_max_tokens() {
        let mut req = chat(json!("one two three four five six seven eight"));
        req["max_tokens"] = json!(2);
        let reply = openai_chat(&req, "m").unwrap();
        assert_eq!(reply["choices"][0]["finish_reason"], "length");
        assert_eq!(reply["choices"][0]["message"]["content"], "Echo: on");
        assert_eq!(reply["usage"]["completion_tokens"], 2);
        req["max_completion_tokens"] = json!(1000);
        assert_eq!(
            openai_chat(&req, "m").unwrap()["choices"][0]["finish_reason"],
            "stop"
        );
        req["max_completion_tokens"] = json!("many");
        assert!(openai_chat(&req, "m").is_err());
    }

    #[test]
    fn openai_stream_frames() {
        let req = chat(json!("hi there you"));
        let chunks = json_chunks(&openai_chat_stream(&req, "mock-1").unwrap());
        assert_eq!(chunks.len(), 1 + 4 + 1);
        for chunk in &chunks {
            assert_eq!(chunk["id"], chunks[0]["id"]);
            assert_eq!(chunk["created"], chunks[0]["created"]);
            assert_eq!(chunk["object"], "chat.completion.chunk");
            assert_eq!(chunk["model"], "mock-1");
            assert!(chunk.get("usage").is_none());
        }
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        let text: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, "Echo: hi there you");
        assert_eq!(chunks[4]["choices"][0]["finish_reason"], Value::Null);
        assert_eq!(chunks[5]["choices"][0]["finish_reason"], "stop");
        assert_eq!(chunks[5]["choices"][0]["delta"], json!({}));
    }

    #[test]
    fn openai_stream_usage_chunk_only_when_asked() {
        let mut req = chat(json!("hi"));
        req["stream_options"] = json!({"include_usage": true});
        let frames = openai_chat_stream(&req, "m").unwrap();
        let chunks = json_chunks(&frames);
        let last = chunks.last().unwrap();
        assert_eq!(last["choices"], json!([]));
        assert_eq!(
            last["usage"]["completion_tokens"],
            estimate_tokens("Echo: hi")
        );
        assert!(chunks[..chunks.len() - 1]
            .iter()
            .all(|c| c["usage"].is_null()));
        let data = sse_events(&frames)
            .into_iter()
            .map(|e| e.data)
            .collect::<Vec<_>>();
        let usage_only = data.iter().filter(|d| {
            matches!(
                inspect_openai_chunk(d),
                OpenAiChunkInfo::Chunk {
                    usage_only: true,
                    ..
                }
            )
        });
        assert_eq!(usage_only.count(), 1);

        req["stream_options"] = json!({"include_usage": false});
        let chunks = json_chunks(&openai_chat_stream(&req, "m").unwrap());
        assert!(chunks
            .iter()
            .all(|c| c.get("usage").is_none() && c["choices"] != json!([])));
    }
}
