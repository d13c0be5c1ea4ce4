"""Translation between dialects, end to end, with the official SDKs.

The `anthropic` SDK talks to a model served by an `openai`-kind endpoint and
the `openai` SDK to one served by an `anthropic`-kind endpoint; aigate
translates the request, the answer and the stream. Each test checks what
the SDK got (text, tool calls, finish reasons, usage, errors as the SDK's
own exception types) and what the fake upstream received (the other
dialect's body, auth and headers).

The gateway of this module is its own (`provider = "openai"`, not the
session gateway's `openai_compatible`), with the same endpoint ids and
model names as the session config, so the usage-log check of conftest
applies unchanged when the module ends. Errors in the middle of a stream
leave records without usage by nature, so they go to a second gateway.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any, Iterator

import anthropic
import openai
import pytest

from fake_scripts import ErrorReply, StreamErrorReply, ToolCall, ToolCallReply, output_tokens
from fake_upstream import FakeUpstream, _prompt_tokens
from support import (
    ANTHROPIC_UPSTREAM_KEY,
    CLIENT_KEY,
    FAKE_ANTHROPIC_MODEL,
    FAKE_OPENAI_ALIAS,
    FAKE_OPENAI_ALIAS_TARGET,
    FAKE_OPENAI_MODEL,
    OPENAI_UPSTREAM_KEY,
    Gateway,
    check_usage_against_ledger,
    parse_sse,
    toml_str,
)

# The output cap aigate sends Anthropic when an OpenAI client gives none.
DEFAULT_MAX_TOKENS = 777
ANTHROPIC_VERSION = "2023-06-01"

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city"],
}
WEATHER_DESCRIPTION = "Current weather in a city"
ANTHROPIC_TOOL = {
    "name": "get_weather",
    "description": WEATHER_DESCRIPTION,
    "input_schema": WEATHER_SCHEMA,
}
OPENAI_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": WEATHER_DESCRIPTION,
        "parameters": WEATHER_SCHEMA,
    },
}


def translation_config(port: int, data_dir: Path, openai_url: str, anthropic_url: str) -> str:
    return f"""\
[server]
listen = "127.0.0.1:{port}"
data_dir = {toml_str(str(data_dir))}

[auth]
client_keys = [{toml_str(CLIENT_KEY)}]

[limits]
ip_requests = -1
ip_error_threshold = -1

[[endpoints]]
id = "fake-openai"
provider = "openai"
base_url = {toml_str(openai_url)}
keys = [{toml_str(OPENAI_UPSTREAM_KEY)}]
models = [{toml_str(FAKE_OPENAI_MODEL)}]
model_mapping = {{ {toml_str(FAKE_OPENAI_ALIAS)} = {toml_str(FAKE_OPENAI_ALIAS_TARGET)} }}

[[endpoints]]
id = "fake-anthropic"
provider = "anthropic"
base_url = {toml_str(anthropic_url)}
keys = [{toml_str(ANTHROPIC_UPSTREAM_KEY)}]
models = [{toml_str(FAKE_ANTHROPIC_MODEL)}]
default_max_tokens = {DEFAULT_MAX_TOKENS}
"""


def start_translation_gateway(tmp_path_factory, fake_openai, fake_anthropic) -> Gateway:
    return Gateway(
        tmp_path_factory.mktemp("aigate-translation"),
        lambda port, data_dir: translation_config(
            port, data_dir, fake_openai.base_url, fake_anthropic.base_url
        ),
    ).start()


@pytest.fixture(scope="module")
def xgw(tmp_path_factory, fake_openai: FakeUpstream, fake_anthropic: FakeUpstream) -> Iterator[Gateway]:
    """The module's gateway. At the end: SIGTERM, exit 0, usage log == ledger."""
    gw = start_translation_gateway(tmp_path_factory, fake_openai, fake_anthropic)
    yield gw
    code = gw.stop()
    assert code == 0, f"aigate exited with {code} on SIGTERM; log:\n{gw.log_tail()}"
    check_usage_against_ledger(gw)


