//! What a client of either dialect got, read back the way its SDK would:
//! text, tool calls, finish reason, usage, and a terminal error if the stream
//! carried one. Reading a stream also asserts its grammar (OpenAI: one id,
//! role first, stable tool indices, `[DONE]` last or an error chunk instead;
//! Anthropic: exactly one `message_start` and `message_stop`, blocks opened,
//! filled and closed in order with deltas of their own type).

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: Value,
}

#[derive(Debug, Default)]
pub struct View {
    pub model: Option<String>,
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    pub finish: Option<String>,
    pub stop_sequence: Option<String>,
    /// (prompt tokens including cache reads, completion tokens, cache reads)
    pub usage: Option<(u64, u64, u64)>,
    /// The message of a terminal error event.
    pub error: Option<String>,
}

fn parse_arguments(text: &str) -> Value {
    match text.is_empty() {
        true => Value::Object(Default::default()),
        false => serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("tool arguments {text:?} are not JSON: {e}")),
    }
}

pub fn openai_whole(body: &Value) -> View {
    let choice = &body["choices"][0];
    let message = &choice["message"];
    assert_eq!(body["object"], "chat.completion", "{body}");
    assert_eq!(message["role"], "assistant", "{body}");
    let tool_calls = message["tool_calls"]
        .as_array()
        .map(|calls| {
            calls
                .iter()
                .map(|call| {
                    assert_eq!(call["type"], "function", "{call}");
                    ToolCall {
                        id: call["id"].as_str().unwrap().to_string(),
                        name: call["function"]["name"].as_str().unwrap().to_string(),
                        arguments: parse_arguments(call["function"]["arguments"].as_str().unwrap()),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    View {
        model: body["model"].as_str().map(str::to_string),
        text: message["content"].as_str().unwrap_or_default().to_string(),
        tool_calls,
        finish: choice["finish_reason"].as_str().map(str::to_string),
        stop_sequence: None,
        usage: openai_usage(&body["usage"]),
        error: None,
    }
}

fn openai_usage(usage: &Value) -> Option<(u64, u64, u64)> {
    Some((
        usage["prompt_tokens"].as_u64()?,
        usage["completion_tokens"].as_u64()?,
        usage["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap_or(0),
    ))
}

pub fn anthropic_whole(body: &Value) -> View {
    assert_eq!(body["type"], "message", "{body}");
    assert_eq!(body["role"], "assistant", "{body}");
    let mut view = View {
        model: body["model"].as_str().map(str::to_string),
        finish: body["stop_reason"].as_str().map(str::to_string),
        stop_sequence: body["stop_sequence"].as_str().map(str::to_string),
        usage: anthropic_usage(&body["usage"], None),
        ..View::default()
    };
    for block in body["content"].as_array().unwrap() {
        match block["type"].as_str().unwrap() {
            "text" => view.text.push_str(block["text"].as_str().unwrap()),
            "tool_use" => view.tool_calls.push(ToolCall {
                id: block["id"].as_str().unwrap().to_string(),
                name: block["name"].as_str().unwrap().to_string(),
                arguments: block["input"].clone(),
            }),
            "thinking" | "redacted_thinking" => {}
            other => panic!("unexpected content block {other}: {body}"),
        }
    }
    view
}

/// Anthropic usage: `later` (a `message_delta`'s) overrides what it repeats.
fn anthropic_usage(start: &Value, later: Option<&Value>) -> Option<(u64, u64, u64)> {
    let field = |name: &str| {
        later
            .and_then(|l| l[name].as_u64())
            .or_else(|| start[name].as_u64())
    };
    let input = field("input_tokens")?;
    let read = field("cache_read_input_tokens").unwrap_or(0);
    let written = field("cache_creation_input_tokens").unwrap_or(0);
    Some((input + read + written, field("output_tokens")?, read))
}

/// `(event name, data)` per SSE event.
fn events(body: &[u8]) -> Vec<(Option<String>, String)> {
    let text = String::from_utf8_lossy(body).replace("\r\n", "\n");
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|event| {
            let mut name = None;
            let mut data = Vec::new();
            for line in event.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = Some(v.trim().to_string());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push(v.trim_start().to_string());
                } else if !line.starts_with(':') {
                    panic!("not an SSE line: {line:?}");
                }
            }
            (name, data.join("\n"))
        })
        .collect()
}

/// An OpenAI stream; `translated`: the gateway wrote every chunk itself
/// (one id, the client's model name).
pub fn openai_stream(body: &[u8], translated: bool) -> View {
    let events = events(body);
    let mut view = View::default();
    let mut arguments: Vec<(String, String, String)> = Vec::new();
    let mut ids = Vec::new();
    let mut saw_role = false;
    let mut finishes = 0;
    for (i, (name, data)) in events.iter().enumerate() {
        assert!(
            name.is_none(),
            "OpenAI streams have no event names: {name:?}"
        );
        let last = i + 1 == events.len();
        if data == "[DONE]" {
            assert!(last, "[DONE] is not last");
            continue;
        }
        let chunk: Value = serde_json::from_str(data).unwrap();
        if let Some(error) = chunk.get("error") {
            assert!(last, "an error chunk must end the stream: {data}");
            view.error = Some(error["message"].as_str().unwrap().to_string());
            continue;
        }
        if translated {
            assert_eq!(chunk["object"], "chat.completion.chunk", "{data}");
            ids.push(chunk["id"].as_str().unwrap().to_string());
            view.model = chunk["model"].as_str().map(str::to_string);
        }
        if let Some(usage) = openai_usage(&chunk["usage"]) {
            view.usage = Some(usage);
        }
        for choice in chunk["choices"].as_array().unwrap() {
            assert_eq!(choice["index"], 0, "{data}");
            let delta = &choice["delta"];
            if !saw_role && translated {
                assert_eq!(delta["role"], "assistant", "the first delta has the role");
            }
            saw_role = true;
            if let Some(text) = delta["content"].as_str() {
                view.text.push_str(text);
            }
            for call in delta["tool_calls"].as_array().into_iter().flatten() {
                let index = call["index"].as_u64().unwrap() as usize;
                let fragment = call["function"]["arguments"].as_str().unwrap_or_default();
                if index == arguments.len() {
                    let id = call["id"].as_str().expect("a new tool call carries its id");
                    let name = call["function"]["name"]
                        .as_str()
                        .expect("a new tool call carries its name");
                    arguments.push((id.into(), name.into(), fragment.into()));
                } else {
                    assert!(index < arguments.len(), "tool index {index} skipped one");
                    if let Some(id) = call["id"].as_str() {
                        assert_eq!(id, arguments[index].0, "tool call id changed");
                    }
                    arguments[index].2.push_str(fragment);
                }
            }
            if let Some(finish) = choice["finish_reason"].as_str() {
                finishes += 1;
                view.finish = Some(finish.to_string());
            }
        }
    }
    let done = events.last().map(|(_, d)| d.as_str()) == Some("[DONE]");
    assert!(
        done != view.error.is_some(),
        "a stream ends with [DONE] or an error chunk, not both or neither"
    );
    if view.error.is_none() {
        assert_eq!(finishes, 1, "exactly one finish_reason");
    }
    if translated {
        ids.dedup();
        assert_eq!(ids.len(), 1, "one id for the whole stream: {ids:?}");
    }
    view.tool_calls = arguments
        .into_iter()
        .map(|(id, name, args)| ToolCall {
            id,
            name,
            arguments: parse_arguments(&args),
        })
        .collect();
    view
}

/// An Anthropic stream, checked event by event.
pub fn anthropic_stream(body: &[u8]) -> View {
    let events = events(body);
    let mut view = View::default();
    let mut start_usage = Value::Null;
    let mut delta_usage = None;
    let (mut starts, mut stops, mut deltas) = (0, 0, 0);
    let mut next_index = 0;
    let mut open: Option<(u64, String)> = None;
    let mut partial = String::new();
    for (i, (name, data)) in events.iter().enumerate() {
        let event: Value = serde_json::from_str(data).unwrap();
        let name = name.as_deref().expect("Anthropic events are named");
        assert_eq!(event["type"], name, "event name and type agree: {data}");
        assert!(stops == 0, "nothing after message_stop: {data}");
        if name != "message_start" {
            assert_eq!(starts, 1, "message_start comes first: {data}");
        }
        match name {
            "message_start" => {
                starts += 1;
                assert_eq!(i, 0, "message_start is the first event");
                let message = &event["message"];
                assert_eq!(message["content"], Value::Array(vec![]));
                view.model = message["model"].as_str().map(str::to_string);
                start_usage = message["usage"].clone();
            }
            "ping" => {}
            "content_block_start" => {
                assert!(open.is_none(), "a block opened while another is open");
                assert_eq!(event["index"], next_index, "block indices in order");
                let block = &event["content_block"];
                let kind = block["type"].as_str().unwrap().to_string();
                match kind.as_str() {
                    "text" => view.text.push_str(block["text"].as_str().unwrap()),
                    "tool_use" => {
                        assert_eq!(block["input"], serde_json::json!({}));
                        view.tool_calls.push(ToolCall {
                            id: block["id"].as_str().unwrap().to_string(),
                            name: block["name"].as_str().unwrap().to_string(),
                            arguments: Value::Null,
                        });
                        partial.clear();
                    }
                    "thinking" => {}
                    other => panic!("unexpected block type {other}"),
                }
                open = Some((next_index, kind));
                next_index += 1;
            }
            "content_block_delta" => {
                let (index, kind) = open.clone().expect("a delta outside any block");
                assert_eq!(event["index"], index, "delta for the open block");
                let delta = &event["delta"];
                match (kind.as_str(), delta["type"].as_str().unwrap()) {
                    ("text", "text_delta") => view.text.push_str(delta["text"].as_str().unwrap()),
                    ("tool_use", "input_json_delta") => {
                        partial.push_str(delta["partial_json"].as_str().unwrap())
                    }
                    ("thinking", "thinking_delta" | "signature_delta") => {}
                    (block, delta) => panic!("a {delta} inside a {block} block"),
                }
            }
            "content_block_stop" => {
                let (index, kind) = open.take().expect("a stop with no open block");
                assert_eq!(event["index"], index, "stop for the open block");
                if kind == "tool_use" {
                    view.tool_calls.last_mut().unwrap().arguments = parse_arguments(&partial);
                }
            }
            "message_delta" => {
                deltas += 1;
                assert!(open.is_none(), "message_delta with a block still open");
                view.finish = event["delta"]["stop_reason"].as_str().map(str::to_string);
                view.stop_sequence = event["delta"]["stop_sequence"].as_str().map(str::to_string);
                delta_usage = Some(event["usage"].clone());
            }
            "message_stop" => {
                assert_eq!(deltas, 1, "exactly one message_delta before message_stop");
                stops += 1;
            }
            "error" => {
                assert_eq!(i + 1, events.len(), "error is the last event");
                view.error = Some(event["error"]["message"].as_str().unwrap().to_string());
            }
            other => panic!("unknown Anthropic event {other}"),
        }
    }
    assert_eq!(starts, 1, "exactly one message_start");
    match view.error {
        Some(_) => assert_eq!(stops, 0, "no message_stop after an error"),
        None => assert_eq!(stops, 1, "exactly one message_stop"),
    }
    view.usage = anthropic_usage(&start_usage, delta_usage.as_ref());
    view
}
