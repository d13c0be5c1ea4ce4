"""`aigate check-config`: a good file passes, a bad one names the key path."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from support import aigate_binary, gateway_env, make_config

TIMEOUT = 30

GOOD_TAIL = """
[[endpoints]]
id = "mock"
provider = "mock"
models = ["gpt-4o-mini"]
"""


def check_config(path: Path, cwd: Path) -> subprocess.CompletedProcess:
    binary = aigate_binary()
    if not binary.is_file():
        pytest.fail(f"aigate binary not found at {binary} (run `cargo build` or set AIGATE_BIN)")
    return subprocess.run(
        [str(binary), "check-config", "--config", str(path)],
        cwd=cwd,
        env=gateway_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def test_good_config_passes(tmp_path: Path) -> None:
    path = tmp_path / "good.toml"
    path.write_text(
        make_config(6543, tmp_path / "data", "http://127.0.0.1:9", "http://127.0.0.1:9")
    )
    result = check_config(path, tmp_path)
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"


@pytest.mark.parametrize(
    "body, key_path",
    [
        ("[[endpoints]]\nid = \"mock\"\nprovider = \"mock\"\nrpm = -5\n", "endpoints[0].rpm"),
        ("[[endpoints]]\nid = \"mock\"\nprovider = \"mock\"\nrpm = \"lots\"\n", "endpoints[0].rpm"),
        (GOOD_TAIL + "\n[[endpoints]]\nid = \"b\"\nprovider = \"mock\"\nrpd = -2\n", "endpoints[1].rpd"),
        ("[limits]\nip_requests = -7\n" + GOOD_TAIL, "limits.ip_requests"),
        ("[server]\nlisten = \"not an address\"\n" + GOOD_TAIL, "server.listen"),
    ],
    ids=["rpm-range", "rpm-type", "second-endpoint", "limits", "listen"],
)
def test_bad_config_names_the_key_path(tmp_path: Path, body: str, key_path: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(body)
    result = check_config(path, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"check-config accepted a bad file:\n{output}"
    assert key_path in output, f"the message does not name {key_path}:\n{output}"


def test_missing_config_file_fails(tmp_path: Path) -> None:
    result = check_config(tmp_path / "nope.toml", tmp_path)
    assert result.returncode != 0
    assert "nope.toml" in result.stdout + result.stderr