@pytest.fixture(scope="module")
def broken_gw(tmp_path_factory, fake_openai: FakeUpstream, fake_anthropic: FakeUpstream) -> Iterator[Gateway]:
    """A gateway for streams the upstream breaks off (no usage check)."""
    gw = start_translation_gateway(tmp_path_factory, fake_openai, fake_anthropic)
    yield gw
    code = gw.stop()
    assert code == 0, f"aigate exited with {code} on SIGTERM; log:\n{gw.log_tail()}"


@pytest.fixture
def claude(xgw: Gateway) -> anthropic.Anthropic:
    return xgw.anthropic_client()


@pytest.fixture
def oai(xgw: Gateway) -> openai.OpenAI:
    return xgw.openai_client()


# ---------------------------------------------------------------- helpers


def prompt() -> str:
    """A prompt with a unique marker last; non-ASCII, which must survive both ways."""
    return f"translate me, naïve café 日本語 {uuid.uuid4().hex[:12]}"


def marker_of(text: str) -> str:
    return text.rsplit(" ", 1)[-1]


def fake_reply(upstream: FakeUpstream, text: str) -> str:
    return f"Hello from {upstream.name}. You said: {text}"


def one_upstream_request(upstream: FakeUpstream, text: str, path: str):
    found = upstream.requests_containing(marker_of(text), path)
    assert len(found) == 1, f"expected exactly one upstream {path} request with {text!r}, got {len(found)}"
    return found[0]


def assert_openai_upstream_auth(seen) -> None:
    """A translated request to an OpenAI-kind upstream: our key as Bearer,
    none of the Anthropic client's headers."""
    assert seen.header("authorization") == f"Bearer {OPENAI_UPSTREAM_KEY}"
    assert seen.header("x-api-key") is None, seen.headers
    assert seen.header("anthropic-version") is None, seen.headers
    assert not seen.contains(CLIENT_KEY), f"the client key reached the upstream: {seen.headers}"


def assert_anthropic_upstream_auth(seen) -> None:
    """A translated request to an Anthropic upstream: x-api-key and
    anthropic-version, no Authorization."""
    assert seen.header("x-api-key") == ANTHROPIC_UPSTREAM_KEY
    assert seen.header("anthropic-version") == ANTHROPIC_VERSION
    assert seen.header("authorization") is None, seen.headers
    assert not seen.contains(CLIENT_KEY), f"the client key reached the upstream: {seen.headers}"


def anthropic_text(content: Any) -> str:
    """The text of an Anthropic message `content` (string or blocks)."""
    if isinstance(content, str):
        return content
    return "".join(b["text"] for b in content if b.get("type") == "text")


def output_cap(body: dict) -> Any:
    return body.get("max_completion_tokens", body.get("max_tokens"))


def check_anthropic_event_grammar(events: list[tuple[str | None, str]]) -> list[dict]:
    """Checks a raw Anthropic stream against the protocol: one message_start
    first, blocks opened, filled and closed one at a time with consecutive
    indices and deltas of their own type, then message_delta and
    message_stop. Returns the blocks as {"block": start, "deltas": [...]}."""
    names = [name for name, _ in events]
    datas = [json.loads(data) for _, data in events]
    for name, data in zip(names, datas):
        assert data["type"] == name, (name, data)
    assert names[0] == "message_start" and names.count("message_start") == 1, names
    assert names[-2:] == ["message_delta", "message_stop"], names
    assert names.count("message_delta") == 1 and names.count("message_stop") == 1, names
    delta_type = {"text": "text_delta", "tool_use": "input_json_delta", "thinking": "thinking_delta"}
    blocks: list[dict] = []
    open_index = None
    for name, data in zip(names, datas):
        if name == "content_block_start":
            assert open_index is None, f"block {data['index']} opened while {open_index} is open"
            assert data["index"] == len(blocks), f"block index {data['index']}, expected {len(blocks)}"
            open_index = data["index"]
            blocks.append({"block": data["content_block"], "deltas": []})
        elif name == "content_block_delta":
            assert data["index"] == open_index, f"delta for block {data['index']}, open: {open_index}"
            kind = blocks[open_index]["block"]["type"]
            allowed = {delta_type[kind], "signature_delta"} if kind == "thinking" else {delta_type[kind]}
            assert data["delta"]["type"] in allowed, (kind, data)
            blocks[open_index]["deltas"].append(data["delta"])
        elif name == "content_block_stop":
            assert data["index"] == open_index, f"stop for block {data['index']}, open: {open_index}"
            open_index = None
        elif name in ("message_delta", "message_stop"):
            assert open_index is None, f"{name} while block {open_index} is open"
    return blocks


