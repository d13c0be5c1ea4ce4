"""The official OpenAI and Anthropic SDKs, pointed at a running aigate.

Each test puts a unique marker in its prompt so it can find the exact
request the fake upstream received, whatever else runs at the same time.
"""

from __future__ import annotations

import json
import math
import time
import uuid

import anthropic
import openai
import pytest

from fake_upstream import FakeUpstream
from support import (
    ANTHROPIC_UPSTREAM_KEY,
    CLIENT_KEY,
    FAKE_ANTHROPIC_MODEL,
    FAKE_OPENAI_ALIAS,
    FAKE_OPENAI_ALIAS_TARGET,
    FAKE_OPENAI_MODEL,
    FAKE_OPENAI_SLOW_MODEL,
    MOCK_CHAT_MODEL,
    MOCK_CLAUDE_MODEL,
    MOCK_EMBED_MODEL,
    OPENAI_UPSTREAM_KEY,
    Gateway,
    parse_sse,
)


def prompt() -> str:
    return f"hello gateway {uuid.uuid4().hex[:12]}"


def marker_of(text: str) -> str:
    return text.rsplit(" ", 1)[-1]


def one_upstream_request(upstream: FakeUpstream, text: str, path: str):
    found = upstream.requests_containing(marker_of(text), path)
    assert len(found) == 1, f"expected exactly one upstream {path} request with {text!r}, got {len(found)}"
    return found[0]


def assert_no_client_key(request) -> None:
    assert not request.contains(CLIENT_KEY), (
        f"the client key reached the upstream: headers={request.headers}"
    )


def collect_openai_stream(stream) -> tuple[str, list, list]:
    """(text, content pieces, all chunks)"""
    chunks = list(stream)
    pieces = [
        c.choices[0].delta.content
        for c in chunks
        if c.choices and c.choices[0].delta and c.choices[0].delta.content
    ]
    return "".join(pieces), pieces, chunks


def usage_chunks(chunks: list) -> list:
    return [c for c in chunks if getattr(c, "usage", None) is not None]


def fake_reply(upstream: FakeUpstream, text: str) -> str:
    return f"Hello from {upstream.name}. You said: {text}"


# ---------------------------------------------------------------- OpenAI SDK, mock


def test_openai_chat_mock(oai: openai.OpenAI) -> None:
    text = prompt()
    r = oai.chat.completions.create(
        model=MOCK_CHAT_MODEL, messages=[{"role": "user", "content": text}]
    )
    assert r.object == "chat.completion"
    assert len(r.choices) == 1
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content == f"Echo: {text}"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage is not None
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_openai_chat_mock_echoes_last_user_message(oai: openai.OpenAI) -> None:
    text = prompt()
    r = oai.chat.completions.create(
        model=MOCK_CHAT_MODEL,
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {"role": "user", "content": text},
        ],
    )
    assert r.choices[0].message.content == f"Echo: {text}"


def test_openai_stream_mock_without_usage(oai: openai.OpenAI) -> None:
    text = prompt()
    stream = oai.chat.completions.create(
        model=MOCK_CHAT_MODEL, messages=[{"role": "user", "content": text}], stream=True
    )
    got, pieces, chunks = collect_openai_stream(stream)
    assert got == f"Echo: {text}"
    # one word per chunk
    assert len(pieces) == len(got.split()), pieces
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert usage_chunks(chunks) == [], "usage chunk sent although the client did not ask"
    assert all(c.choices for c in chunks), "a chunk without choices (the usage chunk) leaked"
    assert chunks[-1].choices[0].finish_reason == "stop" or any(
        c.choices[0].finish_reason == "stop" for c in chunks
    )


def test_openai_stream_mock_with_usage(oai: openai.OpenAI) -> None:
    text = prompt()
    stream = oai.chat.completions.create(
        model=MOCK_CHAT_MODEL,
        messages=[{"role": "user", "content": text}],
        stream=True,
        stream_options={"include_usage": True},
    )
    got, _, chunks = collect_openai_stream(stream)
    assert got == f"Echo: {text}"
    with_usage = usage_chunks(chunks)
    assert len(with_usage) == 1, f"expected one usage chunk, got {len(with_usage)}"
    last = with_usage[0]
    assert last is chunks[-1], "the usage chunk must be the last one"
    assert last.choices == []
    assert last.usage.prompt_tokens > 0 and last.usage.completion_tokens > 0


