"""The processes a benchmark run starts, and the guarantee that it stops them.

Every process is started in its own session (so its children go with it) and
remembered by pid; `stop_all` ends each one by that id, never by name, and
runs whether the benchmark finished, failed or was interrupted.
"""

import os
import signal
import socket
import subprocess
import time
import urllib.request


class Procs:
    def __init__(self, logdir):
        self.logdir = logdir
        self.running = []  # (name, Popen, log file)

    def start(self, name, argv, env=None):
        log = open(os.path.join(self.logdir, f"{name}.log"), "ab")
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        self.running.append((name, proc, log))
        return proc

    def check_alive(self):
        """Fails if a process this run started has exited (a server that
        could not bind its port, say)."""
        for name, proc, _log in self.running:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}; see {name}.log")

    def stop(self, proc, grace=10.0):
        for entry in list(self.running):
            if entry[1] is proc:
                self._end(entry, grace)
                self.running.remove(entry)

    def stop_all(self):
        while self.running:
            self._end(self.running.pop(), 5.0)

    @staticmethod
    def _end(entry, grace):
        _name, proc, log = entry
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=5)
        log.close()

    def log_tail(self, name, lines=20):
        path = os.path.join(self.logdir, f"{name}.log")
        try:
            with open(path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


_GIVEN_PORTS = set()


def free_port():
    """A free loopback port, never one this run has handed out before: the
    kernel may offer a port again once its probe socket is closed, and two
    servers told the same port leave one of them not listening."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _GIVEN_PORTS:
            _GIVEN_PORTS.add(port)
            return port


def wait_http(url, proc, timeout=30.0, method="GET"):
    """Waits until `url` answers at all (any status); fails if `proc` dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}")
        try:
            req = urllib.request.Request(url, method=method)
            urllib.request.urlopen(req, timeout=1).read()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def post(url, body, headers=None, timeout=10.0):
    """One POST; returns (status, content type, body text)."""
    req = urllib.request.Request(url, data=body.encode(), method="POST")
    req.add_header("content-type", "application/json")
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers.get("content-type", ""), resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("content-type", ""), e.read().decode()


def raise_fd_limit():
    """A thousand open streams need ~2,000 descriptors in the gateway alone."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    want = min(want, 1 << 20)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