def collect_tool_calls(chunks: list) -> dict[int, dict]:
    """Tool-call deltas of an OpenAI stream, by index: id, name, argument fragments."""
    calls: dict[int, dict] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or []:
                if delta.index not in calls:
                    assert delta.id, f"the first delta of tool call {delta.index} has no id"
                    assert delta.function and delta.function.name, "the first delta has no name"
                    calls[delta.index] = {"id": delta.id, "name": delta.function.name, "fragments": []}
                else:
                    assert delta.id in (None, calls[delta.index]["id"]), "a tool call changed its id"
                if delta.function and delta.function.arguments:
                    calls[delta.index]["fragments"].append(delta.function.arguments)
    return calls


def weather_calls() -> list[ToolCall]:
    return [
        ToolCall("get_weather", {"city": "Paris", "unit": "celsius"}, id="toolu_01" + uuid.uuid4().hex[:22]),
        ToolCall("get_weather", {"city": "Tokyo", "unit": "celsius"}, id="toolu_01" + uuid.uuid4().hex[:22]),
    ]


# ---------------------------------------------- Anthropic SDK → openai-kind upstream


def test_anthropic_sdk_create_via_openai_upstream(
    claude: anthropic.Anthropic, fake_openai: FakeUpstream
) -> None:
    text = prompt()
    m = claude.messages.create(
        model=FAKE_OPENAI_MODEL,
        max_tokens=100,
        system="be brief",
        messages=[{"role": "user", "content": text}],
    )
    expected = fake_reply(fake_openai, text)
    assert m.type == "message" and m.role == "assistant"
    assert m.id.startswith("msg_"), m.id
    assert m.model == FAKE_OPENAI_MODEL
    assert [b.type for b in m.content] == ["text"]
    assert m.content[0].text == expected
    assert m.stop_reason == "end_turn"

    seen = one_upstream_request(fake_openai, text, "/v1/chat/completions")
    assert_openai_upstream_auth(seen)
    assert seen.json["model"] == FAKE_OPENAI_MODEL
    assert seen.json["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": text},
    ]
    assert output_cap(seen.json) == 100
    assert not seen.json.get("stream") and "stream_options" not in seen.json
    # the fake's own numbers, mapped
    assert m.usage.input_tokens == _prompt_tokens(seen.json)
    assert m.usage.output_tokens == len(expected.split())


