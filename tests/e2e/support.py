"""Shared helpers of the end-to-end tests: constants, config, a running aigate.

`Gateway` starts `aigate serve` on a free port of 127.0.0.1 with its own
temporary config and data dir, waits for /health and stops it with SIGTERM.
Every client it hands out records each exchange in `Gateway.ledger`, which
`check_usage_against_ledger` compares with the usage log.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import anthropic
import httpx
import openai
import pytest


REPO_ROOT = Path(__file__).resolve().parents[2]

CLIENT_KEY = "fk-demo"
OPENAI_UPSTREAM_KEY = "sk-upstream-1"
ANTHROPIC_UPSTREAM_KEY = "sk-ant-upstream"

MOCK_CHAT_MODEL = "gpt-4o-mini"
MOCK_CLAUDE_MODEL = "claude-3-5-haiku-latest"
MOCK_EMBED_MODEL = "text-embedding-3-small"
FAKE_OPENAI_MODEL = "gpt-fake"
FAKE_OPENAI_SLOW_MODEL = "gpt-fake-slow"
FAKE_OPENAI_ALIAS = "gpt-alias"
FAKE_OPENAI_ALIAS_TARGET = "gpt-fake-upstream"
FAKE_ANTHROPIC_MODEL = "claude-fake"

# Which endpoint must serve each model (for the usage-log checks).
MODEL_ENDPOINT = {
    MOCK_CHAT_MODEL: "mock",
    MOCK_CLAUDE_MODEL: "mock",
    MOCK_EMBED_MODEL: "mock",
    FAKE_OPENAI_MODEL: "fake-openai",
    FAKE_OPENAI_SLOW_MODEL: "fake-openai",
    FAKE_OPENAI_ALIAS: "fake-openai",
    FAKE_ANTHROPIC_MODEL: "fake-anthropic",
}

# Paths that go through the request pipeline and so must leave a usage record.
API_PATHS = {
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/messages",
    "/v1/messages/count_tokens",
}
# Calls whose successful answer carries generated tokens.
CHAT_PATHS = {"/v1/chat/completions", "/v1/messages"}

HTTP_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0

# Variables the gateway reads as config overrides: never inherit them.
_LEGACY_ENV = {
    "PROXY_PORT",
    "BASE_PATH",
    "FORWARD_KEY",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_API_HOST",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "CLAUDE_API_HOST",
    "RATE_LIMIT_REQUESTS",
    "RATE_LIMIT_INTERVAL",
    "IP_ERROR_THRESHOLD",
    "ERROR_WINDOW",
    "EXTRA_BASE_URL",
    "EXTRA_ROUTE_PREFIX",
    "EXTRA_API_KEY",
}


def gateway_env() -> dict[str, str]:
    """The test process's environment minus anything aigate would read."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in _LEGACY_ENV and not k.startswith("AIGATE_")
    }
    env.setdefault("RUST_BACKTRACE", "1")
    return env


def aigate_binary() -> Path:
    raw = os.environ.get("AIGATE_BIN", "target/debug/aigate")
    path = Path(raw)
    if not path.is_absolute():
        path = REPO_ROOT / path
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def make_config(
    port: int,
    data_dir: Path,
    openai_url: str,
    anthropic_url: str,
    extra: str = "",
) -> str:
    return f"""\
[server]
listen = "127.0.0.1:{port}"
data_dir = {toml_str(str(data_dir))}

[auth]
client_keys = [{toml_str(CLIENT_KEY)}]

[limits]
ip_requests = -1
# The tests send bad keys on purpose; an IP ban would break later tests.
ip_error_threshold = -1

[log]
level = "info"

[[endpoints]]
id = "mock"
provider = "mock"
models = [{toml_str(MOCK_CHAT_MODEL)}, {toml_str(MOCK_CLAUDE_MODEL)}, {toml_str(MOCK_EMBED_MODEL)}]

[[endpoints]]
id = "fake-openai"
provider = "openai_compatible"
base_url = {toml_str(openai_url)}
keys = [{toml_str(OPENAI_UPSTREAM_KEY)}]
models = [{toml_str(FAKE_OPENAI_MODEL)}, {toml_str(FAKE_OPENAI_SLOW_MODEL)}]
model_mapping = {{ {toml_str(FAKE_OPENAI_ALIAS)} = {toml_str(FAKE_OPENAI_ALIAS_TARGET)} }}

[[endpoints]]
id = "fake-anthropic"
provider = "anthropic"
base_url = {toml_str(anthropic_url)}
keys = [{toml_str(ANTHROPIC_UPSTREAM_KEY)}]
models = [{toml_str(FAKE_ANTHROPIC_MODEL)}]
{extra}"""


