//! Stream translation: the decoder over a recorded-style Anthropic stream,
//! the encoder over a realistic OpenAI chunk sequence, event by event, and
//! the two chained.

use bytes::Bytes;
use serde_json::{json, Value};

use super::{StreamDecoder, StreamEncoder};
use crate::api::openai::ChatChunk;
use crate::stream::sse::{parse_event, SseFramer};
use crate::stream::usage::TokenUsage;
use crate::translate::PivotEvent;

const ANTHROPIC_STREAM: &str =
    include_str!("../../../tests/fixtures/anthropic/stream_thinking_parallel_tools.sse");

/// Runs raw SSE text through the framer and the decoder; chunks as JSON with
/// `created` zeroed.
fn decode(decoder: &mut StreamDecoder, sse: &str) -> Vec<Value> {
    let mut framer = SseFramer::new();
    let mut events = framer.push(sse.as_bytes());
    events.extend(framer.finish());
    events
        .iter()
        .map(|raw| parse_event(raw))
        .flat_map(|event| decoder.event(event.event.as_deref(), &event.data))
        .map(|event| match event {
            PivotEvent::Chunk(chunk) => {
                let mut value = serde_json::to_value(chunk).unwrap();
                value["created"] = json!(0);
                value
            }
            PivotEvent::Error { message } => json!({"error": message}),
        })
        .collect()
}

fn chunk(delta: Value, finish: Value) -> Value {
    json!({"id": "msg_01XYZ", "object": "chat.completion.chunk", "created": 0,
        "model": "client-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
}

#[test]
fn decoder_turns_an_anthropic_stream_into_openai_chunks() {
    let mut decoder = StreamDecoder::new("client-model");
    assert_eq!(decoder.usage(), None);
    let chunks = decode(&mut decoder, ANTHROPIC_STREAM);
    let tool = |index: u32, id: &str| {
        json!({"tool_calls": [{"index": index, "id": id, "type": "function",
            "function": {"name": "get_weather", "arguments": ""}}]})
    };
    let args = |index: u32, fragment: &str| json!({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]});
    let mut last = chunk(json!({}), json!("tool_calls"));
    last["usage"] = json!({"prompt_tokens": 40, "completion_tokens": 89, "total_tokens": 129,
        "prompt_tokens_details": {"cached_tokens": 10}});
    let expected = vec![
        chunk(json!({"role": "assistant", "content": ""}), Value::Null),
        chunk(json!({"reasoning_content": "Two cities, "}), Value::Null),
        chunk(json!({"reasoning_content": "two calls."}), Value::Null),
        chunk(json!({"content": "Checking "}), Value::Null),
        chunk(json!({"content": "both."}), Value::Null),
        chunk(tool(0, "toolu_01A"), Value::Null),
        chunk(args(0, ""), Value::Null),
        chunk(args(0, "{\"city\": "), Value::Null),
        chunk(args(0, "\"Par"), Value::Null),
        chunk(args(0, "is\"}"), Value::Null),
        chunk(tool(1, "toolu_01B"), Value::Null),
        chunk(args(1, "{\"ci"), Value::Null),
        chunk(args(1, "ty\": \"Rome\"}"), Value::Null),
        last,
    ];
    assert_eq!(chunks.len(), expected.len());
    for (i, (got, want)) in chunks.iter().zip(&expected).enumerate() {
        assert_eq!(got, want, "chunk {i}");
    }
    assert!(decoder.finished());
    assert_eq!(
        decoder.usage(),
        Some(TokenUsage {
            prompt_tokens: 40,
            completion_tokens: 89,
            cached_tokens: 10
        })
    );
}

#[test]
fn decoder_maps_max_tokens_errors_and_unknown_events() {
    let mut decoder = StreamDecoder::new("m");
    let sse = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_2\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n",
        "event: brand_new_event\ndata: {\"type\":\"brand_new_event\",\"x\":1}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"citations_delta\",\"citation\":{}}}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\",\"stop_sequence\":null},\"usage\":{\"input_tokens\":4,\"output_tokens\":16}}\n\n",
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0}\n\n",
    );
    let chunks = decode(&mut decoder, sse);
    assert_eq!(chunks.len(), 4);
    assert_eq!(chunks[1]["choices"][0]["finish_reason"], "length");
    assert_eq!(chunks[1]["usage"]["prompt_tokens"], 4);
    assert_eq!(chunks[1]["usage"]["completion_tokens"], 16);
    assert_eq!(chunks[2], json!({"error": "overloaded_error: Overloaded"}));
    assert!(chunks[3]["error"].as_str().unwrap().contains("unreadable"));
    assert!(!decoder.finished());
}