def test_anthropic_sdk_stream_via_openai_upstream(
    claude: anthropic.Anthropic, fake_openai: FakeUpstream
) -> None:
    text = prompt()
    with claude.messages.stream(
        model=FAKE_OPENAI_MODEL,
        max_tokens=100,
        system="be brief",
        messages=[{"role": "user", "content": text}],
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    expected = fake_reply(fake_openai, text)
    assert "".join(pieces) == expected
    assert len(pieces) == len(expected.split()), pieces
    assert final.id.startswith("msg_") and final.model == FAKE_OPENAI_MODEL
    assert [b.type for b in final.content] == ["text"]
    assert final.content[0].text == expected
    assert final.stop_reason == "end_turn"

    seen = one_upstream_request(fake_openai, text, "/v1/chat/completions")
    assert_openai_upstream_auth(seen)
    assert seen.json.get("stream") is True
    assert (seen.json.get("stream_options") or {}).get("include_usage") is True, seen.json
    assert seen.json["messages"][0] == {"role": "system", "content": "be brief"}
    assert seen.json["messages"][1:] == [{"role": "user", "content": text}]
    assert final.usage.input_tokens == _prompt_tokens(seen.json)
    assert final.usage.output_tokens == len(expected.split())


def test_anthropic_raw_events_via_openai_upstream(xgw: Gateway, fake_openai: FakeUpstream) -> None:
    """The event grammar itself: text block 0, tool_use block 1 with its
    input in several input_json_delta fragments, stop_reason tool_use."""
    text = prompt()
    call = ToolCall("get_weather", {"city": "Paris", "unit": "celsius"}, id="call_" + uuid.uuid4().hex[:24])
    reply = ToolCallReply(calls=[call], text="Let me check.")
    fake_openai.script(marker_of(text), reply)
    http = xgw.http_client(base_url=xgw.base_url)
    with http.stream(
        "POST",
        "/v1/messages",
        headers={"x-api-key": CLIENT_KEY, "anthropic-version": ANTHROPIC_VERSION},
        json={
            "model": FAKE_OPENAI_MODEL,
            "max_tokens": 200,
            "stream": True,
            "tools": [ANTHROPIC_TOOL],
            "messages": [{"role": "user", "content": text}],
        },
    ) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        events = parse_sse(response.iter_lines())

    blocks = check_anthropic_event_grammar(events)
    assert [b["block"]["type"] for b in blocks] == ["text", "tool_use"]
    assert "".join(d["text"] for d in blocks[0]["deltas"]) == "Let me check."
    tool = blocks[1]["block"]
    assert (tool["id"], tool["name"], tool["input"]) == (call.id, "get_weather", {})
    fragments = [d["partial_json"] for d in blocks[1]["deltas"] if d["partial_json"]]
    assert len(fragments) > 1, "the tool input arrived in one piece"
    assert json.loads("".join(fragments)) == call.arguments
    start = json.loads(events[0][1])["message"]
    assert start["role"] == "assistant" and start["model"] == FAKE_OPENAI_MODEL and start["content"] == []
    message_delta = json.loads(events[-2][1])
    assert message_delta["delta"]["stop_reason"] == "tool_use"
    assert message_delta["usage"]["output_tokens"] == output_tokens(reply)

    seen = one_upstream_request(fake_openai, text, "/v1/chat/completions")
    assert seen.json["tools"] == [OPENAI_TOOL]
    # OpenAI reports usage only at the end, so the input count comes here
    assert message_delta["usage"]["input_tokens"] == _prompt_tokens(seen.json)


def test_anthropic_sdk_tool_use_via_openai_upstream(
    claude: anthropic.Anthropic, fake_openai: FakeUpstream
) -> None:
    text = prompt()
    call = ToolCall("get_weather", {"city": "Paris", "unit": "celsius"}, id="call_" + uuid.uuid4().hex[:24])
    reply = ToolCallReply(calls=[call], text="Let me check.")
    fake_openai.script(marker_of(text), reply)
    m = claude.messages.create(
        model=FAKE_OPENAI_MODEL,
        max_tokens=200,
        tools=[ANTHROPIC_TOOL],
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": text}],
    )
    assert m.stop_reason == "tool_use"
    assert [b.type for b in m.content] == ["text", "tool_use"]
    assert m.content[0].text == "Let me check."
    tool = m.content[1]
    assert (tool.id, tool.name, tool.input) == (call.id, "get_weather", call.arguments)
    assert m.usage.output_tokens == output_tokens(reply)

    seen = one_upstream_request(fake_openai, text, "/v1/chat/completions")
    assert_openai_upstream_auth(seen)
    assert seen.json["tools"] == [OPENAI_TOOL]
    assert seen.json["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}


def test_anthropic_sdk_tool_use_stream_via_openai_upstream(
    claude: anthropic.Anthropic, fake_openai: FakeUpstream
) -> None:
    """Two parallel calls, each with its arguments in several fragments."""
    text = prompt()
    calls = [
        ToolCall("get_weather", {"city": "Paris", "unit": "celsius"}, id="call_" + uuid.uuid4().hex[:24]),
        ToolCall("get_weather", {"city": "Tokyo"}, id="call_" + uuid.uuid4().hex[:24]),
    ]
    reply = ToolCallReply(calls=calls, text="Checking both.")
    fake_openai.script(marker_of(text), reply)
    with claude.messages.stream(
        model=FAKE_OPENAI_MODEL,
        max_tokens=200,
        tools=[ANTHROPIC_TOOL],
        messages=[{"role": "user", "content": text}],
    ) as stream:
        events = list(stream)  # every event parsed by the SDK
        final = stream.get_final_message()

    kinds = [e.type for e in events]
    assert kinds.count("message_start") == 1 and kinds[-1] == "message_stop", kinds
    assert kinds.count("input_json") > 2, "tool input did not arrive as several fragments"
    assert final.stop_reason == "tool_use"
    assert [b.type for b in final.content] == ["text", "tool_use", "tool_use"]
    assert final.content[0].text == "Checking both."
    got = [(b.id, b.name, b.input) for b in final.content[1:]]
    assert got == [(c.id, c.name, c.arguments) for c in calls]
    assert final.usage.output_tokens == output_tokens(reply)

    seen = one_upstream_request(fake_openai, text, "/v1/chat/completions")
    assert seen.json.get("stream") is True
    assert seen.json["stream_options"]["include_usage"] is True
    assert seen.json["tools"] == [OPENAI_TOOL]
    assert final.usage.input_tokens == _prompt_tokens(seen.json)


def test_anthropic_sdk_tool_result_round_trip_to_openai_upstream(
    claude: anthropic.Anthropic, fake_openai: FakeUpstream
) -> None:
    text = prompt()
    call_id = "toolu_01" + uuid.uuid4().hex[:22]
    m = claude.messages.create(
        model=FAKE_OPENAI_MODEL,
        max_tokens=100,
        tools=[ANTHROPIC_TOOL],
        messages=[
            {"role": "user", "content": text},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": call_id, "name": "get_weather", "input": {"city": "Paris"}},
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call_id, "content": "18 C and sunny"}],
            },
        ],
    )
    assert m.content[0].text == fake_reply(fake_openai, text)

    seen = one_upstream_request(fake_openai, text, "/v1/chat/completions")
    user, assistant, tool = seen.json["messages"]
    assert user == {"role": "user", "content": text}
    assert assistant["role"] == "assistant" and assistant["content"] == "Let me check."
    [sent_call] = assistant["tool_calls"]
    assert (sent_call["id"], sent_call["type"]) == (call_id, "function")
    assert sent_call["function"]["name"] == "get_weather"
    assert json.loads(sent_call["function"]["arguments"]) == {"city": "Paris"}
    assert tool == {"role": "tool", "tool_call_id": call_id, "content": "18 C and sunny"}


