"""The configuration files of one run: nginx as the fake upstream, nginx as
the plain reverse proxy (the floor), and aigate in front of the same fakes.

Upstream paths (the same through every front):
  /json/v1/chat/completions   fixed chat completion, zero latency (nginx)
  /sse/v1/chat/completions    fixed SSE stream of 24 events, zero latency (nginx)
  /slow/v1/chat/completions   the JSON after 60 ms (aigate-bench upstream)
  /paced/v1/chat/completions  the SSE stream, one event per second (aigate-bench)
aigate tells them apart by model: bench-json, bench-sse, bench-slow, bench-paced.
"""

import os

CLIENT_KEY = "fk-bench"
ADMIN_KEY = "fk-bench-admin"
MODELS = {"json": "bench-json", "sse": "bench-sse", "slow": "bench-slow", "paced": "bench-paced"}


def _nginx_common(work, name, user_root):
    return f"""{'user root;' if user_root else ''}
worker_processes auto;
pid {work}/{name}.pid;
error_log {work}/{name}-error.log warn;
daemon off;
events {{ worker_connections 16384; multi_accept on; }}
http {{
    access_log off;
    client_body_temp_path {work}/{name}-body;
    proxy_temp_path {work}/{name}-proxy;
    fastcgi_temp_path {work}/{name}-fastcgi;
    uwsgi_temp_path {work}/{name}-uwsgi;
    scgi_temp_path {work}/{name}-scgi;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
"""


def nginx_fake(work, port, fixtures, user_root):
    """nginx answering the zero-latency JSON and SSE fixtures."""
    with open(os.path.join(fixtures, "chat.json")) as f:
        json_body = f.read().strip()
    if "'" in json_body or "$" in json_body or len(json_body) > 3000:
        raise ValueError("chat.json must fit nginx's `return` (no ' or $, < 3000 bytes)")
    return _nginx_common(work, "fake", user_root) + f"""
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        location /json/ {{
            default_type application/json;
            return 200 '{json_body}';
        }}
        # The static module refuses POST with 405; error_page turns that
        # into an internal GET of the same file.
        location /sse/ {{ rewrite ^ /chat-stream.sse last; }}
        location = /chat-stream.sse {{
            root {fixtures};
            types {{ }}
            default_type text/event-stream;
            error_page 405 =200 $uri;
            etag off;
        }}
    }}
}}
"""


def nginx_proxy(work, port, fake_port, slow_port, paced_port, user_root):
    """nginx as a plain keep-alive reverse proxy in front of the same fakes."""
    upstreams = "".join(
        f"    upstream {name} {{ server 127.0.0.1:{p}; keepalive 512; }}\n"
        for name, p in (("fake", fake_port), ("slow", slow_port), ("paced", paced_port))
    )
    return _nginx_common(work, "proxy", user_root) + upstreams + f"""
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        location /json/ {{ proxy_pass http://fake; }}
        location /sse/ {{ proxy_pass http://fake; proxy_buffering off; }}
        location /slow/ {{ proxy_pass http://slow; }}
        location /paced/ {{ proxy_pass http://paced; proxy_buffering off; }}
    }}
}}
"""


def aigate(data_dir, port, fake_port, slow_port, paced_port, scale=None):
    """aigate with limits off, logging at warn, one endpoint per fake path.

    `scale`: (client keys, upstream keys per bench endpoint, extra endpoints)
    for the run that checks cost does not grow with the configuration.
    """
    client_keys, upstream_keys, extra_endpoints = scale or (1, 1, 0)
    keys = [CLIENT_KEY] + [f"fk-bench-extra-{i:05d}" for i in range(client_keys - 1)]
    # The real key last: the check compares against every key anyway.
    keys = keys[1:] + keys[:1]
    out = [
        "[server]",
        f'listen = "127.0.0.1:{port}"',
        f'data_dir = "{data_dir}"',
        "workers = 0",
        "request_timeout_secs = 120",
        "",
        "[auth]",
        "client_keys = [" + ", ".join(f'"{k}"' for k in keys) + "]",
        f'admin_keys = ["{ADMIN_KEY}"]',
        "",
        "[limits]",
        "ip_requests = -1",
        "ip_error_threshold = -1",
        "",
        "[log]",
        'level = "warn"',
        "",
    ]
    bases = {
        "json": f"http://127.0.0.1:{fake_port}/json",
        "sse": f"http://127.0.0.1:{fake_port}/sse",
        "slow": f"http://127.0.0.1:{slow_port}/slow",
        "paced": f"http://127.0.0.1:{paced_port}/paced",
    }
    upstream = ", ".join(f'"sk-bench-{i:05d}"' for i in range(upstream_keys))
    for name, base in bases.items():
        out += _endpoint(f"bench-{name}", base, MODELS[name], upstream)
    for i in range(extra_endpoints):
        # Same provider and dialect, other models: routing must look past them.
        out += _endpoint(f"extra-{i:05d}", bases["json"], f"extra-model-{i:05d}", '"sk-extra"')
    return "\n".join(out) + "\n"


def _endpoint(endpoint_id, base_url, model, keys):
    return [
        "[[endpoints]]",
        f'id = "{endpoint_id}"',
        'provider = "openai_compatible"',
        f'base_url = "{base_url}"',
        f"keys = [{keys}]",
        f'models = ["{model}"]',
        "rpm = -1",
        "rpd = -1",
        "",
    ]


def request_body(kind):
    """The client's request for one of the fake paths."""
    stream = kind in ("sse", "paced")
    body = (
        '{"model":"%s","messages":[{"role":"system","content":"You are terse."},'
        '{"role":"user","content":"Say hello to the benchmark."}]%s}'
    ) % (MODELS[kind], ',"stream":true' if stream else "")
    return body


def api_user(i):
    """A user created through the admin API for the configuration-size run:
    every per-user rule on (RPM, TPM, a quota, allowed models, a concurrency
    cap), with limits no benchmark reaches, so each request goes through
    them all without being refused."""
    return {
        "name": f"bench-user-{i:05d}",
        "rpm": 1_000_000_000,
        "tpm": 1_000_000_000_000,
        "quotas": [{"models": "bench-*", "tokens": 1_000_000_000_000_000, "period": "never"}],
        "allowed_models": ["bench-*"],
        "max_concurrent": 100_000,
    }


def wrk_script(work, kind, key=CLIENT_KEY):
    """A wrk script that POSTs the request body for `kind` with `key`."""
    body = request_body(kind)
    suffix = "" if key == CLIENT_KEY else "-user"
    path = os.path.join(work, f"post-{kind}{suffix}.lua")
    lua_body = body.replace("\\", "\\\\").replace("'", "\\'")
    with open(path, "w") as f:
        f.write(
            'wrk.method = "POST"\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            f'wrk.headers["Authorization"] = "Bearer {key}"\n'
            f"wrk.body = '{lua_body}'\n"
        )
    return path
