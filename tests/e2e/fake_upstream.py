"""A fake LLM provider for the end-to-end tests: stdlib only.

One `FakeUpstream` is one HTTP server on 127.0.0.1 (ephemeral port) that
answers both dialects the way the real providers do:

* OpenAI: ``POST /v1/chat/completions`` (JSON, or SSE with one chunk per word,
  plus the usage chunk when ``stream_options.include_usage`` is set),
  ``POST /v1/embeddings``, ``GET /v1/models``.
* Anthropic: ``POST /v1/messages`` (JSON, or the Anthropic event stream:
  message_start, content_block_start, ping, content_block_delta x N,
  content_block_stop, message_delta, message_stop) and
  ``POST /v1/messages/count_tokens``.

Every request is recorded (method, path, headers, raw and parsed body) so a
test can assert what the gateway actually sent. SSE events are written and
flushed one at a time with a pause between them, over HTTP/1.1 chunked
encoding, so a gateway that buffers a stream is visible to the client.

If ``api_key`` is given the server checks it like the provider would
(``Authorization: Bearer`` for OpenAI paths, ``x-api-key`` plus a required
``anthropic-version`` for Anthropic paths) and answers 401/400 otherwise.

A test can script the answer to its own requests (tool calls, provider
errors, errors mid-stream): ``upstream.script(marker, reply)`` with a reply
from ``fake_scripts``; a chat or messages request whose body contains the
marker gets it instead of the echo.

Run it by hand with ``python fake_upstream.py [port]`` to poke at it.
"""

from __future__ import annotations

import base64
import json
import math
import struct
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from fake_scripts import Answer, Reply, anthropic_answer, openai_answer

# Default pause between two SSE events, in seconds.
DEFAULT_CHUNK_DELAY = 0.02
# Models whose name contains this stream slowly (see `slow_chunk_delay`).
SLOW_MARKER = "slow"


@dataclass
class RecordedRequest:
    method: str
    path: str  # without the query string
    query: str
    headers: dict[str, str]  # lower-cased names
    raw_body: bytes
    json: Any = None  # the parsed body, or None
    time: float = field(default_factory=time.monotonic)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def contains(self, text: str) -> bool:
        """Whether `text` appears in any header value or in the body."""
        if any(text in v for v in self.headers.values()):
            return True
        return text.encode() in self.raw_body


def _words(text: str) -> list[str]:
    return text.split()