def test_anthropic_sdk_model_mapping_across_dialects(
    claude: anthropic.Anthropic, fake_openai: FakeUpstream
) -> None:
    text = prompt()
    m = claude.messages.create(
        model=FAKE_OPENAI_ALIAS, max_tokens=50, messages=[{"role": "user", "content": text}]
    )
    assert m.model == FAKE_OPENAI_ALIAS, "the client must see the name it asked for"
    assert m.content[0].text == fake_reply(fake_openai, text)
    seen = one_upstream_request(fake_openai, text, "/v1/chat/completions")
    assert seen.json["model"] == FAKE_OPENAI_ALIAS_TARGET


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize(
    "status,error_type,exception",
    [
        (400, "invalid_request_error", anthropic.BadRequestError),
        (404, "not_found_error", anthropic.NotFoundError),
    ],
    ids=["400", "404"],
)
def test_anthropic_sdk_gets_openai_upstream_error(
    claude: anthropic.Anthropic,
    fake_openai: FakeUpstream,
    stream: bool,
    status: int,
    error_type: str,
    exception: type,
) -> None:
    text = prompt()
    message = f"Invalid value for 'messages': refused ({uuid.uuid4().hex[:6]})."
    fake_openai.script(marker_of(text), ErrorReply(status, message, code="invalid_value"))
    request = dict(model=FAKE_OPENAI_MODEL, max_tokens=50, messages=[{"role": "user", "content": text}])
    with pytest.raises(exception) as info:
        if stream:
            with claude.messages.stream(**request) as s:
                s.get_final_message()
        else:
            claude.messages.create(**request)
    assert info.value.status_code == status
    assert info.value.body == {"type": "error", "error": {"type": error_type, "message": message}}
    one_upstream_request(fake_openai, text, "/v1/chat/completions")  # refused once, not retried


