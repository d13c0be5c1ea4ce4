"""Scripted answers of the fake upstream: tool calls, provider errors and
errors in the middle of a stream, each in the exact wire shape of the
provider (OpenAI Chat Completions or Anthropic Messages).

A test registers a reply for a marker with ``FakeUpstream.script(marker,
reply)``; a request whose body contains the marker gets that reply instead
of the usual echo. Markers are unique per test, so scripts never leak into
other tests running against the same fake.

Streams are shaped like the real ones: OpenAI sends a tool call's id and
name first and its ``arguments`` in several fragments, Anthropic opens a
``tool_use`` block with ``input: {}`` and sends ``input_json_delta``
fragments (the first one empty, as the API does).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Union


@dataclass
class ToolCall:
    """One call the fake model makes."""

    name: str
    arguments: dict
    id: str | None = None  # None: a provider-style id is made up

    def arguments_json(self) -> str:
        return json.dumps(self.arguments)


@dataclass
class ToolCallReply:
    """Text (optional), then one or more tool calls."""

    calls: list[ToolCall]
    text: str = ""
    fragments: int = 4  # pieces each call's arguments are streamed in


@dataclass
class ErrorReply:
    """The provider refuses the request with its own error body."""

    status: int
    message: str
    type: str = "invalid_request_error"
    code: str | None = None  # OpenAI's `code`


@dataclass
class StreamErrorReply:
    """A stream that sends some text, then the provider's in-stream error.
    Without ``stream`` the request is refused with a 500 instead."""

    message: str
    text: str = "partial answer before the failure"
    type: str = "server_error"  # Anthropic's would be e.g. "overloaded_error"


Reply = Union[ToolCallReply, ErrorReply, StreamErrorReply]


@dataclass
class Answer:
    """What the fake sends: a whole JSON body, or SSE frames (status 200)."""

    status: int = 200
    body: Any = None
    frames: list[bytes] | None = None
    headers: dict[str, str] = field(default_factory=dict)


def fragments(text: str, count: int) -> list[str]:
    """`text` cut into `count` consecutive pieces (fewer if it is shorter)."""
    count = max(1, min(count, len(text)))
    size = -(-len(text) // count)
    return [text[i : i + size] for i in range(0, len(text), size)]


def _pieces(text: str) -> list[str]:
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def output_tokens(reply: Reply) -> int:
    """A deterministic output count: words of text, ~4 characters per argument token."""
    text = reply.text if isinstance(reply, (ToolCallReply, StreamErrorReply)) else ""
    calls = reply.calls if isinstance(reply, ToolCallReply) else []
    return len(text.split()) + sum(max(1, len(c.arguments_json()) // 4) for c in calls)


def _call_ids(reply: Reply, prefix: str) -> list[str]:
    calls = reply.calls if isinstance(reply, ToolCallReply) else []
    return [c.id or prefix + uuid.uuid4().hex[:24] for c in calls]


# ---------------------------------------------------------------- OpenAI


def _openai_error_body(message: str, type_: str, code: str | None) -> dict:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def _data(payload: dict) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def openai_answer(reply: Reply, body: dict, prompt_tokens: int) -> Answer:
    """The answer of ``POST /v1/chat/completions`` for a scripted reply."""
    if isinstance(reply, ErrorReply):
        return Answer(reply.status, _openai_error_body(reply.message, reply.type, reply.code))
    stream = bool(body.get("stream"))
    if isinstance(reply, StreamErrorReply) and not stream:
        return Answer(500, _openai_error_body(reply.message, reply.type, None))
    model = str(body.get("model") or "")
    completion_id = "chatcmpl-" + uuid.uuid4().hex[:29]
    created = int(time.time())
    completion = output_tokens(reply)
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": prompt_tokens + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }
    calls = reply.calls if isinstance(reply, ToolCallReply) else []
    ids = _call_ids(reply, "call_")
    finish = "tool_calls" if calls else "stop"
    headers = {"x-request-id": "req_" + uuid.uuid4().hex}
    if not stream:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.text or None,
            "refusal": None,
            "annotations": [],
        }
        if calls:
            message["tool_calls"] = [
                {
                    "id": id_,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments_json()},
                }
                for id_, call in zip(ids, calls)
            ]
        return Answer(
            200,
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
                ],
                "usage": usage,
                "system_fingerprint": "fp_fake0001",
            },
            headers=headers,
        )

    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    def chunk(delta: dict, finish_reason: str | None = None) -> bytes:
        data: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_fake0001",
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if include_usage:
            data["usage"] = None
        return _data(data)

    frames = [chunk({"role": "assistant", "content": "" if reply.text else None, "refusal": None})]
    frames += [chunk({"content": piece}) for piece in _pieces(reply.text)] if reply.text else []
    if isinstance(reply, StreamErrorReply):
        frames.append(_data(_openai_error_body(reply.message, reply.type, None)))
        return Answer(frames=frames, headers=headers)
    assert isinstance(reply, ToolCallReply)
    for index, (id_, call) in enumerate(zip(ids, calls)):
        function = {"name": call.name, "arguments": ""}
        start = {"index": index, "id": id_, "type": "function", "function": function}
        frames.append(chunk({"tool_calls": [start]}))
        for piece in fragments(call.arguments_json(), reply.fragments):
            frames.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
    frames.append(chunk({}, finish))
    if include_usage:
        last = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [],
            "usage": usage,
        }
        frames.append(_data(last))
    frames.append(b"data: [DONE]\n\n")
    return Answer(frames=frames, headers=headers)


# ---------------------------------------------------------------- Anthropic


def _anthropic_error_body(type_: str, message: str) -> dict:
    return {"type": "error", "error": {"type": type_, "message": message}}


def _event(name: str, data: dict) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def anthropic_answer(reply: Reply, body: dict, input_tokens: int) -> Answer:
    """The answer of ``POST /v1/messages`` for a scripted reply."""
    headers = {"request-id": "req_" + uuid.uuid4().hex[:24]}
    if isinstance(reply, ErrorReply):
        return Answer(reply.status, _anthropic_error_body(reply.type, reply.message), headers=headers)
    stream = bool(body.get("stream"))
    if isinstance(reply, StreamErrorReply) and not stream:
        return Answer(500, _anthropic_error_body("api_error", reply.message), headers=headers)
    model = str(body.get("model") or "")
    message_id = "msg_01" + uuid.uuid4().hex[:22]
    calls = reply.calls if isinstance(reply, ToolCallReply) else []
    ids = _call_ids(reply, "toolu_01")
    stop_reason = "tool_use" if calls else "end_turn"
    output = output_tokens(reply)
    usage = {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output,
        "service_tier": "standard",
    }
    if not stream:
        content: list[dict] = [{"type": "text", "text": reply.text}] if reply.text else []
        content += [
            {"type": "tool_use", "id": id_, "name": call.name, "input": call.arguments}
            for id_, call in zip(ids, calls)
        ]
        return Answer(
            200,
            {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": content,
                "stop_reason": stop_reason,
                "stop_sequence": None,
                "usage": usage,
            },
            headers=headers,
        )

    start_message = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**usage, "output_tokens": 1},
    }
    frames = [_event("message_start", {"type": "message_start", "message": start_message})]
    frames.append(_event("ping", {"type": "ping"}))
    if reply.text:
        frames.append(
            _event(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            )
        )
        for piece in _pieces(reply.text):
            delta = {"type": "text_delta", "text": piece}
            frames.append(
                _event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
            )
    if isinstance(reply, StreamErrorReply):
        frames.append(_event("error", _anthropic_error_body(reply.type, reply.message)))
        return Answer(frames=frames, headers=headers)
    index = 0
    if reply.text:
        frames.append(_event("content_block_stop", {"type": "content_block_stop", "index": 0}))
        index = 1
    for id_, call in zip(ids, calls):
        block = {"type": "tool_use", "id": id_, "name": call.name, "input": {}}
        start = {"type": "content_block_start", "index": index, "content_block": block}
        frames.append(_event("content_block_start", start))
        for piece in [""] + fragments(call.arguments_json(), reply.fragments):
            frames.append(
                _event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": piece},
                    },
                )
            )
        frames.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1
    frames.append(
        _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": output},
            },
        )
    )
    frames.append(_event("message_stop", {"type": "message_stop"}))
    return Answer(frames=frames, headers=headers)
