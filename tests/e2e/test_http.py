"""Plain HTTP against a running aigate: what the SDKs don't show."""

from __future__ import annotations

import json
import uuid

import httpx

from fake_upstream import FakeUpstream
from support import (
    ANTHROPIC_UPSTREAM_KEY,
    CLIENT_KEY,
    FAKE_OPENAI_MODEL,
    MOCK_CHAT_MODEL,
    MOCK_CLAUDE_MODEL,
    OPENAI_UPSTREAM_KEY,
    parse_sse,
)

BEARER = {"Authorization": f"Bearer {CLIENT_KEY}"}


def chat_body(text: str, model: str = MOCK_CHAT_MODEL, **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def test_health(http: httpx.Client) -> None:
    r = http.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_status_needs_a_client_key(http: httpx.Client) -> None:
    r = http.get("/v1/status")
    assert r.status_code == 401, r.text
    assert "error" in r.json()


def test_status_shows_key_ids_never_keys(http: httpx.Client) -> None:
    r = http.get("/v1/status", headers=BEARER)
    assert r.status_code == 200, r.text
    body = r.json()
    by_id = {e["id"]: e for e in body["endpoints"]}
    assert {"mock", "fake-openai", "fake-anthropic"} <= set(by_id), list(by_id)
    for endpoint_id in ("fake-openai", "fake-anthropic"):
        keys = by_id[endpoint_id]["keys"]
        assert len(keys) == 1, keys
        assert isinstance(keys[0]["id"], str) and keys[0]["id"]
    for secret in (OPENAI_UPSTREAM_KEY, ANTHROPIC_UPSTREAM_KEY, CLIENT_KEY):
        assert secret not in r.text, f"/v1/status leaks {secret!r}"


def test_status_accepts_x_api_key(http: httpx.Client) -> None:
    r = http.get("/v1/status", headers={"x-api-key": CLIENT_KEY})
    assert r.status_code == 200, r.text


def test_openai_route_accepts_x_api_key(http: httpx.Client) -> None:
    r = http.post("/v1/chat/completions", headers={"x-api-key": CLIENT_KEY}, json=chat_body("hi there"))
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "Echo: hi there"


def test_anthropic_route_accepts_bearer(http: httpx.Client) -> None:
    r = http.post(
        "/v1/messages",
        headers={**BEARER, "anthropic-version": "2023-06-01"},
        json={
            "model": MOCK_CLAUDE_MODEL,
            "max_tokens": 50,
            "messages": [{"role": "user", "content": "hi there"}],
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["content"][0]["text"] == "Echo: hi there"


def test_missing_key_openai_error_shape(http: httpx.Client) -> None:
    r = http.post("/v1/chat/completions", json=chat_body("hi"))
    assert r.status_code == 401
    body = r.json()
    assert set(body) == {"error"}, body
    assert {"message", "type", "code"} <= set(body["error"]), body


def test_missing_key_anthropic_error_shape(http: httpx.Client) -> None:
    r = http.post(
        "/v1/messages",
        json={"model": MOCK_CLAUDE_MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert r.status_code == 401
    body = r.json()
    assert body.get("type") == "error", body
    assert body["error"]["type"] == "authentication_error", body
    assert isinstance(body["error"]["message"], str)


def test_invalid_json_is_a_400_in_dialect(http: httpx.Client) -> None:
    r = http.post(
        "/v1/chat/completions",
        headers={**BEARER, "content-type": "application/json"},
        content=b"{not json",
    )
    assert r.status_code == 400, r.text
    assert "error" in r.json() and "message" in r.json()["error"]


def openai_sse(http: httpx.Client, body: dict) -> list[str]:
    with http.stream("POST", "/v1/chat/completions", headers=BEARER, json=body) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        return [data for _, data in parse_sse(response.iter_lines())]


def check_openai_sse(datas: list[str], expected_text: str, want_usage: bool) -> None:
    assert datas[-1] == "[DONE]", f"stream must end with data: [DONE], got {datas[-1:]}"
    chunks = [json.loads(d) for d in datas[:-1]]
    text = "".join(
        (c["choices"][0]["delta"].get("content") or "") for c in chunks if c.get("choices")
    )
    assert text == expected_text
    with_usage = [c for c in chunks if c.get("usage")]
    if want_usage:
        assert len(with_usage) == 1 and with_usage[0] is chunks[-1], chunks[-2:]
        assert with_usage[0]["choices"] == []
    else:
        assert with_usage == [], with_usage
        assert all(c.get("choices") for c in chunks), "usage-only chunk leaked"


def test_raw_openai_stream_mock(http: httpx.Client) -> None:
    datas = openai_sse(http, chat_body("one two three", stream=True))
    check_openai_sse(datas, "Echo: one two three", want_usage=False)
    datas = openai_sse(http, chat_body("one two three", stream=True, stream_options={"include_usage": True}))
    check_openai_sse(datas, "Echo: one two three", want_usage=True)


def test_raw_openai_stream_fake_upstream(http: httpx.Client, fake_openai: FakeUpstream) -> None:
    text = f"raw stream {uuid.uuid4().hex[:12]}"
    expected = f"Hello from {fake_openai.name}. You said: {text}"
    datas = openai_sse(http, chat_body(text, FAKE_OPENAI_MODEL, stream=True))
    check_openai_sse(datas, expected, want_usage=False)
    text2 = text + "b"
    datas = openai_sse(
        http, chat_body(text2, FAKE_OPENAI_MODEL, stream=True, stream_options={"include_usage": True})
    )
    check_openai_sse(datas, f"Hello from {fake_openai.name}. You said: {text2}", want_usage=True)