def test_openai_embeddings_mock(oai: openai.OpenAI, http) -> None:
    # The SDK asks for base64 by default and decodes it.
    r = oai.embeddings.create(model=MOCK_EMBED_MODEL, input=["alpha", "beta"])
    assert r.object == "list"
    assert [d.index for d in r.data] == [0, 1]
    a, b = r.data[0].embedding, r.data[1].embedding
    assert len(a) > 0 and len(a) == len(b)
    for vector in (a, b):
        assert all(isinstance(x, float) for x in vector)
        assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, abs_tol=1e-3)
    assert a != b
    assert r.usage.prompt_tokens > 0

    again = oai.embeddings.create(model=MOCK_EMBED_MODEL, input="alpha")
    assert again.data[0].embedding == a, "mock embeddings must be deterministic"

    # The same vector as plain floats.
    raw = http.post(
        "/v1/embeddings",
        headers={"Authorization": f"Bearer {CLIENT_KEY}"},
        json={"model": MOCK_EMBED_MODEL, "input": "alpha", "encoding_format": "float"},
    )
    assert raw.status_code == 200, raw.text
    floats = raw.json()["data"][0]["embedding"]
    assert isinstance(floats, list) and len(floats) == len(a)
    assert all(math.isclose(x, y, abs_tol=1e-6) for x, y in zip(floats, a))


def test_openai_models_list(oai: openai.OpenAI) -> None:
    ids = {m.id for m in oai.models.list()}
    for model in (MOCK_CHAT_MODEL, MOCK_CLAUDE_MODEL, MOCK_EMBED_MODEL, FAKE_OPENAI_MODEL, FAKE_ANTHROPIC_MODEL):
        assert model in ids, f"{model} missing from /v1/models: {sorted(ids)}"


def test_openai_bad_key(gateway: Gateway) -> None:
    client = gateway.openai_client(api_key="fk-not-a-key")
    with pytest.raises(openai.AuthenticationError) as info:
        client.chat.completions.create(
            model=MOCK_CHAT_MODEL, messages=[{"role": "user", "content": "hi"}]
        )
    assert info.value.status_code == 401
    error = info.value.response.json()["error"]
    assert {"message", "type", "code"} <= set(error), error
    assert "fk-not-a-key" not in info.value.response.text


