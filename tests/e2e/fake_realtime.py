"""A fake OpenAI Realtime API for the end-to-end tests (the `websockets` package).

`FakeRealtime` is a WebSocket server on 127.0.0.1 (ephemeral port) that behaves
like ``wss://api.openai.com/v1/realtime?model=...`` as far as a gateway can
tell:

* the handshake needs ``Authorization: Bearer <api_key>`` (else 401) and
  ``?model=<model>`` (else 404), both answered with an OpenAI error body;
* it greets with ``session.created``; ``session.update`` gets
  ``session.updated``; ``response.create`` gets ``response.created``, one
  ``response.output_text.delta``, ``response.output_text.done`` and
  ``response.done`` with usage (see `usage_of`);
* any other text or binary frame is echoed;
* ``{"type": "test.close", "code": 4001, "reason": "bye"}`` closes with that code.

Every handshake and frame is recorded, with the close code each connection
ended with, so a test can check what the gateway really sent.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve


def usage_of(n: int) -> dict[str, Any]:
    """The usage of the n-th response (1-based) of a connection."""
    return {
        "total_tokens": 42 * n,
        "input_tokens": 30 * n,
        "output_tokens": 12 * n,
        "input_token_details": {"cached_tokens": n, "text_tokens": 10 * n, "audio_tokens": 20 * n},
        "output_token_details": {"text_tokens": 5 * n, "audio_tokens": 7 * n},
    }


@dataclass
class Handshake:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    status: int


@dataclass
class Connection:
    received: list[Any] = field(default_factory=list)  # str (text) or bytes (binary)
    close_code: int | None = None
    close_reason: str = ""
    ended: threading.Event = field(default_factory=threading.Event)


class FakeRealtime:
    """A threaded fake realtime upstream. Use as a context manager."""

    def __init__(self, api_key: str, model: str):
        self.api_key = api_key
        self.model = model
        self._lock = threading.Lock()
        self.handshakes: list[Handshake] = []
        self.connections: list[Connection] = []
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "FakeRealtime":
        self._server = serve(self._session, "127.0.0.1", 0, process_request=self._check)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-realtime", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # ---- handshake ----

    def _check(self, connection: ServerConnection, request: Any):
        url = urlsplit(request.path)
        query = parse_qs(url.query)
        headers = {k.lower(): v for k, v in request.headers.raw_items()}
        status = 101
        response = None
        if headers.get("authorization") != f"Bearer {self.api_key}":
            status = 401
            response = self._refuse(connection, 401, "Incorrect API key provided.", "invalid_api_key")
        elif query.get("model") != [self.model]:
            status = 404
            response = self._refuse(connection, 404, f"model {query.get('model')} not found", "model_not_found")
        with self._lock:
            self.handshakes.append(Handshake(url.path, query, headers, status))
        return response

    @staticmethod
    def _refuse(connection: ServerConnection, status: int, message: str, code: str):
        body = json.dumps({"error": {"message": message, "type": "invalid_request_error", "code": code}})
        response = connection.respond(status, body)
        del response.headers["Content-Type"]
        response.headers["Content-Type"] = "application/json"
        return response

    # ---- session ----

    def _session(self, ws: ServerConnection) -> None:
        record = Connection()
        with self._lock:
            self.connections.append(record)
        responses = 0
        try:
            ws.send(json.dumps({"type": "session.created", "event_id": "ev_0",
                                "session": {"id": "sess_fake", "object": "realtime.session", "model": self.model}}))
            for message in ws:
                record.received.append(message)
                if isinstance(message, bytes):
                    ws.send(message)
                    continue
                event = json.loads(message) if message.startswith("{") else {}
                kind = event.get("type")
                if kind == "session.update":
                    ws.send(json.dumps({"type": "session.updated", "event_id": "ev_su",
                                        "session": event.get("session", {})}))
                elif kind == "response.create":
                    responses += 1
                    self._respond(ws, responses)
                elif kind == "test.close":
                    ws.close(event.get("code", 1000), event.get("reason", ""))
                else:
                    ws.send(message)
        except ConnectionClosed:
            pass
        finally:
            received = ws.protocol.close_rcvd
            record.close_code = received.code if received is not None else None
            record.close_reason = received.reason if received is not None else ""
            record.ended.set()

    @staticmethod
    def _respond(ws: ServerConnection, n: int) -> None:
        rid = f"resp_{n}"
        item = {"id": f"item_{n}", "type": "message", "role": "assistant",
                "content": [{"type": "output_text", "text": "hello from the fake"}]}
        events = [
            {"type": "response.created", "response": {"id": rid, "object": "realtime.response",
                                                      "status": "in_progress", "output": []}},
            {"type": "response.output_text.delta", "response_id": rid, "item_id": item["id"],
             "output_index": 0, "content_index": 0, "delta": "hello from the fake"},
            {"type": "response.output_text.done", "response_id": rid, "item_id": item["id"],
             "output_index": 0, "content_index": 0, "text": "hello from the fake"},
            {"type": "response.done", "response": {"id": rid, "object": "realtime.response",
                                                   "status": "completed", "output": [item],
                                                   "usage": usage_of(n)}},
        ]
        for i, event in enumerate(events):
            event["event_id"] = f"ev_{n}_{i}"
            ws.send(json.dumps(event))
