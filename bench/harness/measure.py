"""Running the load tools and reading a process's memory and CPU.

wrk does the closed-loop JSON runs (its own numbers: requests/s and the
latency distribution); aigate-bench does what wrk cannot (fixed rate, time to
first byte, open streams) and prints one JSON object per run.
"""

import json
import os
import re
import subprocess
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def wrk(wrk_bin, url, script, conns, seconds, threads=2):
    """One wrk run; returns {rps, p50_ms, p90_ms, p99_ms, errors, requests}."""
    argv = [
        wrk_bin,
        f"-t{min(threads, conns)}",
        f"-c{conns}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        script,
        url,
    ]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60).stdout
    return parse_wrk(out)


def _duration_ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(f"wrk duration {text!r}")
    value, unit = float(m.group(1)), m.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def parse_wrk(out):
    result = {"errors": 0}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("50%", "90%", "99%"):
            result[f"p{parts[0][:-1]}_ms"] = _duration_ms(parts[1])
        elif line.startswith("Requests/sec:"):
            result["rps"] = float(parts[1])
        elif "requests in" in line:
            result["requests"] = int(parts[0])
        elif line.strip().startswith("Non-2xx or 3xx responses:"):
            result["errors"] += int(parts[-1])
        elif line.strip().startswith("Socket errors:"):
            result["errors"] += sum(int(n) for n in re.findall(r"\d+", line))
    if "rps" not in result:
        raise RuntimeError("wrk printed no result:\n" + out)
    return result


def tool(tool_bin, command, url, body, headers=None, timeout=600, **options):
    """One aigate-bench run; returns its JSON."""
    argv = [tool_bin, command, "--url", url, "--body", body]
    for name, value in (headers or {}).items():
        argv += ["--header", f"{name}: {value}"]
    for key, value in options.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"aigate-bench {command} failed: {done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid):
    """User + system CPU time of a process (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # Fields 14 and 15 of stat; after the ")" split, 12 and 13 (0-based 11, 12).
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class RssSampler:
    """Samples a process's VmRSS in the background; phases read their max."""

    def __init__(self, pid, every=0.2):
        self.pid = pid
        self.every = every
        self.samples = []  # (monotonic time, kB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic(), rss_kb(self.pid)))
            except (OSError, RuntimeError):
                return
            self._stop.wait(self.every)

    def max_since(self, start):
        values = [kb for t, kb in self.samples if t >= start]
        return max(values) if values else 0

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=2)