@dataclass
class LedgerEntry:
    """One HTTP exchange a test client had with the gateway."""

    method: str
    path: str
    status: int
    model: str | None
    stream: bool


class Gateway:
    """A running `aigate serve` process."""

    def __init__(self, workdir: Path, config_text_for: Callable[[int, Path], str]):
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "aigate.toml"
        self.log_path = workdir / "aigate.log"
        self._config_text_for = config_text_for
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.returncode: int | None = None
        self.ledger: list[LedgerEntry] = []
        self._ledger_lock = threading.Lock()
        self._clients: list[httpx.Client] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- life cycle ----

    def start(self) -> "Gateway":
        binary = aigate_binary()
        if not binary.is_file():
            pytest.fail(f"aigate binary not found at {binary} (run `cargo build` or set AIGATE_BIN)")
        last_error = ""
        for _ in range(3):  # a free port can be taken by someone else before we bind it
            self.port = free_port()
            self.config_path.write_text(self._config_text_for(self.port, self.data_dir))
            log = open(self.log_path, "ab")
            try:
                self.proc = subprocess.Popen(
                    [
                        str(binary),
                        "serve",
                        "--config",
                        str(self.config_path),
                        "--listen",
                        f"127.0.0.1:{self.port}",
                        "--data-dir",
                        str(self.data_dir),
                    ],
                    cwd=self.workdir,
                    env=gateway_env(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            finally:
                log.close()
            if self._wait_healthy():
                return self
            last_error = self.log_tail()
            self._kill()
        pytest.fail(f"aigate did not become healthy; log:\n{last_error}")

    def _wait_healthy(self) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(timeout=httpx.Timeout(2.0)) as probe:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    return False
                try:
                    r = probe.get(f"{self.base_url}/health")
                    if r.status_code == 200 and r.json() == {"status": "ok"}:
                        return True
                except (httpx.HTTPError, ValueError):
                    pass
                time.sleep(0.05)
        return False

    def stop(self) -> int:
        """SIGTERM, then wait; returns the exit code (killed: -9)."""
        for client in self._clients:
            client.close()
        self._clients.clear()
        if self.proc is None:
            return self.returncode if self.returncode is not None else 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._kill()
                self.returncode = -9
                self.proc = None
                return -9
        self.returncode = self.proc.returncode
        self.proc = None
        return self.returncode

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        self.proc = None

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # ---- clients that write the ledger ----

    def _on_response(self, response: httpx.Response) -> None:
        request = response.request
        model = None
        stream = False
        try:
            body = json.loads(request.content or b"null")
        except (ValueError, httpx.RequestNotRead):
            body = None
        if isinstance(body, dict):
            model = body.get("model") if isinstance(body.get("model"), str) else None
            stream = body.get("stream") is True
        with self._ledger_lock:
            self.ledger.append(
                LedgerEntry(request.method, request.url.path, response.status_code, model, stream)
            )

    def http_client(self, **kwargs: Any) -> httpx.Client:
        kwargs.setdefault("timeout", HTTP_TIMEOUT)
        client = httpx.Client(event_hooks={"response": [self._on_response]}, **kwargs)
        self._clients.append(client)
        return client

    def openai_client(self, api_key: str = CLIENT_KEY) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=f"{self.base_url}/v1",
            api_key=api_key,
            max_retries=0,
            timeout=HTTP_TIMEOUT,
            http_client=self.http_client(),
        )

    def anthropic_client(self, api_key: str = CLIENT_KEY) -> anthropic.Anthropic:
        return anthropic.Anthropic(
            base_url=self.base_url,
            api_key=api_key,
            max_retries=0,
            timeout=HTTP_TIMEOUT,
            http_client=self.http_client(),
        )

    def api_ledger(self) -> list[LedgerEntry]:
        with self._ledger_lock:
            return [e for e in self.ledger if e.path in API_PATHS]

    # ---- usage log ----

    def usage_files(self) -> list[Path]:
        return sorted((self.data_dir / "logs").glob("usage-*.jsonl"))

    def usage_records(self) -> list[dict]:
        records = []
        for path in self.usage_files():
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    records.append(json.loads(line))
                except ValueError as exc:
                    raise AssertionError(f"{path.name}:{n} is not JSON: {line!r}") from exc
        return records

    def api_usage_records(self) -> list[dict]:
        return [r for r in self.usage_records() if r.get("path") in API_PATHS]


def check_usage_against_ledger(gateway: Gateway) -> None:
    """One usage line per API request in the ledger, with the right fields."""
    ledger = gateway.api_ledger()
    records = gateway.api_usage_records()
    raw = "\n".join(p.read_text() for p in gateway.usage_files())
    assert CLIENT_KEY not in raw, "a client key was written to the usage log"
    assert OPENAI_UPSTREAM_KEY not in raw and ANTHROPIC_UPSTREAM_KEY not in raw, (
        "an upstream key was written to the usage log"
    )

    def brief(path: str, status: int, model: Any, stream: bool) -> tuple:
        return (path, status, model if 200 <= status < 300 else "-", stream if 200 <= status < 300 else "-")

    want = collections.Counter(brief(e.path, e.status, e.model, e.stream) for e in ledger)
    got = collections.Counter(
        brief(r.get("path"), r.get("status"), r.get("model"), r.get("stream")) for r in records
    )
    assert got == want, (
        "usage log does not match the requests made (path, status, model, stream):\n"
        f"  missing from log: {dict(want - got)}\n"
        f"  unexpected in log: {dict(got - want)}"
    )
    ids = [r.get("request_id") for r in records]
    assert all(isinstance(i, str) and i for i in ids), "every record needs a request_id"
    assert len(set(ids)) == len(ids), "request_id values must be unique"
    for r in records:
        assert r.get("ip") == "127.0.0.1", r
        assert r.get("client") != CLIENT_KEY, r
        status = r.get("status")
        if not (isinstance(status, int) and 200 <= status < 300):
            continue
        assert r.get("client"), f"an authenticated request without a client id: {r}"
        expected_endpoint = MODEL_ENDPOINT.get(r.get("model"))
        assert r.get("endpoint") == expected_endpoint, r
        assert r.get("key_id") != OPENAI_UPSTREAM_KEY and r.get("key_id") != ANTHROPIC_UPSTREAM_KEY, r
        if r.get("model") == FAKE_OPENAI_ALIAS:
            assert r.get("upstream_model") == FAKE_OPENAI_ALIAS_TARGET, r
        if r.get("path") in CHAT_PATHS:
            assert r.get("prompt_tokens", 0) > 0, f"no prompt tokens recorded: {r}"
            assert r.get("completion_tokens", 0) > 0, f"no completion tokens recorded: {r}"


def parse_sse(lines) -> list[tuple[str | None, str]]:
    """(event name, data) of each SSE event."""
    events = []
    name, data = None, []
    for line in lines:
        if line == "":
            if data:
                events.append((name, "\n".join(data)))
            name, data = None, []
        elif line.startswith("event:"):
            name = line[len("event:"):].strip()
        elif line.startswith("data:"):
            data.append(line[len("data:"):].lstrip())
    if data:
        events.append((name, "\n".join(data)))
    return events
