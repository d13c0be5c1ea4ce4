"""The report: the side-by-side tables and each target of issue 6 marked
PASS or FAIL, as one block of text printed at the end of a run."""

import statistics

FRONTS = ("direct", "nginx", "aigate")
# The stack-floor references of the zero-latency JSON phase
# (examples/bare_relay), with their short column names.
FLOOR_FRONTS = {"actix static": "static", "actix+awc relay": "relay"}

# Targets (issue 6), measured in one run on this machine.
THROUGHPUT_RATIO_MIN = 0.8  # aigate / nginx requests/s at 64 connections
ADDED_P50_MAX_MS = 0.2  # over direct, at a fixed 2,000 requests/s
ADDED_P99_MAX_MS = 1.0
STREAM_FIRST_BYTE_MAX_MS = 1.0  # added time to first byte of a stream
RSS_LOAD_MAX_MB = 64
RSS_STREAMS_MAX_MB = 150
SOAK_FLAT = 0.10  # every sample within ±10 % of the soak's mean
SCALE_RATIO_MAX = 1.10  # large config / small config, per request
# (memory per request: RSS under load minus RSS idle; the idle cost of a
# large configuration is reported, not judged)


def mb(kb):
    return kb / 1024.0


def verdict(ok):
    return "PASS" if ok else "FAIL"


def paired_ratio(by_front, top, bottom):
    """top/bottom requests/s: with rounds, the median of the per-round ratios
    (fronts of one round ran back to back) and their range; else one ratio."""
    rounds = by_front.get("_rounds")
    if not rounds:
        ratio = by_front[top]["rps"] / max(by_front[bottom]["rps"], 1e-9)
        return ratio, ratio, ratio
    ratios = [r[top] / max(r[bottom], 1e-9) for r in rounds]
    return statistics.median(ratios), min(ratios), max(ratios)


def _closed_table(title, rows, with_ttfb):
    lines = [title]
    head = f"{'conns':>5} |"
    for front in FRONTS:
        head += f" {front + ' req/s':>13} {'p50':>7} {'p99':>7}"
        head += f" {'ttfb50':>7} |" if with_ttfb else " |"
    lines.append(head + " aigate/nginx")
    for conns, by_front in rows.items():
        line = f"{conns:>5} |"
        for front in FRONTS:
            r = by_front[front]
            if with_ttfb:
                line += f" {r['rps']:>13,.0f} {r['total_p50_ms']:>7.2f} {r['total_p99_ms']:>7.2f}"
                line += f" {r['ttfb_p50_ms']:>7.2f} |"
            else:
                line += f" {r['rps']:>13,.0f} {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} |"
        ratio, low, high = paired_ratio(by_front, "aigate", "nginx")
        errors = sum(by_front[f].get("errors", 0) for f in FRONTS)
        line += f" {ratio:>6.2f}" + (f" ({low:.2f}-{high:.2f})" if high > low else "")
        line += f"  ({errors} errors!)" if errors else ""
        lines.append(line)
    lines.append("  (latencies in ms; p50/p99 of the whole response)")
    return lines


def _floor_table(rows):
    """The references' rows under the JSON table: same steps, same wrk."""
    floor = [f for f in FLOOR_FRONTS if all(f in by_front for by_front in rows.values())]
    if not floor:
        return []
    lines = ["  stack-floor references in the same steps (examples/bare_relay: actix-web + awc,"
             " nothing else)"]
    head = f"{'conns':>5} |"
    for front in floor:
        head += f" {FLOOR_FRONTS[front] + ' req/s':>13} {'p50':>7} {'p99':>7} |"
    lines.append(head + " static/nginx relay/nginx aigate/relay")
    for conns, by_front in rows.items():
        line = f"{conns:>5} |"
        for front in floor:
            r = by_front[front]
            line += f" {r['rps']:>13,.0f} {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} |"
        ratios = _floor_ratios(by_front)
        line += "".join(f" {ratios.get(k, float('nan')):>{w}.2f}" for k, w in
                        (("static/nginx", 12), ("relay/nginx", 11), ("aigate/relay", 12)))
        errors = sum(by_front[f].get("errors", 0) for f in floor)
        lines.append(line + (f"  ({errors} errors!)" if errors else ""))
    return lines


def _floor_ratios(by_front):
    pairs = {"static/nginx": ("actix static", "nginx"),
             "relay/nginx": ("actix+awc relay", "nginx"),
             "aigate/relay": ("aigate", "actix+awc relay")}
    return {name: paired_ratio(by_front, top, bottom)[0]
            for name, (top, bottom) in pairs.items() if top in by_front and bottom in by_front}


