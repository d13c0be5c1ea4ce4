"""The usage log of a gateway of its own: a known list of requests, then
SIGTERM, then exactly one JSONL line per request with the right fields.

(The shared session gateway gets the same check, against every request the
other tests made, when the session ends: see conftest.py.)
"""

from __future__ import annotations

import time
import uuid
from typing import Callable

import anthropic
import openai
import pytest

from support import (
    API_PATHS,
    CLIENT_KEY,
    FAKE_ANTHROPIC_MODEL,
    FAKE_OPENAI_ALIAS,
    FAKE_OPENAI_ALIAS_TARGET,
    FAKE_OPENAI_MODEL,
    MOCK_CHAT_MODEL,
    MOCK_CLAUDE_MODEL,
    MOCK_EMBED_MODEL,
    Gateway,
    check_usage_against_ledger,
)

FLUSH_WAIT = 5.0  # "flushed within ~1 s", with slack for a loaded machine


def wait_for_records(gateway: Gateway, count: int, timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        records = gateway.api_usage_records()
        if len(records) >= count or time.monotonic() > deadline:
            return records
        time.sleep(0.1)


def test_usage_log_one_line_per_request(start_gateway: Callable[..., Gateway]) -> None:
    gw = start_gateway()
    oai = gw.openai_client()
    claude = gw.anthropic_client()
    tag = uuid.uuid4().hex[:8]
    user = [{"role": "user", "content": f"usage test {tag}"}]

    # (path, model, stream, status, endpoint, upstream_model or None = don't care)
    expected: list[tuple] = []

    oai.chat.completions.create(model=MOCK_CHAT_MODEL, messages=user)
    expected.append(("/v1/chat/completions", MOCK_CHAT_MODEL, False, 200, "mock", None))

    list(oai.chat.completions.create(model=MOCK_CHAT_MODEL, messages=user, stream=True))
    expected.append(("/v1/chat/completions", MOCK_CHAT_MODEL, True, 200, "mock", None))

    oai.chat.completions.create(model=FAKE_OPENAI_MODEL, messages=user)
    expected.append(("/v1/chat/completions", FAKE_OPENAI_MODEL, False, 200, "fake-openai", FAKE_OPENAI_MODEL))

    # a stream whose client did not ask for usage: tokens must still be counted
    list(oai.chat.completions.create(model=FAKE_OPENAI_ALIAS, messages=user, stream=True))
    expected.append(
        ("/v1/chat/completions", FAKE_OPENAI_ALIAS, True, 200, "fake-openai", FAKE_OPENAI_ALIAS_TARGET)
    )

    oai.embeddings.create(model=MOCK_EMBED_MODEL, input="usage")
    expected.append(("/v1/embeddings", MOCK_EMBED_MODEL, False, 200, "mock", None))

    claude.messages.create(model=MOCK_CLAUDE_MODEL, max_tokens=50, messages=user)
    expected.append(("/v1/messages", MOCK_CLAUDE_MODEL, False, 200, "mock", None))

    claude.messages.create(model=FAKE_ANTHROPIC_MODEL, max_tokens=50, messages=user)
    expected.append(("/v1/messages", FAKE_ANTHROPIC_MODEL, False, 200, "fake-anthropic", FAKE_ANTHROPIC_MODEL))

    with claude.messages.stream(model=FAKE_ANTHROPIC_MODEL, max_tokens=50, messages=user) as s:
        s.get_final_message()
    expected.append(("/v1/messages", FAKE_ANTHROPIC_MODEL, True, 200, "fake-anthropic", FAKE_ANTHROPIC_MODEL))

    claude.messages.count_tokens(model=MOCK_CLAUDE_MODEL, messages=user)
    expected.append(("/v1/messages/count_tokens", MOCK_CLAUDE_MODEL, False, 200, "mock", None))

    with pytest.raises(openai.AuthenticationError):
        gw.openai_client(api_key="fk-wrong").chat.completions.create(model=MOCK_CHAT_MODEL, messages=user)
    expected.append(("/v1/chat/completions", None, None, 401, None, None))

    with pytest.raises(openai.NotFoundError):
        oai.chat.completions.create(model="no-such-model", messages=user)
    expected.append(("/v1/chat/completions", None, None, 404, None, None))

    # Written without a shutdown, within about a second.
    records = wait_for_records(gw, len(expected), FLUSH_WAIT)
    assert len(records) == len(expected), (
        f"after {FLUSH_WAIT}s the usage log has {len(records)} of {len(expected)} records"
    )

    # One more, then SIGTERM at once: the shutdown must flush it.
    with pytest.raises(anthropic.AuthenticationError):
        gw.anthropic_client(api_key="fk-wrong").messages.create(
            model=MOCK_CLAUDE_MODEL, max_tokens=5, messages=user
        )
    expected.append(("/v1/messages", None, None, 401, None, None))
    claude.messages.create(model=MOCK_CLAUDE_MODEL, max_tokens=50, messages=user)
    expected.append(("/v1/messages", MOCK_CLAUDE_MODEL, False, 200, "mock", None))
    time.sleep(0.1)

    code = gw.stop()
    assert code == 0, f"aigate exited with {code} on SIGTERM; log:\n{gw.log_tail()}"

    files = gw.usage_files()
    assert files, f"no usage-*.jsonl under {gw.data_dir / 'logs'}"
    for f in files:
        assert f.name.startswith("usage-") and len(f.stem) == len("usage-YYYY-MM-DD"), f.name

    records = gw.api_usage_records()
    assert len(records) == len(expected), (
        f"{len(records)} usage records for {len(expected)} requests:\n"
        + "\n".join(str(r) for r in records)
    )
    assert all(r["path"] in API_PATHS for r in records)

    # Match records to requests (the log's order is not part of the contract).
    unmatched = list(records)
    for want in expected:
        path, model, stream, status, endpoint, upstream_model = want
        candidates = [
            r
            for r in unmatched
            if r.get("path") == path
            and r.get("status") == status
            and (status != 200 or (r.get("model") == model and r.get("stream") == stream))
        ]
        assert candidates, f"no usage record for {want}; unmatched records:\n" + "\n".join(
            str(r) for r in unmatched
        )
        got = candidates[0]
        unmatched.remove(got)
        context = f"expected {want}, got {got}"
        assert got["ip"] == "127.0.0.1", context
        assert isinstance(got["request_id"], str) and got["request_id"], context
        assert CLIENT_KEY not in str(got.get("client")), context
        if status != 200:
            assert got.get("prompt_tokens", 0) == 0 and got.get("completion_tokens", 0) == 0, context
            continue
        assert got["client"], f"no client id for an authenticated request: {context}"
        assert got["endpoint"] == endpoint, context
        if upstream_model is not None:
            assert got["upstream_model"] == upstream_model, context
        if endpoint != "mock":
            assert got["key_id"], f"no key_id for an upstream call: {got}"
        if path in ("/v1/chat/completions", "/v1/messages"):
            assert got["prompt_tokens"] > 0, f"prompt_tokens: {context}"
            assert got["completion_tokens"] > 0, f"completion_tokens: {context}"
        if path == "/v1/embeddings":
            assert got["prompt_tokens"] > 0, f"prompt_tokens: {context}"
    assert not unmatched

    # the same verdict through the generic ledger check
    check_usage_against_ledger(gw)
