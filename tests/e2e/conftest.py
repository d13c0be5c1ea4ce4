"""Fixtures for the end-to-end tests: fake upstreams, a real aigate process.

Everything is parallel-safe: every server listens on an ephemeral port of
127.0.0.1 and every gateway gets its own temporary config and data dir.
Every HTTP call and process wait has a timeout.

The session gateway (`gateway`) is shared by the SDK tests. Every request a
test sends it goes through an httpx client with a response hook that writes
it down (`gateway.ledger`); when the session ends the gateway is stopped
with SIGTERM, must exit 0, and its usage log must hold one line per API
request in that ledger.
"""

from __future__ import annotations

from typing import Callable, Iterator

import anthropic
import httpx
import openai
import pytest

from fake_upstream import FakeUpstream
from support import (
    ANTHROPIC_UPSTREAM_KEY,
    OPENAI_UPSTREAM_KEY,
    Gateway,
    check_usage_against_ledger,
    make_config,
)



@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeUpstream]:
    with FakeUpstream("fake-openai", api_key=OPENAI_UPSTREAM_KEY) as upstream:
        yield upstream


@pytest.fixture(scope="session")
def fake_anthropic() -> Iterator[FakeUpstream]:
    with FakeUpstream("fake-anthropic", api_key=ANTHROPIC_UPSTREAM_KEY) as upstream:
        yield upstream


@pytest.fixture(scope="session")
def start_gateway(
    tmp_path_factory: pytest.TempPathFactory,
    fake_openai: FakeUpstream,
    fake_anthropic: FakeUpstream,
) -> Iterator[Callable[..., Gateway]]:
    """Factory: starts a gateway on the fake upstreams; all are stopped at the end."""
    started: list[Gateway] = []

    def start(extra_config: str = "") -> Gateway:
        workdir = tmp_path_factory.mktemp("aigate")
        gateway = Gateway(
            workdir,
            lambda port, data_dir: make_config(
                port, data_dir, fake_openai.base_url, fake_anthropic.base_url, extra_config
            ),
        )
        started.append(gateway)
        return gateway.start()

    yield start
    for gateway in started:
        gateway.stop()


@pytest.fixture(scope="session")
def gateway(start_gateway: Callable[..., Gateway]) -> Iterator[Gateway]:
    """The shared gateway. At the end of the session: SIGTERM, exit 0, usage log == ledger."""
    gw = start_gateway()
    yield gw
    code = gw.stop()
    assert code == 0, f"aigate exited with {code} on SIGTERM; log:\n{gw.log_tail()}"
    check_usage_against_ledger(gw)


@pytest.fixture
def oai(gateway: Gateway) -> openai.OpenAI:
    return gateway.openai_client()


@pytest.fixture
def claude(gateway: Gateway) -> anthropic.Anthropic:
    return gateway.anthropic_client()


@pytest.fixture
def http(gateway: Gateway) -> httpx.Client:
    """A raw client on the shared gateway (its requests are in the ledger too)."""
    return gateway.http_client(base_url=gateway.base_url)