def _floor_section(rows, conns=64):
    """What the references say about the throughput target, at 64 connections."""
    by_front = rows.get(conns)
    ratios = _floor_ratios(by_front) if by_front else {}
    if len(ratios) < 3:
        return []
    return [
        f"Stack floor at {conns} connections (zero-latency JSON, same steps as above)",
        f"  actix+awc relay / nginx   {ratios['relay/nginx']:5.2f}"
        "  aigate's HTTP stack relaying, with no gateway logic",
        f"  aigate / actix+awc relay  {ratios['aigate/relay']:5.2f}"
        "  what aigate keeps of that with its own work",
        f"  actix static / nginx      {ratios['static/nginx']:5.2f}"
        "  the actix-web server leg alone, no upstream call",
        "  aigate/nginx = relay/nginx × aigate/relay: the first factor is what the stack itself"
        " allows",
        "  (static/nginx: its server leg alone), the second what aigate's own work costs on top.",
        "",
    ]


def _rate_table(title, by_front, with_ttfb):
    lines = [title]
    head = f"{'front':>7} | {'achieved':>8} {'p50':>7} {'p90':>7} {'p99':>7} {'p99.9':>7} {'max':>7}"
    if with_ttfb:
        head += f" | {'ttfb50':>7} {'ttfb99':>7}"
    lines.append(head + " | errors  behind")
    for front in FRONTS:
        r = by_front[front]
        line = (
            f"{front:>7} | {r['achieved_rps']:>8,.0f} {r['latency_p50_ms']:>7.3f}"
            f" {r['latency_p90_ms']:>7.3f} {r['latency_p99_ms']:>7.3f}"
            f" {r['latency_p999_ms']:>7.3f} {r['latency_max_ms']:>7.2f}"
        )
        if with_ttfb:
            line += f" | {r['ttfb_p50_ms']:>7.3f} {r['ttfb_p99_ms']:>7.3f}"
        lines.append(line + f" | {r['errors']:>6} {r['behind']:>7}")
    return lines


def targets(res):
    """[(name, measured text, target text, ok or None when not run)]."""
    out = []
    if "json" not in res:
        return _soak_target(res)
    ratio, low, high = paired_ratio(res["json"][64], "aigate", "nginx")
    spread = f" (rounds {low:.2f}-{high:.2f})" if high > low else ""
    out.append(("throughput aigate/nginx at 64 conns", f"{ratio:.2f}{spread}",
                f">= {THROUGHPUT_RATIO_MIN}", ratio >= THROUGHPUT_RATIO_MIN))
    rate = res["rate"]
    added50 = rate["aigate"]["latency_p50_ms"] - rate["direct"]["latency_p50_ms"]
    added99 = rate["aigate"]["latency_p99_ms"] - rate["direct"]["latency_p99_ms"]
    out.append((f"added p50 at {res['meta']['rate']:,} req/s", f"{added50:.3f} ms",
                f"<= {ADDED_P50_MAX_MS} ms", added50 <= ADDED_P50_MAX_MS))
    out.append((f"added p99 at {res['meta']['rate']:,} req/s", f"{added99:.3f} ms",
                f"<= {ADDED_P99_MAX_MS} ms", added99 <= ADDED_P99_MAX_MS))
    sse = res["sse_rate"]
    first = sse["aigate"]["ttfb_p50_ms"] - sse["direct"]["ttfb_p50_ms"]
    out.append(("stream first-byte overhead (p50)", f"{first:.3f} ms",
                f"<= {STREAM_FIRST_BYTE_MAX_MS} ms", first <= STREAM_FIRST_BYTE_MAX_MS))
    load = mb(res["rss"]["load_max_kb"])
    out.append(("aigate RSS under load (max)", f"{load:.1f} MB",
                f"<= {RSS_LOAD_MAX_MB} MB", load <= RSS_LOAD_MAX_MB))
    streams = res["streams"]
    held = mb(streams.get("rss_kb", 0))
    all_open = streams["open"] == streams["requested"]
    out.append((f"aigate RSS with {streams['requested']:,} open streams",
                f"{held:.1f} MB ({streams['open']:,} open)",
                f"<= {RSS_STREAMS_MAX_MB} MB, all open", all_open and held <= RSS_STREAMS_MAX_MB))
    scale = res.get("scale")
    if scale:
        for key, label in (("cpu_us_per_req", "CPU per request"),
                           ("p50_ms", f"p50 at {res['meta']['rate']:,} req/s"),
                           ("rss_added_kb", "RSS added by load")):
            small, large = scale["small"][key], scale["large"][key]
            ratio = large / max(small, 1e-9)
            out.append((f"scale: {label}, large/small config", f"{ratio:.2f}",
                        f"<= {SCALE_RATIO_MAX}", ratio <= SCALE_RATIO_MAX))
    return out + _soak_target(res)


def _soak_target(res):
    soak = res.get("soak")
    if soak:
        return [(f"RSS flat over a {soak['seconds']} s soak", f"±{soak['spread'] * 100:.1f} %",
                 f"±{SOAK_FLAT * 100:.0f} %", soak["spread"] <= SOAK_FLAT)]
    return [("RSS flat over a 10-minute soak", "not run (bench/run --soak 600)",
             f"±{SOAK_FLAT * 100:.0f} %", None)]