def test_openai_unknown_model(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        oai.chat.completions.create(
            model="no-such-model-anywhere", messages=[{"role": "user", "content": "hi"}]
        )
    assert info.value.status_code == 404
    error = info.value.response.json()["error"]
    assert {"message", "type", "code"} <= set(error), error
    assert "no-such-model-anywhere" in error["message"]


# ---------------------------------------------------- OpenAI SDK, fake OpenAI upstream


def test_openai_chat_fake_upstream(oai: openai.OpenAI, fake_openai: FakeUpstream) -> None:
    text = prompt()
    r = oai.chat.completions.create(
        model=FAKE_OPENAI_MODEL, messages=[{"role": "user", "content": text}]
    )
    assert r.choices[0].message.content == fake_reply(fake_openai, text)
    assert r.usage is not None and r.usage.completion_tokens > 0

    seen = one_upstream_request(fake_openai, text, "/v1/chat/completions")
    assert seen.header("authorization") == f"Bearer {OPENAI_UPSTREAM_KEY}"
    assert seen.json["model"] == FAKE_OPENAI_MODEL
    assert seen.json["messages"] == [{"role": "user", "content": text}]
    assert_no_client_key(seen)


def test_openai_model_mapping(oai: openai.OpenAI, fake_openai: FakeUpstream) -> None:
    text = prompt()
    r = oai.chat.completions.create(
        model=FAKE_OPENAI_ALIAS, messages=[{"role": "user", "content": text}]
    )
    assert r.choices[0].message.content == fake_reply(fake_openai, text)
    seen = one_upstream_request(fake_openai, text, "/v1/chat/completions")
    assert seen.json["model"] == FAKE_OPENAI_ALIAS_TARGET
    assert seen.header("authorization") == f"Bearer {OPENAI_UPSTREAM_KEY}"


def test_openai_stream_fake_upstream_without_usage(
    oai: openai.OpenAI, fake_openai: FakeUpstream
) -> None:
    text = prompt()
    stream = oai.chat.completions.create(
        model=FAKE_OPENAI_MODEL, messages=[{"role": "user", "content": text}], stream=True
    )
    got, pieces, chunks = collect_openai_stream(stream)
    assert got == fake_reply(fake_openai, text)
    assert len(pieces) > 1, "the stream arrived as one piece"
    assert usage_chunks(chunks) == [], "the client got a usage chunk it did not ask for"
    assert all(c.choices for c in chunks), "a chunk without choices (the usage chunk) leaked"

    seen = one_upstream_request(fake_openai, text, "/v1/chat/completions")
    assert seen.json.get("stream") is True
    assert (seen.json.get("stream_options") or {}).get("include_usage") is True, (
        f"gateway did not ask the upstream for usage: {seen.json}"
    )
    assert seen.header("authorization") == f"Bearer {OPENAI_UPSTREAM_KEY}"
    assert_no_client_key(seen)


def test_openai_stream_fake_upstream_with_usage(
    oai: openai.OpenAI, fake_openai: FakeUpstream
) -> None:
    text = prompt()
    stream = oai.chat.completions.create(
        model=FAKE_OPENAI_MODEL,
        messages=[{"role": "user", "content": text}],
        stream=True,
        stream_options={"include_usage": True},
    )
    got, _, chunks = collect_openai_stream(stream)
    assert got == fake_reply(fake_openai, text)
    with_usage = usage_chunks(chunks)
    assert len(with_usage) == 1
    assert with_usage[0] is chunks[-1] and with_usage[0].choices == []
    # the fake's own numbers, passed through untouched
    assert with_usage[0].usage.completion_tokens == len(got.split())
    seen = one_upstream_request(fake_openai, text, "/v1/chat/completions")
    assert seen.json["stream_options"]["include_usage"] is True


def test_openai_stream_is_relayed_event_by_event(
    oai: openai.OpenAI, fake_openai: FakeUpstream
) -> None:
    """The slow model pauses ~0.25 s between events; a buffering gateway
    would deliver them all at once at the end."""
    text = prompt()
    started = time.monotonic()
    stream = oai.chat.completions.create(
        model=FAKE_OPENAI_SLOW_MODEL, messages=[{"role": "user", "content": text}], stream=True
    )
    arrivals = []
    pieces = []
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic() - started)
            pieces.append(chunk.choices[0].delta.content)
    assert "".join(pieces) == fake_reply(fake_openai, text)
    spread = arrivals[-1] - arrivals[0]
    assert spread > 0.25 * (len(arrivals) - 1) * 0.5, (
        f"content chunks arrived too close together ({spread:.2f}s for {len(arrivals)}): buffered?"
    )


# ---------------------------------------------------------------- Anthropic SDK, mock


def test_anthropic_create_mock(claude: anthropic.Anthropic) -> None:
    text = prompt()
    m = claude.messages.create(
        model=MOCK_CLAUDE_MODEL, max_tokens=100, messages=[{"role": "user", "content": text}]
    )
    assert m.type == "message" and m.role == "assistant"
    assert [b.type for b in m.content] == ["text"]
    assert m.content[0].text == f"Echo: {text}"
    assert m.usage.input_tokens > 0 and m.usage.output_tokens > 0