def _message_text(content: Any) -> str:
    """Text of an OpenAI or Anthropic message `content` (string or parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return " ".join(parts)
    return ""


def _last_user_text(messages: Any) -> str:
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _message_text(message.get("content"))
    return ""


def _prompt_tokens(body: dict) -> int:
    """A crude but deterministic token count: words plus 3 per message."""
    total = 0
    system = body.get("system")
    if system:
        total += len(_words(_message_text(system))) + 3
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            total += len(_words(_message_text(message.get("content")))) + 3
    return max(total, 1)


def _stream_pieces(text: str) -> list[str]:
    """Splits `text` into word pieces that concatenate back to `text`."""
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def fake_embedding(text: str, dims: int = 16) -> list[float]:
    """A deterministic unit vector for `text`."""
    seed = sum((i + 1) * ord(c) for i, c in enumerate(text)) or 1
    raw = [math.sin(seed * (k + 1) * 0.618) for k in range(dims)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [x / norm for x in raw]


class FakeUpstream:
    """A threaded fake provider. Use as a context manager or start()/stop()."""

    def __init__(
        self,
        name: str,
        api_key: str | None = None,
        chunk_delay: float = DEFAULT_CHUNK_DELAY,
        slow_chunk_delay: float = 0.25,
        port: int = 0,
    ):
        self.name = name
        self.api_key = api_key
        self.chunk_delay = chunk_delay
        self.slow_chunk_delay = slow_chunk_delay
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._scripts: list[tuple[bytes, Reply]] = []
        handler = type("Handler", (_Handler,), {"upstream": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # ---- life cycle ----

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FakeUpstream":
        self._thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"fake-upstream-{self.name}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "FakeUpstream":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- recorded requests ----

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def requests(self, path: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            found = list(self._requests)
        return [r for r in found if path is None or r.path == path]

    def requests_containing(self, marker: str, path: str | None = None) -> list[RecordedRequest]:
        """Requests whose body contains `marker` (tests put a unique one in)."""
        return [r for r in self.requests(path) if marker.encode() in r.raw_body]

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    # ---- scripted replies ----

    def script(self, marker: str, reply: Reply) -> None:
        """Requests whose body contains `marker` get `reply` (see fake_scripts)."""
        with self._lock:
            self._scripts.append((marker.encode(), reply))

    def scripted_reply(self, request: RecordedRequest) -> Reply | None:
        with self._lock:
            scripts = list(self._scripts)
        for marker, reply in scripts:
            if marker in request.raw_body:
                return reply
        return None

    def delay_for(self, model: str) -> float:
        return self.slow_chunk_delay if SLOW_MARKER in model else self.chunk_delay


class _Handler(BaseHTTPRequestHandler):
    upstream: FakeUpstream  # set on the subclass made per server
    protocol_version = "HTTP/1.1"
    server_version = "fake-upstream/1.0"

    # Quiet: the test output is for the gateway.
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    # ---- plumbing ----

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            body = b""
            while True:
                size_line = self.rfile.readline()
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    # trailers, then the empty line
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _record(self) -> RecordedRequest:
        raw = self._read_body()
        parsed = None
        if raw:
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = None
        url = urlsplit(self.path)
        request = RecordedRequest(
            method=self.command,
            path=url.path,
            query=url.query,
            headers={k.lower(): v for k, v in self.headers.items()},
            raw_body=raw,
            json=parsed,
        )
        self.upstream.record(request)
        return request

    def _send_json(self, status: int, body: Any, extra: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _start_sse(self, extra: dict[str, str] | None = None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.flush()

    def _send_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _send_answer(self, answer: Answer, delay: float) -> None:
        if answer.frames is None:
            self._send_json(answer.status, answer.body, answer.headers)
            return
        self._start_sse(answer.headers)
        for frame in answer.frames:
            self._send_chunk(frame)
            time.sleep(delay)
        self._end_chunks()

    def _openai_error(self, status: int, message: str, type_: str, code: str | None) -> None:
        self._send_json(
            status,
            {"error": {"message": message, "type": type_, "param": None, "code": code}},
        )

    def _anthropic_error(self, status: int, type_: str, message: str) -> None:
        self._send_json(
            status,
            {"type": "error", "error": {"type": type_, "message": message}},
            {"request-id": "req_" + uuid.uuid4().hex[:24]},
        )

    # ---- auth, as the providers do it ----

    def _openai_authorized(self, request: RecordedRequest) -> bool:
        key = self.upstream.api_key
        if key is None or request.header("authorization") == f"Bearer {key}":
            return True
        self._openai_error(
            401,
            "Incorrect API key provided.",
            "invalid_request_error",
            "invalid_api_key",
        )
        return False

    def _anthropic_authorized(self, request: RecordedRequest) -> bool:
        key = self.upstream.api_key
        if key is not None and request.header("x-api-key") != key:
            self._anthropic_error(401, "authentication_error", "invalid x-api-key")
            return False
        if not request.header("anthropic-version"):
            self._anthropic_error(
                400, "invalid_request_error", "anthropic-version: header is required"
            )
            return False
        return True

    # ---- dispatch ----

    def do_GET(self) -> None:  # noqa: N802
        request = self._record()
        if request.path == "/v1/models":
            if not self._openai_authorized(request):
                return
            self._send_json(
                200,
                {
                    "object": "list",
                    "data": [
                        {"id": "gpt-fake-upstream", "object": "model", "created": 1700000000, "owned_by": "fake"}
                    ],
                },
            )
            return
        self._openai_error(404, f"Unknown path {request.path}", "invalid_request_error", "unknown_url")

    def do_POST(self) -> None:  # noqa: N802
        request = self._record()
        routes = {
            "/v1/chat/completions": self._chat_completions,
            "/v1/embeddings": self._embeddings,
            "/v1/messages": self._messages,
            "/v1/messages/count_tokens": self._count_tokens,
        }
        route = routes.get(request.path)
        if route is None:
            self._openai_error(404, f"Unknown path {request.path}", "invalid_request_error", "unknown_url")
            return
        if not isinstance(request.json, dict):
            if request.path.startswith("/v1/messages"):
                self._anthropic_error(400, "invalid_request_error", "body must be a JSON object")
            else:
                self._openai_error(400, "We could not parse the JSON body of your request.", "invalid_request_error", None)
            return
        try:
            route(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the gateway hung up mid-stream; nothing to answer

    # ---- OpenAI ----

    def _chat_completions(self, request: RecordedRequest) -> None:
        if not self._openai_authorized(request):
            return
        body = request.json
        model = str(body.get("model") or "")
        scripted = self.upstream.scripted_reply(request)
        if scripted is not None:
            answer = openai_answer(scripted, body, _prompt_tokens(body))
            self._send_answer(answer, self.upstream.delay_for(model))
            return
        reply = f"Hello from {self.upstream.name}. You said: {_last_user_text(body.get('messages'))}"
        prompt_tokens = _prompt_tokens(body)
        completion_tokens = len(_words(reply))
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        completion_id = "chatcmpl-" + uuid.uuid4().hex[:29]
        created = int(time.time())
        headers = {"x-request-id": "req_" + uuid.uuid4().hex, "openai-processing-ms": "12"}
        if not body.get("stream"):
            self._send_json(
                200,
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {
                                "role": "assistant",
                                "content": reply,
                                "refusal": None,
                                "annotations": [],
                            },
                            "logprobs": None,
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                    "service_tier": "default",
                    "system_fingerprint": "fp_fake0001",
                },
                headers,
            )
            return

        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        delay = self.upstream.delay_for(model)

        def chunk(delta: dict, finish_reason: str | None = None) -> dict:
            data = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "service_tier": "default",
                "system_fingerprint": "fp_fake0001",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
                ],
            }
            if include_usage:
                data["usage"] = None
            return data

        events = [chunk({"role": "assistant", "content": "", "refusal": None})]
        events += [chunk({"content": piece}) for piece in _stream_pieces(reply)]
        events.append(chunk({}, "stop"))
        if include_usage:
            last = chunk({})
            last["choices"] = []
            last["usage"] = usage
            events.append(last)

        self._start_sse(headers)
        for event in events:
            self._send_chunk(b"data: " + json.dumps(event).encode() + b"\n\n")
            time.sleep(delay)
        self._send_chunk(b"data: [DONE]\n\n")
        self._end_chunks()

    def _embeddings(self, request: RecordedRequest) -> None:
        if not self._openai_authorized(request):
            return
        body = request.json
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list):
            self._openai_error(400, "'input' is required", "invalid_request_error", None)
            return
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        tokens = 0
        for i, text in enumerate(inputs):
            text = str(text)
            tokens += max(len(_words(text)), 1)
            vector = fake_embedding(text)
            if as_base64:
                encoded: Any = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            else:
                encoded = vector
            data.append({"object": "embedding", "index": i, "embedding": encoded})
        self._send_json(
            200,
            {
                "object": "list",
                "data": data,
                "model": body.get("model"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    # ---- Anthropic ----

    def _messages(self, request: RecordedRequest) -> None:
        if not self._anthropic_authorized(request):
            return
        body = request.json
        model = str(body.get("model") or "")
        if not isinstance(body.get("max_tokens"), int):
            self._anthropic_error(400, "invalid_request_error", "max_tokens: Field required")
            return
        scripted = self.upstream.scripted_reply(request)
        if scripted is not None:
            answer = anthropic_answer(scripted, body, _prompt_tokens(body))
            self._send_answer(answer, self.upstream.delay_for(model))
            return
        reply = f"Hello from {self.upstream.name}. You said: {_last_user_text(body.get('messages'))}"
        input_tokens = _prompt_tokens(body)
        output_tokens = len(_words(reply))
        message_id = "msg_01" + uuid.uuid4().hex[:22]
        headers = {"request-id": "req_" + uuid.uuid4().hex[:24]}
        if not body.get("stream"):
            self._send_json(
                200,
                {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [{"type": "text", "text": reply}],
                    "stop_reason": "end_turn",
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": input_tokens,
                        "cache_creation_input_tokens": 0,
                        "cache_read_input_tokens": 0,
                        "output_tokens": output_tokens,
                        "service_tier": "standard",
                    },
                },
                headers,
            )
            return

        events: list[tuple[str, dict]] = [
            (
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": message_id,
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {
                            "input_tokens": input_tokens,
                            "cache_creation_input_tokens": 0,
                            "cache_read_input_tokens": 0,
                            "output_tokens": 1,
                            "service_tier": "standard",
                        },
                    },
                },
            ),
            (
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            ),
            ("ping", {"type": "ping"}),
        ]
        events += [
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}},
            )
            for piece in _stream_pieces(reply)
        ]
        events += [
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": output_tokens},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        delay = self.upstream.delay_for(model)
        self._start_sse(headers)
        for name, data in events:
            self._send_chunk(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
            time.sleep(delay)
        self._end_chunks()

    def _count_tokens(self, request: RecordedRequest) -> None:
        if not self._anthropic_authorized(request):
            return
        self._send_json(200, {"input_tokens": _prompt_tokens(request.json)})


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    upstream = FakeUpstream("fake", port=port)
    print(f"fake upstream on {upstream.base_url}", flush=True)
    upstream.server.serve_forever()


if __name__ == "__main__":
    main()
