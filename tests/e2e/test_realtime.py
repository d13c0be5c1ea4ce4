"""The Realtime API over WebSocket, through the built binary.

The official `openai` SDK's realtime client (pointed at aigate with nothing
but `base_url`) runs a session against a fake realtime upstream; a browser-style
client (the `websockets` package, key in the subprotocol list) checks
subprotocol auth, echo and close codes; a bad key is refused before the
upstream hears of it. The usage log must hold the `response.done` usage and
each session's summary.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Callable, Iterator

import openai
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from fake_realtime import FakeRealtime, usage_of
from support import CLIENT_KEY, Gateway, toml_str

REALTIME_MODEL = "gpt-realtime-fake"
REALTIME_UPSTREAM_KEY = "sk-realtime-upstream"
WS_TIMEOUT = 10.0


@pytest.fixture(scope="module")
def fake_realtime() -> Iterator[FakeRealtime]:
    with FakeRealtime(REALTIME_UPSTREAM_KEY, REALTIME_MODEL) as fake:
        yield fake


@pytest.fixture(scope="module")
def realtime_gateway(
    start_gateway: Callable[..., Gateway], fake_realtime: FakeRealtime
) -> Iterator[Gateway]:
    gw = start_gateway(
        f"""
[[endpoints]]
id = "fake-realtime"
provider = "openai"
base_url = {toml_str(fake_realtime.base_url)}
keys = [{toml_str(REALTIME_UPSTREAM_KEY)}]
models = [{toml_str(REALTIME_MODEL)}]
"""
    )
    yield gw
    code = gw.stop()
    assert code == 0, f"aigate exited with {code}; log:\n{gw.log_tail()}"


def ws_url(gw: Gateway) -> str:
    return f"ws://127.0.0.1:{gw.port}/v1/realtime?model={REALTIME_MODEL}"


def realtime_records(gw: Gateway, want: int, timeout: float = 5.0) -> list[dict]:
    """The usage log's /v1/realtime records, once there are at least `want`."""
    deadline = time.monotonic() + timeout
    while True:
        records = [r for r in gw.usage_records() if r.get("path") == "/v1/realtime"]
        if len(records) >= want or time.monotonic() > deadline:
            return records
        time.sleep(0.1)


def test_openai_sdk_realtime_session(realtime_gateway: Gateway, fake_realtime: FakeRealtime) -> None:
    gw = realtime_gateway
    before = len(fake_realtime.connections)
    client = openai.OpenAI(base_url=f"{gw.base_url}/v1", api_key=CLIENT_KEY, max_retries=0)
    instructions = f"e2e {uuid.uuid4().hex[:8]}"
    with client.realtime.connect(model=REALTIME_MODEL) as conn:
        conn.session.update(
            session={"type": "realtime", "instructions": instructions, "output_modalities": ["text"]}
        )
        conn.response.create()
        seen: list[str] = []
        text = ""
        usage = None
        for event in conn:
            seen.append(event.type)
            if event.type == "response.output_text.delta":
                text += event.delta
            if event.type == "response.done":
                usage = event.response.usage
                break
    assert seen[:2] == ["session.created", "session.updated"], seen
    assert text == "hello from the fake"
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens) == (30, 12)

    connection = fake_realtime.connections[before]
    assert connection.ended.wait(WS_TIMEOUT), "upstream socket still open after the SDK closed"
    sent = [json.loads(m)["type"] for m in connection.received if isinstance(m, str)]
    assert sent == ["session.update", "response.create"]
    assert instructions in connection.received[0]
    assert connection.close_code == 1000

    handshake = fake_realtime.handshakes[-1]
    assert handshake.path == "/v1/realtime"
    assert handshake.headers["authorization"] == f"Bearer {REALTIME_UPSTREAM_KEY}"
    assert not any(CLIENT_KEY in v for v in handshake.headers.values())

    records = realtime_records(gw, 2)
    response = [r for r in records if r.get("realtime", {}).get("kind") == "response"]
    summary = [r for r in records if r.get("realtime", {}).get("kind") == "session"]
    assert len(response) == 1 and len(summary) == 1, records
    expected = usage_of(1)
    assert response[0]["prompt_tokens"] == expected["input_tokens"]
    assert response[0]["completion_tokens"] == expected["output_tokens"]
    assert response[0]["realtime"]["input_audio_tokens"] == 20
    assert response[0]["realtime"]["session_id"] == summary[0]["request_id"]
    assert response[0]["endpoint"] == "fake-realtime"
    assert summary[0]["status"] == 101
    assert summary[0]["realtime"]["closed_by"] == "client"
    assert summary[0]["realtime"]["close_code"] == 1000
    assert summary[0]["realtime"]["frames_from_client"] == 2
    assert summary[0]["client"] and summary[0]["client"] != CLIENT_KEY


def test_browser_subprotocol_auth_echo_and_close_code(
    realtime_gateway: Gateway, fake_realtime: FakeRealtime
) -> None:
    before = len(fake_realtime.connections)
    protocols = ["realtime", f"openai-insecure-api-key.{CLIENT_KEY}", "openai-beta.realtime-v1"]
    with connect(ws_url(realtime_gateway), subprotocols=protocols, open_timeout=WS_TIMEOUT) as ws:
        assert ws.subprotocol == "realtime"
        assert json.loads(ws.recv(timeout=WS_TIMEOUT))["type"] == "session.created"
        event = json.dumps({"type": "e2e.echo", "id": uuid.uuid4().hex})
        ws.send(event)
        assert ws.recv(timeout=WS_TIMEOUT) == event
        ws.send(b"\x00\x01 binary \xff")
        assert ws.recv(timeout=WS_TIMEOUT) == b"\x00\x01 binary \xff"
        ws.send(json.dumps({"type": "test.close", "code": 4001, "reason": "bye"}))
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=WS_TIMEOUT)
        assert ws.protocol.close_rcvd is not None
        assert (ws.protocol.close_rcvd.code, ws.protocol.close_rcvd.reason) == (4001, "bye")
    handshake = fake_realtime.handshakes[-1]
    assert handshake.headers["openai-beta"] == "realtime=v1"
    assert handshake.headers["authorization"] == f"Bearer {REALTIME_UPSTREAM_KEY}"
    assert fake_realtime.connections[before].ended.wait(WS_TIMEOUT)


def test_bad_key_is_refused_before_the_upstream(
    realtime_gateway: Gateway, fake_realtime: FakeRealtime
) -> None:
    handshakes = len(fake_realtime.handshakes)
    with pytest.raises(InvalidStatus) as refused:
        connect(
            ws_url(realtime_gateway),
            additional_headers={"Authorization": "Bearer fk-not-a-key"},
            open_timeout=WS_TIMEOUT,
        )
    response = refused.value.response
    assert response.status_code == 401
    assert json.loads(response.body)["error"]["code"] == "invalid_api_key"
    assert len(fake_realtime.handshakes) == handshakes