def test_anthropic_stream_mock(claude: anthropic.Anthropic) -> None:
    text = prompt()
    with claude.messages.stream(
        model=MOCK_CLAUDE_MODEL, max_tokens=100, messages=[{"role": "user", "content": text}]
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(pieces) == f"Echo: {text}"
    assert len(pieces) == len(f"Echo: {text}".split()), pieces
    assert final.content[0].text == f"Echo: {text}"
    assert final.usage.input_tokens > 0 and final.usage.output_tokens > 0


def test_anthropic_count_tokens_mock(claude: anthropic.Anthropic) -> None:
    short = claude.messages.count_tokens(
        model=MOCK_CLAUDE_MODEL, messages=[{"role": "user", "content": "hi"}]
    )
    long = claude.messages.count_tokens(
        model=MOCK_CLAUDE_MODEL,
        messages=[{"role": "user", "content": "hi " * 200}],
    )
    assert short.input_tokens > 0
    assert long.input_tokens > short.input_tokens


def test_anthropic_bad_key(gateway: Gateway) -> None:
    client = gateway.anthropic_client(api_key="fk-not-a-key")
    with pytest.raises(anthropic.AuthenticationError) as info:
        client.messages.create(
            model=MOCK_CLAUDE_MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    assert info.value.status_code == 401
    body = info.value.response.json()
    assert body.get("type") == "error", body
    assert {"type", "message"} <= set(body["error"]), body
    assert body["error"]["type"] == "authentication_error", body


def test_anthropic_unknown_model(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as info:
        claude.messages.create(
            model="claude-no-such-model", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    body = info.value.response.json()
    assert body.get("type") == "error" and body["error"]["type"] == "not_found_error", body


# ------------------------------------------------- Anthropic SDK, fake Anthropic upstream


def assert_anthropic_upstream_auth(seen) -> None:
    assert seen.header("x-api-key") == ANTHROPIC_UPSTREAM_KEY
    assert seen.header("anthropic-version"), "no anthropic-version header upstream"
    assert_no_client_key(seen)


def test_anthropic_create_fake_upstream(
    claude: anthropic.Anthropic, fake_anthropic: FakeUpstream
) -> None:
    text = prompt()
    m = claude.messages.create(
        model=FAKE_ANTHROPIC_MODEL,
        max_tokens=100,
        system="be brief",
        messages=[{"role": "user", "content": text}],
    )
    assert m.content[0].text == fake_reply(fake_anthropic, text)
    assert m.stop_reason == "end_turn"
    assert m.usage.input_tokens > 0 and m.usage.output_tokens > 0

    seen = one_upstream_request(fake_anthropic, text, "/v1/messages")
    assert_anthropic_upstream_auth(seen)
    assert seen.json["model"] == FAKE_ANTHROPIC_MODEL
    assert seen.json["max_tokens"] == 100
    assert seen.json["system"] == "be brief"
    assert seen.json["messages"] == [{"role": "user", "content": text}]


def test_anthropic_stream_fake_upstream(
    claude: anthropic.Anthropic, fake_anthropic: FakeUpstream
) -> None:
    text = prompt()
    with claude.messages.stream(
        model=FAKE_ANTHROPIC_MODEL, max_tokens=100, messages=[{"role": "user", "content": text}]
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    expected = fake_reply(fake_anthropic, text)
    assert "".join(pieces) == expected
    assert len(pieces) == len(expected.split()), pieces
    assert final.content[0].text == expected
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens > 0
    assert final.usage.output_tokens == len(expected.split())

    seen = one_upstream_request(fake_anthropic, text, "/v1/messages")
    assert seen.json.get("stream") is True
    assert_anthropic_upstream_auth(seen)


def test_anthropic_raw_stream_events_fake_upstream(http, fake_anthropic: FakeUpstream) -> None:
    """Every upstream event, ping included (the SDK hides it), reaches the
    client in order and as a well-formed `event:` + `data:` pair."""
    text = prompt()
    events = []
    with http.stream(
        "POST",
        "/v1/messages",
        headers={"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"},
        json={
            "model": FAKE_ANTHROPIC_MODEL,
            "max_tokens": 100,
            "stream": True,
            "messages": [{"role": "user", "content": text}],
        },
    ) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        events = parse_sse(response.iter_lines())
    names = [name for name, _ in events]
    words = len(fake_reply(fake_anthropic, text).split())
    assert names == (
        ["message_start", "content_block_start", "ping"]
        + ["content_block_delta"] * words
        + ["content_block_stop", "message_delta", "message_stop"]
    )
    for name, data in events:
        assert json.loads(data)["type"] == name

