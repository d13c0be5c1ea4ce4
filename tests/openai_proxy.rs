//! OpenAI-dialect proxying: what the client got and what the upstream saw.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::replies::{openai_completion, openai_stream};
use common::{chat, json_of, post_json, FakeUpstream, Reply, TestGateway};
use futures_util::StreamExt;
use serde_json::json;

fn config(upstream: &FakeUpstream) -> String {
    format!(
        r#"
[auth]
client_keys = ["fk-test"]
[[endpoints]]
id = "up"
provider = "openai"
base_url = "{}"
keys = ["sk-upstream-secret-1234"]
models = ["gpt-4o"]
model_mapping = {{ "gpt-alias" = "gpt-4o-2024-08-06" }}
"#,
        upstream.url
    )
}

#[actix_web::test]
async fn chat_completion_is_forwarded_with_the_pooled_key() {
    let upstream = FakeUpstream::always(Reply::json(openai_completion("gpt-4o", "Hi there")));
    let gw = TestGateway::start(&config(&upstream));
    let (status, headers, body) = post_json(
        &format!("{}/v1/chat/completions", gw.url),
        "fk-test",
        &chat("gpt-4o", "hello"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(headers.contains_key("x-aigate-request-id"));
    let body = json_of(&body);
    assert_eq!(body["choices"][0]["message"]["content"], "Hi there");

    let seen = upstream.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/v1/chat/completions");
    assert_eq!(
        seen[0].header("authorization"),
        Some("Bearer sk-upstream-secret-1234")
    );
    assert!(seen
        .iter()
        .all(|r| !format!("{:?}", r.headers).contains("fk-test")));
    // Unchanged body: the client's bytes went upstream as they came.
    assert_eq!(seen[0].json(), chat("gpt-4o", "hello"));

    let records = gw.usage_records().await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["status"], 200);
    assert_eq!(records[0]["prompt_tokens"], 11);
    assert_eq!(records[0]["completion_tokens"], 7);
    assert_eq!(records[0]["cached_tokens"], 3);
    assert_eq!(records[0]["key_id"], "…1234");
    assert_eq!(records[0]["endpoint"], "up");
}

#[actix_web::test]
async fn mapped_model_is_what_the_upstream_sees() {
    let upstream = FakeUpstream::always(Reply::json(openai_completion("gpt-4o-2024-08-06", "ok")));
    let gw = TestGateway::start(&config(&upstream));
    let (status, _, _) = post_json(
        &format!("{}/v1/chat/completions", gw.url),
        "fk-test",
        &chat("gpt-alias", "hello"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(upstream.requests()[0].json()["model"], "gpt-4o-2024-08-06");
    let records = gw.usage_records().await;
    assert_eq!(records[0]["model"], "gpt-alias");
    assert_eq!(records[0]["upstream_model"], "gpt-4o-2024-08-06");
}

#[actix_web::test]
async fn stream_arrives_in_chunks_before_the_upstream_finishes() {
    // 6 chunks, 150 ms apart: the upstream needs ~1 s in all.
    let upstream = FakeUpstream::always(Reply::sse(
        openai_stream("gpt-4o", &["Hel", "lo", " wor", "ld"], true),
        150,
    ));
    let gw = TestGateway::start(&config(&upstream));
    let mut body = chat("gpt-4o", "hello");
    body["stream"] = json!(true);
    let started = Instant::now();
    let mut response = common::client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .insert_header(("authorization", "Bearer fk-test"))
        .send_json(&body)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers().get("content-type").unwrap(),
        "text/event-stream"
    );
    let mut arrivals = Vec::new();
    let mut text = String::new();
    while let Some(chunk) = response.next().await {
        let chunk = chunk.unwrap();
        arrivals.push(started.elapsed());
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    // Several network chunks, the first long before the upstream was done.
    assert!(arrivals.len() >= 4, "got {} chunks", arrivals.len());
    assert!(arrivals[0] + Duration::from_millis(400) < *arrivals.last().unwrap());

    // The gateway asked for usage on the client's behalf...
    let seen = upstream.requests()[0].json();
    assert_eq!(seen["stream_options"]["include_usage"], true);
    // ...and dropped the usage chunk the client did not ask for.
    assert!(!text.contains("\"usage\""), "usage chunk leaked: {text}");
    assert!(
        text.contains("Hel") && text.contains("ld") && text.trim_end().ends_with("data: [DONE]")
    );

    let records = gw.usage_records().await;
    assert_eq!(records[0]["stream"], true);
    assert_eq!(records[0]["prompt_tokens"], 9);
    assert_eq!(records[0]["completion_tokens"], 4);
}

#[actix_web::test]
async fn stream_usage_chunk_kept_when_the_client_asked() {
    let upstream = FakeUpstream::always(Reply::sse(openai_stream("gpt-4o", &["a", "b"], true), 0));
    let gw = TestGateway::start(&config(&upstream));
    let mut body = chat("gpt-4o", "hello");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let (status, _, text) =
        post_json(&format!("{}/v1/chat/completions", gw.url), "fk-test", &body).await;
    assert_eq!(status, 200);
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains("\"usage\":{\"completion_tokens\":2")
            || text.contains("\"completion_tokens\":2")
    );
    // Untouched request: the client's own bytes.
    assert_eq!(upstream.requests()[0].json(), body);
}

#[actix_web::test]
async fn upstream_cut_mid_stream_becomes_an_error_event() {
    let upstream = FakeUpstream::always(Reply::Sse {
        chunks: openai_stream("gpt-4o", &["a", "b", "c"], true),
        delay: Duration::from_millis(20),
        cut_after: Some(2),
    });
    let gw = TestGateway::start(&config(&upstream));
    let mut body = chat("gpt-4o", "hello");
    body["stream"] = json!(true);
    let (status, _, text) =
        post_json(&format!("{}/v1/chat/completions", gw.url), "fk-test", &body).await;
    assert_eq!(status, 200);
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("\"a\""), "{text}");
    assert!(
        text.contains("stream_interrupted"),
        "no error event: {text}"
    );
    assert!(!text.contains("[DONE]"));
    let records = gw.usage_records().await;
    assert_eq!(records[0]["status"], 200);
    assert!(records[0]["error"]
        .as_str()
        .unwrap()
        .contains("upstream stream"));
}

#[actix_web::test]
async fn client_disconnect_cancels_the_upstream_and_is_still_logged() {
    let upstream =
        FakeUpstream::always(Reply::sse(openai_stream("gpt-4o", &["a"; 40], false), 100));
    let gw = TestGateway::start(&config(&upstream));
    let mut body = chat("gpt-4o", "hello");
    body["stream"] = json!(true);
    {
        let mut response = common::client()
            .post(format!("{}/v1/chat/completions", gw.url))
            .insert_header(("authorization", "Bearer fk-test"))
            .send_json(&body)
            .await
            .unwrap();
        let first = response.next().await.unwrap().unwrap();
        assert!(!first.is_empty());
        // Dropping the response closes the client connection mid-stream.
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while upstream
        .cancelled_streams
        .load(std::sync::atomic::Ordering::SeqCst)
        == 0
    {
        assert!(
            Instant::now() < deadline,
            "upstream stream was never cancelled"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        upstream
            .finished_streams
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    let records = gw.usage_records().await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["status"], 499);
    assert_eq!(records[0]["error"], "client disconnected");
}

#[actix_web::test]
async fn embeddings_and_other_paths_pass_through() {
    let upstream = FakeUpstream::start(|req, _| match req.path.as_str() {
        "/v1/embeddings" => Reply::json(
            json!({"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
            "model": "text-embedding-3-small", "usage": {"prompt_tokens": 5, "total_tokens": 5}}),
        ),
        _ => Reply::json(json!({"object": "response", "path": req.path, "query": req.query})),
    });
    let gw = TestGateway::start(&config(&upstream).replace("models = [\"gpt-4o\"]", "models = []"));
    let (status, _, body) = post_json(
        &format!("{}/v1/embeddings", gw.url),
        "fk-test",
        &json!({"model": "text-embedding-3-small", "input": "hi"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(json_of(&body)["data"][0]["embedding"][1], 0.2);

    let mut response = common::client()
        .get(format!("{}/v1/files/file-abc/content?x=1", gw.url))
        .insert_header(("authorization", "Bearer fk-test"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = json_of(&response.body().await.unwrap());
    assert_eq!(body["path"], "/v1/files/file-abc/content");
    assert_eq!(body["query"], "x=1");
    let seen = upstream.requests();
    assert_eq!(seen[1].method, "GET");
    assert_eq!(
        seen[1].header("authorization"),
        Some("Bearer sk-upstream-secret-1234")
    );
    let records = gw.usage_records().await;
    assert_eq!(records[0]["prompt_tokens"], 5);
}

#[actix_web::test]
async fn multipart_upload_and_binary_answer_stream_through() {
    let audio: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let upstream = FakeUpstream::start(|req, _| match req.path.as_str() {
        "/v1/audio/speech" => Reply::Raw {
            status: 200,
            content_type: "audio/mpeg".into(),
            body: (0..100_000u32).map(|i| (i % 7) as u8).collect(),
        },
        _ => Reply::json(json!({"received": req.body.len(), "type": req.header("content-type")})),
    });
    let gw = TestGateway::start(&config(&upstream).replace("models = [\"gpt-4o\"]", "models = []"));
    let boundary = "XyZboundary";
    let mut form = Vec::new();
    form.extend_from_slice(format!("--{boundary}\r\ncontent-disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"a.mp3\"\r\ncontent-type: audio/mpeg\r\n\r\n").as_bytes());
    form.extend_from_slice(&audio);
    form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let form_len = form.len();
    let mut response = common::client()
        .post(format!("{}/v1/audio/transcriptions", gw.url))
        .insert_header(("authorization", "Bearer fk-test"))
        .insert_header((
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        ))
        .send_body(form.clone())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = json_of(&response.body().await.unwrap());
    assert_eq!(body["received"], form_len);
    assert_eq!(upstream.requests()[0].body, form, "upload arrived altered");

    let mut response = common::client()
        .post(format!("{}/v1/audio/speech", gw.url))
        .insert_header(("authorization", "Bearer fk-test"))
        .send_json(&json!({"model": "tts-1", "input": "hi", "voice": "alloy"}))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers().get("content-type").unwrap(),
        "audio/mpeg"
    );
    let audio_back = response.body().limit(1 << 20).await.unwrap();
    assert_eq!(audio_back.len(), 100_000);
    assert_eq!(audio_back[13], 13 % 7);
}

#[actix_web::test]
async fn upstream_400_is_returned_as_is_and_not_retried() {
    let upstream = FakeUpstream::always(Reply::status(
        400,
        json!({"error": {"message": "bad temperature", "type": "invalid_request_error", "code": null}}),
    ));
    let gw = TestGateway::start(&config(&upstream));
    let (status, _, body) = post_json(
        &format!("{}/v1/chat/completions", gw.url),
        "fk-test",
        &chat("gpt-4o", "x"),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(json_of(&body)["error"]["message"], "bad temperature");
    assert_eq!(upstream.hits(), 1);
}