def render(res):
    meta = res["meta"]
    lines = [
        f"aigate benchmark  {meta['when']}  aigate {meta['aigate_rev']}",
        f"machine: {meta['cores']} cores, {meta['cpu']}; {meta['nginx']}, {meta['wrk']};"
        f" {meta['seconds']} s per run, all on 127.0.0.1",
        f"load average before the run: {meta['load_before']:.1f} (a quiet machine is under 0.5;"
        " more means something else shared the two cores)",
        "",
    ]
    if "json" in res:
        lines += _full_sections(res)
    soak = res.get("soak")
    if soak:
        lines.append(f"Soak: {soak['seconds']} s at {soak['rate']} req/s JSON +"
                     f" {soak['sse_rate']} streams/s; RSS every 10 s (MB):")
        lines.append("  " + " ".join(f"{mb(kb):.1f}" for kb in soak["samples_kb"]))
        lines.append(f"  trend after the first 30 s: {soak.get('mb_per_min', 0):+.2f} MB a minute")
        lines.append("")
    lines.append("Targets (issue 6)")
    for name, measured, target, ok in targets(res):
        mark = "----" if ok is None else verdict(ok)
        lines.append(f"  [{mark}] {name:<44} {measured:<26} target {target}")
    return "\n".join(lines)


def _full_sections(res):
    meta = res["meta"]
    lines = []
    rounds = meta.get("json_rounds", 1)
    title = "JSON chat completion, zero-latency upstream (wrk, closed loop)"
    if rounds > 1:
        title += (f"\n  each front {rounds} times per step, {meta['json_seconds']} s each, fronts"
                  " interleaved: the median run, and the median (range) of the per-round ratios")
    table = _closed_table(title, res["json"], False)
    # The references' rows go under the table, before its footnote.
    lines += table[:-1] + _floor_table(res["json"]) + table[-1:]
    lines.append("")
    lines += _floor_section(res["json"])
    lines += _closed_table("JSON chat completion, upstream answering after 60 ms (wrk)",
                           res["slow"], False)
    lines.append("")
    lines += _closed_table("SSE stream of 24 events, zero-latency upstream (aigate-bench load)",
                           res["sse"], True)
    lines.append("")
    lines += _rate_table(f"Fixed rate {meta['rate']:,} req/s, JSON, {meta['rate_conns']} conns"
                         " (aigate-bench rate; ms)", res["rate"], False)
    lines.append(f"  aigate CPU per request at this rate: {res['cpu_us_per_req']:.0f} µs")
    lines.append("")
    lines += _rate_table(f"Fixed rate {meta['sse_rate']:,} streams/s, SSE (ms)",
                         res["sse_rate"], True)
    lines.append("")
    rss, streams = res["rss"], res["streams"]
    lines.append("aigate memory (VmRSS)")
    lines.append(f"  idle after start      {mb(rss['idle_start_kb']):7.1f} MB")
    lines.append(f"  under load (max)      {mb(rss['load_max_kb']):7.1f} MB")
    lines.append(f"  idle after load       {mb(rss['idle_after_kb']):7.1f} MB")
    lines.append(
        f"  {streams['requested']:,} open streams     {mb(streams.get('rss_kb', 0)):7.1f} MB"
        f"  ({streams['open']:,} open, {streams['failed']} failed, all open after"
        f" {streams['seconds_to_open_all']:.1f} s, first event p50 {streams['ttfb_p50_ms']:.1f} ms"
        f" p99 {streams['ttfb_p99_ms']:.1f} ms)"
    )
    lines.append(f"  after the streams     {mb(rss['after_streams_kb']):7.1f} MB")
    scale = res.get("scale")
    if scale:
        lines.append("")
        lines.append("Configuration size (a fresh aigate each run, same load; medians of runs"
                     " alternating small/large)")
        lines.append(f"  {'config':<58} {'req/s@64':>9} {'p50@rate':>9} {'p99@rate':>9}"
                     f" {'CPU µs/req':>10} {'RSS idle':>9} {'RSS load':>9} {'added':>8}")
        for key in ("small", "large"):
            s = scale[key]
            lines.append(
                f"  {s['label']:<58} {s['rps']:>9,.0f} {s['p50_ms']:>9.3f} {s['p99_ms']:>9.3f}"
                f" {s['cpu_us_per_req']:>10.0f} {mb(s['rss_idle_kb']):>7.1f}MB"
                f" {mb(s['rss_load_kb']):>7.1f}MB {mb(s['rss_added_kb']):>6.1f}MB"
            )
        lines.append("  (users: config client keys + users created through the admin API with RPM, TPM,")
        lines.append("   a quota, allowed models and a concurrency cap; the load is an API user's)")
    lines.append("")
    return lines