def test_anthropic_sdk_error_mid_stream_via_openai_upstream(
    broken_gw: Gateway, fake_openai: FakeUpstream
) -> None:
    """The upstream's in-stream error becomes an `event: error` the SDK raises."""
    text = prompt()
    reply = StreamErrorReply("The server had an error while processing your request.")
    fake_openai.script(marker_of(text), reply)
    claude = broken_gw.anthropic_client()
    pieces: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as info:
        with claude.messages.stream(
            model=FAKE_OPENAI_MODEL, max_tokens=50, messages=[{"role": "user", "content": text}]
        ) as stream:
            for piece in stream.text_stream:
                pieces.append(piece)
    assert "".join(pieces) == reply.text, "the text before the failure was lost"
    body = info.value.body
    assert body["type"] == "error", body
    assert reply.message in body["error"]["message"], body


def test_anthropic_sdk_options_via_openai_upstream(
    claude: anthropic.Anthropic, fake_openai: FakeUpstream
) -> None:
    """Thinking becomes reasoning_effort; stop sequences and metadata map."""
    text = prompt()
    claude.messages.create(
        model=FAKE_OPENAI_MODEL,
        max_tokens=3000,
        thinking={"type": "enabled", "budget_tokens": 2048},
        stop_sequences=["END"],
        metadata={"user_id": "user-42"},
        messages=[{"role": "user", "content": text}],
    )
    seen = one_upstream_request(fake_openai, text, "/v1/chat/completions")
    assert seen.json["reasoning_effort"] == "low"
    assert seen.json["stop"] == ["END"]
    assert seen.json["user"] == "user-42"
    assert "thinking" not in seen.json and "metadata" not in seen.json


def test_anthropic_sdk_count_tokens_for_openai_upstream_is_local(
    claude: anthropic.Anthropic, fake_openai: FakeUpstream
) -> None:
    text = prompt()
    counted = claude.messages.count_tokens(
        model=FAKE_OPENAI_MODEL, messages=[{"role": "user", "content": text}]
    )
    assert counted.input_tokens > 0
    assert fake_openai.requests_containing(marker_of(text)) == [], "count_tokens went upstream"


# ---------------------------------------------- OpenAI SDK → anthropic-kind upstream


def test_openai_sdk_create_via_anthropic_upstream(
    oai: openai.OpenAI, fake_anthropic: FakeUpstream
) -> None:
    text = prompt()
    r = oai.chat.completions.create(
        model=FAKE_ANTHROPIC_MODEL,
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": text}],
    )
    expected = fake_reply(fake_anthropic, text)
    assert r.object == "chat.completion" and r.model == FAKE_ANTHROPIC_MODEL
    assert len(r.choices) == 1
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content == expected
    assert r.choices[0].finish_reason == "stop"

    seen = one_upstream_request(fake_anthropic, text, "/v1/messages")
    assert_anthropic_upstream_auth(seen)
    assert seen.json["model"] == FAKE_ANTHROPIC_MODEL
    assert seen.json["system"] in ("be brief", [{"type": "text", "text": "be brief"}]), seen.json
    assert [m["role"] for m in seen.json["messages"]] == ["user"]
    assert anthropic_text(seen.json["messages"][0]["content"]) == text
    assert seen.json["max_tokens"] == DEFAULT_MAX_TOKENS, "the endpoint's default_max_tokens"
    assert not seen.json.get("stream")
    assert r.usage.prompt_tokens == _prompt_tokens(seen.json)
    assert r.usage.completion_tokens == len(expected.split())
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_openai_sdk_stream_via_anthropic_upstream(
    oai: openai.OpenAI, fake_anthropic: FakeUpstream
) -> None:
    text = prompt()
    chunks = list(
        oai.chat.completions.create(
            model=FAKE_ANTHROPIC_MODEL,
            messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": text}],
            max_completion_tokens=60,
            stream=True,
        )
    )
    expected = fake_reply(fake_anthropic, text)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(pieces) == expected
    assert len(pieces) == len(expected.split()), pieces
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert all(c.choices for c in chunks), "a chunk without choices (a usage chunk) leaked"
    assert all(c.usage is None for c in chunks), "usage sent although the client did not ask"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({c.id for c in chunks}) == 1 and chunks[0].id, "chunk ids must be one stable id"
    assert all(c.model == FAKE_ANTHROPIC_MODEL for c in chunks)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason]
    assert finishes == ["stop"] and chunks[-1].choices[0].finish_reason == "stop"

    seen = one_upstream_request(fake_anthropic, text, "/v1/messages")
    assert_anthropic_upstream_auth(seen)
    assert seen.json.get("stream") is True
    assert seen.json["max_tokens"] == 60
    assert seen.json["system"] in ("be brief", [{"type": "text", "text": "be brief"}]), seen.json