fn openai_chunks() -> Vec<ChatChunk> {
    let head = r#""id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"gpt-4o""#;
    let choice = |delta: &str, finish: &str| {
        format!(
            r#"{{{head},"choices":[{{"index":0,"delta":{delta},"finish_reason":{finish}}}],"usage":null}}"#
        )
    };
    let call = |index: u32, head: &str, args: &str| {
        let args = serde_json::to_string(args).unwrap();
        choice(
            &format!(
                r#"{{"tool_calls":[{{"index":{index},{head}"function":{{{}"arguments":{args}}}}}]}}"#,
                if head.is_empty() {
                    ""
                } else {
                    r#""name":"get_weather","#
                }
            ),
            "null",
        )
    };
    let lines = [
        choice(
            r#"{"role":"assistant","content":null,"refusal":null}"#,
            "null",
        ),
        choice(r#"{"reasoning_content":"Plan: "}"#, "null"),
        choice(r#"{"reasoning_content":"look up."}"#, "null"),
        choice(r#"{"content":"Checking"}"#, "null"),
        choice(r#"{"content":" both."}"#, "null"),
        call(0, r#""id":"call_A","type":"function","#, ""),
        call(0, "", "{\"ci"),
        call(0, "", "ty\": \"Paris\"}"),
        call(1, r#""id":"call_B","type":"function","#, ""),
        call(1, "", "{\"city\""),
        call(1, "", ": \"Rome\"}"),
        choice("{}", r#""tool_calls""#),
        format!(
            r#"{{{head},"choices":[],"usage":{{"prompt_tokens":100,"completion_tokens":30,"total_tokens":130,"prompt_tokens_details":{{"cached_tokens":40}}}}}}"#
        ),
    ];
    lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Frames as (event name, JSON data), checking each names its own `type`.
fn events(frames: &[Bytes]) -> Vec<(String, Value)> {
    frames
        .iter()
        .map(|frame| {
            let event = parse_event(frame);
            let data: Value = serde_json::from_str(&event.data).unwrap();
            let name = event.event.unwrap();
            assert_eq!(data["type"], name.as_str());
            (name, data)
        })
        .collect()
}

#[test]
fn encoder_turns_openai_chunks_into_anthropic_events() {
    let mut encoder = StreamEncoder::new("client-model", "chatcmpl-9".into());
    let mut frames: Vec<Bytes> = openai_chunks()
        .iter()
        .flat_map(|chunk| encoder.chunk(chunk))
        .collect();
    frames.extend(encoder.finish());
    assert!(encoder.finish().is_empty());
    assert_eq!(
        &frames[1][..],
        b"event: ping\ndata: {\"type\":\"ping\"}\n\n"
    );

    let start = |index: u32, block: Value| {
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": block}),
        )
    };
    let delta = |index: u32, delta: Value| {
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": index, "delta": delta}),
        )
    };
    let stop = |index: u32| {
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        )
    };
    let json_part = |index: u32, part: &str| {
        delta(
            index,
            json!({"type": "input_json_delta", "partial_json": part}),
        )
    };
    let tool = |id: &str| json!({"type": "tool_use", "id": id, "name": "get_weather", "input": {}});
    let expected = vec![
        (
            "message_start",
            json!({"type": "message_start", "message": {
            "id": "msg_9", "type": "message", "role": "assistant", "model": "client-model",
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 0, "output_tokens": 0}}}),
        ),
        ("ping", json!({"type": "ping"})),
        start(
            0,
            json!({"type": "thinking", "thinking": "", "signature": ""}),
        ),
        delta(0, json!({"type": "thinking_delta", "thinking": "Plan: "})),
        delta(0, json!({"type": "thinking_delta", "thinking": "look up."})),
        stop(0),
        start(1, json!({"type": "text", "text": ""})),
        delta(1, json!({"type": "text_delta", "text": "Checking"})),
        delta(1, json!({"type": "text_delta", "text": " both."})),
        stop(1),
        start(2, tool("call_A")),
        json_part(2, "{\"ci"),
        json_part(2, "ty\": \"Paris\"}"),
        stop(2),
        start(3, tool("call_B")),
        json_part(3, "{\"city\""),
        json_part(3, ": \"Rome\"}"),
        stop(3),
        (
            "message_delta",
            json!({"type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": null},
            "usage": {"input_tokens": 60, "output_tokens": 30, "cache_read_input_tokens": 40}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ];
    let got = events(&frames);
    assert_eq!(got.len(), expected.len());
    for (i, ((name, data), (want_name, want_data))) in got.iter().zip(&expected).enumerate() {
        assert_eq!((name.as_str(), data), (*want_name, want_data), "event {i}");
    }
}

#[test]
fn encoder_edge_cases() {
    // Nothing from upstream: still a well-formed (empty) message.
    let mut empty = StreamEncoder::new("m", "msg_0".into());
    let names: Vec<String> = events(&empty.finish())
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names,
        ["message_start", "ping", "message_delta", "message_stop"]
    );

    // Text cut by the length limit; usage on the first chunk feeds message_start.
    let mut text = StreamEncoder::new("m", "x".into());
    let first: ChatChunk = serde_json::from_value(json!({"id": "x", "created": 1, "model": "u",
        "choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": null}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 0, "total_tokens": 7}}))
    .unwrap();
    let last: ChatChunk = serde_json::from_value(json!({"id": "x", "created": 1, "model": "u",
        "choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "length"}]}))
    .unwrap();
    let mut frames = text.chunk(&first);
    frames.extend(text.chunk(&last));
    frames.extend(text.finish());
    let got = events(&frames);
    assert_eq!(
        got[0].1["message"]["usage"],
        json!({"input_tokens": 7, "output_tokens": 0})
    );
    assert_eq!(got[0].1["message"]["id"], "msg_x");
    assert_eq!(got.len(), 8);
    assert_eq!(got[6].1["delta"]["stop_reason"], "max_tokens");

    // An error ends the stream; later calls emit nothing.
    let mut failing = StreamEncoder::new("m", "msg_1".into());
    assert_eq!(failing.chunk(&first).len(), 4);
    let error = failing.error("upstream timed out");
    assert_eq!(
        &error[0][..],
        &b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"upstream timed out\"}}\n\n"[..]
    );
    assert!(failing.finish().is_empty());
    assert!(failing.chunk(&last).is_empty());
}

#[test]
fn encoder_splits_tool_calls_that_reuse_an_index_and_drops_late_fragments() {
    let call = |id: Option<&str>, index: u32, args: &str| -> ChatChunk {
        let mut tool = json!({"index": index, "function": {"arguments": args}});
        if let Some(id) = id {
            tool["id"] = json!(id);
            tool["function"]["name"] = json!("f");
        }
        serde_json::from_value(json!({"id": "x", "created": 1, "model": "u",
            "choices": [{"index": 0, "delta": {"tool_calls": [tool]}, "finish_reason": null}]}))
        .unwrap()
    };
    let mut encoder = StreamEncoder::new("m", "x".into());
    let mut frames = Vec::new();
    for chunk in [
        call(Some("a"), 0, "{}"),
        call(Some("b"), 0, "{\"x\":1}"),
        call(Some("c"), 1, ""),
        call(None, 0, "late"),
    ] {
        frames.extend(encoder.chunk(&chunk));
    }
    frames.extend(encoder.finish());
    let got = events(&frames);
    let blocks: Vec<&Value> = got
        .iter()
        .filter(|(name, _)| name == "content_block_start")
        .map(|(_, data)| &data["content_block"]["id"])
        .collect();
    assert_eq!(blocks, [&json!("a"), &json!("b"), &json!("c")]);
    assert!(!got
        .iter()
        .any(|(_, data)| data["delta"]["partial_json"] == "late"));
    // Tool calls without a finish reason still end as tool_use.
    assert_eq!(got[got.len() - 2].1["delta"]["stop_reason"], "tool_use");
}

#[test]
fn encoder_output_decodes_back_to_the_same_content() {
    let mut encoder = StreamEncoder::new("m", "chatcmpl-9".into());
    let mut frames: Vec<Bytes> = openai_chunks()
        .iter()
        .flat_map(|chunk| encoder.chunk(chunk))
        .collect();
    frames.extend(encoder.finish());
    let sse: String = frames
        .iter()
        .map(|frame| String::from_utf8(frame.to_vec()).unwrap())
        .collect();
    let mut decoder = StreamDecoder::new("m");
    let chunks = decode(&mut decoder, &sse);
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut args = [String::new(), String::new()];
    for chunk in &chunks {
        let delta = &chunk["choices"][0]["delta"];
        text.push_str(delta["content"].as_str().unwrap_or(""));
        reasoning.push_str(delta["reasoning_content"].as_str().unwrap_or(""));
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            let index = call["index"].as_u64().unwrap() as usize;
            args[index].push_str(call["function"]["arguments"].as_str().unwrap_or(""));
        }
    }
    assert_eq!(text, "Checking both.");
    assert_eq!(reasoning, "Plan: look up.");
    assert_eq!(args, ["{\"city\": \"Paris\"}", "{\"city\": \"Rome\"}"]);
    assert_eq!(
        decoder.usage(),
        Some(TokenUsage {
            prompt_tokens: 100,
            completion_tokens: 30,
            cached_tokens: 40
        })
    );
    assert!(decoder.finished());
}