def test_openai_sdk_stream_with_usage_via_anthropic_upstream(
    oai: openai.OpenAI, fake_anthropic: FakeUpstream
) -> None:
    text = prompt()
    chunks = list(
        oai.chat.completions.create(
            model=FAKE_ANTHROPIC_MODEL,
            messages=[{"role": "user", "content": text}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    expected = fake_reply(fake_anthropic, text)
    got = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert got == expected
    with_usage = [c for c in chunks if c.usage is not None]
    assert len(with_usage) == 1, f"expected one usage chunk, got {len(with_usage)}"
    last = with_usage[0]
    assert last is chunks[-1] and last.choices == [], "usage must come last, in a chunk without choices"
    seen = one_upstream_request(fake_anthropic, text, "/v1/messages")
    assert last.usage.prompt_tokens == _prompt_tokens(seen.json)
    assert last.usage.completion_tokens == len(expected.split())
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens


def test_openai_sdk_tool_calls_via_anthropic_upstream(
    oai: openai.OpenAI, fake_anthropic: FakeUpstream
) -> None:
    text = prompt()
    call = weather_calls()[0]
    reply = ToolCallReply(calls=[call], text="Let me check.")
    fake_anthropic.script(marker_of(text), reply)
    r = oai.chat.completions.create(
        model=FAKE_ANTHROPIC_MODEL,
        messages=[{"role": "user", "content": text}],
        tools=[OPENAI_TOOL],
        tool_choice="required",
        max_tokens=300,
    )
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me check."
    [got] = choice.message.tool_calls
    assert (got.id, got.type, got.function.name) == (call.id, "function", "get_weather")
    assert json.loads(got.function.arguments) == call.arguments
    assert r.usage.completion_tokens == output_tokens(reply)

    seen = one_upstream_request(fake_anthropic, text, "/v1/messages")
    assert_anthropic_upstream_auth(seen)
    assert seen.json["tools"] == [ANTHROPIC_TOOL]
    assert seen.json["tool_choice"] == {"type": "any"}
    assert seen.json["max_tokens"] == 300


def test_openai_sdk_tool_calls_stream_via_anthropic_upstream(
    oai: openai.OpenAI, fake_anthropic: FakeUpstream
) -> None:
    """Two parallel tool_use blocks with input_json_delta fragments become two
    tool calls with stable index, id and name, arguments in fragments."""
    text = prompt()
    calls = weather_calls()
    reply = ToolCallReply(calls=calls, text="Checking both.")
    fake_anthropic.script(marker_of(text), reply)
    chunks = list(
        oai.chat.completions.create(
            model=FAKE_ANTHROPIC_MODEL,
            messages=[{"role": "user", "content": text}],
            tools=[OPENAI_TOOL],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == "Checking both."
    got = collect_tool_calls(chunks)
    assert sorted(got) == [0, 1]
    for index, call in enumerate(calls):
        assert (got[index]["id"], got[index]["name"]) == (call.id, call.name)
        assert len(got[index]["fragments"]) > 1, "arguments arrived in one piece"
        assert json.loads("".join(got[index]["fragments"])) == call.arguments
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["tool_calls"]
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.completion_tokens == output_tokens(reply)

    seen = one_upstream_request(fake_anthropic, text, "/v1/messages")
    assert seen.json.get("stream") is True
    assert seen.json["tools"] == [ANTHROPIC_TOOL]
    assert last.usage.prompt_tokens == _prompt_tokens(seen.json)


def test_openai_sdk_tool_result_round_trip_to_anthropic_upstream(
    oai: openai.OpenAI, fake_anthropic: FakeUpstream
) -> None:
    text = prompt()
    call_id = "call_" + uuid.uuid4().hex[:24]
    r = oai.chat.completions.create(
        model=FAKE_ANTHROPIC_MODEL,
        tools=[OPENAI_TOOL],
        messages=[
            {"role": "user", "content": text},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris"})},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": call_id, "content": "18 C and sunny"},
        ],
    )
    assert r.choices[0].message.content.startswith(f"Hello from {fake_anthropic.name}.")

    seen = one_upstream_request(fake_anthropic, text, "/v1/messages")
    user, assistant, result = seen.json["messages"]
    assert user["role"] == "user" and anthropic_text(user["content"]) == text
    assert assistant == {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": call_id, "name": "get_weather", "input": {"city": "Paris"}}],
    }
    assert result["role"] == "user"
    [block] = result["content"]
    assert block["type"] == "tool_result" and block["tool_use_id"] == call_id
    assert anthropic_text(block["content"]) == "18 C and sunny"


def test_openai_sdk_options_via_anthropic_upstream(
    oai: openai.OpenAI, fake_anthropic: FakeUpstream
) -> None:
    """JSON mode becomes a system instruction; stop, temperature and user map."""
    text = prompt()
    oai.chat.completions.create(
        model=FAKE_ANTHROPIC_MODEL,
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": text}],
        response_format={"type": "json_object"},
        stop=["END"],
        temperature=0.3,
        user="user-42",
    )
    seen = one_upstream_request(fake_anthropic, text, "/v1/messages")
    system = anthropic_text(seen.json["system"])
    assert system.startswith("be brief") and "JSON" in system, system
    assert "response_format" not in seen.json
    assert seen.json["stop_sequences"] == ["END"]
    assert seen.json["temperature"] == 0.3
    assert seen.json["metadata"] == {"user_id": "user-42"}


def test_openai_sdk_n_above_one_refused_for_anthropic_upstream(
    oai: openai.OpenAI, fake_anthropic: FakeUpstream
) -> None:
    text = prompt()
    with pytest.raises(openai.BadRequestError) as info:
        oai.chat.completions.create(
            model=FAKE_ANTHROPIC_MODEL, n=2, messages=[{"role": "user", "content": text}]
        )
    assert info.value.status_code == 400
    assert "n > 1" in info.value.body["message"], info.value.body
    assert fake_anthropic.requests_containing(marker_of(text)) == [], "refused, yet sent upstream"


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize(
    "status,error_type,exception",
    [
        (400, "invalid_request_error", openai.BadRequestError),
        (404, "not_found_error", openai.NotFoundError),
    ],
    ids=["400", "404"],
)
def test_openai_sdk_gets_anthropic_upstream_error(
    oai: openai.OpenAI,
    fake_anthropic: FakeUpstream,
    stream: bool,
    status: int,
    error_type: str,
    exception: type,
) -> None:
    text = prompt()
    message = f"messages.0.content: refused ({uuid.uuid4().hex[:6]})"
    fake_anthropic.script(marker_of(text), ErrorReply(status, message, type=error_type))
    with pytest.raises(exception) as info:
        result = oai.chat.completions.create(
            model=FAKE_ANTHROPIC_MODEL, messages=[{"role": "user", "content": text}], stream=stream
        )
        if stream:
            list(result)
    assert info.value.status_code == status
    body = info.value.body  # the SDK keeps the `error` object
    assert body["message"] == message, body
    assert body["type"] == "invalid_request_error", body
    one_upstream_request(fake_anthropic, text, "/v1/messages")  # refused once, not retried


def test_openai_sdk_error_mid_stream_via_anthropic_upstream(
    broken_gw: Gateway, fake_anthropic: FakeUpstream
) -> None:
    """Anthropic's `event: error` becomes an error chunk the SDK raises."""
    text = prompt()
    reply = StreamErrorReply("Overloaded", type="overloaded_error")
    fake_anthropic.script(marker_of(text), reply)
    oai = broken_gw.openai_client()
    pieces: list[str] = []
    with pytest.raises(openai.APIError) as info:
        for chunk in oai.chat.completions.create(
            model=FAKE_ANTHROPIC_MODEL, messages=[{"role": "user", "content": text}], stream=True
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
    assert "".join(pieces) == reply.text, "the text before the failure was lost"
    assert "Overloaded" in info.value.message
