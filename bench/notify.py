"""`just bench-notify`: what telling the shop costs, measured in one run.

(W) hot reserves on one event with no webhook endpoint, against the same with one endpoint
    subscribed to every message at a fast local receiver (`faults --receive`), in alternating
    rounds, on PostgreSQL (a throwaway cluster, fsync on) and on SQLite. After each webhook
    round the run waits until no delivery is pending (goal: within 30 s of the round's end) and
    reads the delivery lag, commit to first attempt, from the attempts table (p50/p99).
(S) N subscribers (default 10,000) of one event's stream (`GET /api/events/{id}/stream`, raw
    sockets with asyncio), then reserves one at a time: for each, the time from its 201 to the
    frame reaching every subscriber (p50/p99 over subscribers and reserves), and the server's
    resident memory per subscriber.

Bounded: every loop has a count and a deadline. Python standard library only; reuses run.py.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as b  # noqa: E402  (the shared cluster, server and bench helpers)

ROOT = Path(__file__).resolve().parent.parent


def api(server: b.Server, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(server.base + path, data=data, method=method)
    req.add_header("authorization", f"Bearer {b.ADMIN_TOKEN}")
    if data is not None:
        req.add_header("content-type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as res:
        return res.status, json.loads(res.read() or b"null")


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def sql_rows(store: str, target, sql: str) -> list[list[str]]:
    if store == "postgres":
        cluster, db = target
        out = cluster.psql(db, sql)
    else:
        with sqlite3.connect(str(target), timeout=30) as conn:
            return [[str(v) for v in row] for row in conn.execute(sql).fetchall()]
    return [line.split("|") for line in out.splitlines() if line]


def pending(store: str, target) -> int:
    return int(sql_rows(store, target, "SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'")[0][0])


def lags_ms(store: str, target, after_id: int) -> list[float]:
    rows = sql_rows(store, target,
                    "SELECT (a.at_us - d.message_us) / 1000.0 FROM webhook_attempts a "
                    "JOIN webhook_deliveries d ON d.id = a.delivery_id "
                    f"WHERE a.attempt = 1 AND d.id > {after_id}")
    return [float(r[0]) for r in rows]


def last_delivery(store: str, target) -> int:
    return int(sql_rows(store, target, "SELECT COALESCE(MAX(id), 0) FROM webhook_deliveries")[0][0])


def webhook_rounds(ticketctl: Path, faults: Path, store: str, target, url: str, workdir: Path,
                   rounds: int, seconds: float, clients: int) -> dict:
    server = b.Server(ticketctl, url, workdir, 256, f"notify-{store}",
                      ["--webhook-allow-private-networks", "true"])
    receiver = subprocess.Popen([str(faults), "--receive", "0", "--receive-seconds",
                                 str(int(rounds * (seconds + 60) + 120))],
                                stdout=subprocess.PIPE, text=True)
    port = int(receiver.stdout.readline().split()[1])
    plain, hooked, lags, settle = [], [], [], []
    endpoint = None
    try:
        for i in range(rounds):
            for with_hook in (False, True):
                if with_hook and endpoint is None:
                    _, endpoint = api(server, "POST", "/api/webhooks",
                                      {"url": f"http://127.0.0.1:{port}/hooks", "events": ["*"]})
                if not with_hook and endpoint is not None:
                    api(server, "DELETE", f"/api/webhooks/{endpoint['id']}")
                    endpoint = None
                before = last_delivery(store, target)
                r = b.bench(ticketctl, server, mix="reserve=100", clients=clients, seconds=seconds,
                            threads=1)
                rate = r["requests_per_second"]
                (hooked if with_hook else plain).append(rate)
                if with_hook:
                    ended = time.time()
                    while pending(store, target) > 0 and time.time() - ended < 120:
                        time.sleep(0.2)
                    settle.append(time.time() - ended)
                    lags.extend(lags_ms(store, target, before))
                b.log(f"{store} round {i + 1}: {'webhook' if with_hook else 'plain'} {rate:,.0f}/s")
    finally:
        server.stop()
        receiver.terminate()
    ratios = [h / p for p, h in zip(plain, hooked)]
    return {
        "plain": plain, "hooked": hooked, "ratio": statistics.median(ratios),
        "settle_s": settle, "lag_p50_ms": percentile(lags, 50), "lag_p99_ms": percentile(lags, 99),
        "deliveries": len(lags), "left_pending": pending(store, target),
    }


async def open_stream(port: int, event: int, frames: dict, i: int):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /api/events/{event}/stream HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    buffer = b""
    try:
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                return
            buffer += chunk
            while b"\n\n" in buffer:
                frame, buffer = buffer.split(b"\n\n", 1)
                for line in frame.split(b"\n"):
                    if line.startswith(b"id: "):
                        frames.setdefault(int(line[4:]), []).append(time.perf_counter())
    except (ConnectionError, asyncio.CancelledError):
        return
    finally:
        writer.close()


async def stream_run(server: b.Server, event: int, subscribers: int, changes: int) -> dict:
    rss_before = server.memory_kib()["rss_kib"]
    frames: dict[int, list[float]] = {}
    tasks = []
    for i in range(subscribers):
        tasks.append(asyncio.create_task(open_stream(server.port, event, frames, i)))
        if i % 500 == 499:
            await asyncio.sleep(0.05)
    # Everyone has the first frame.
    deadline = time.time() + 120
    while sum(len(v) for v in frames.values()) < subscribers and time.time() < deadline:
        await asyncio.sleep(0.1)
    connected = sum(len(v) for v in frames.values())
    rss_after = server.memory_kib()["rss_kib"]
    delays = []
    loop = asyncio.get_running_loop()
    for _ in range(changes):
        seen = max(frames) if frames else 0
        started = time.perf_counter()
        await loop.run_in_executor(None, lambda: api(server, "POST", f"/api/events/{event}/reserve"))
        answered = time.perf_counter()
        deadline = time.time() + 30
        while time.time() < deadline:
            newer = [k for k in frames if k > seen]
            if newer and len(frames[max(newer)]) >= connected:
                break
            await asyncio.sleep(0.005)
        newer = [k for k in frames if k > seen]
        if newer:
            delays.extend((t - answered) * 1000 for t in frames[max(newer)])
        await asyncio.sleep(0.3)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "subscribers": subscribers, "connected": connected, "changes": changes,
        "p50_ms": percentile(delays, 50), "p99_ms": percentile(delays, 99),
        "max_ms": max(delays) if delays else None,
        "rss_per_subscriber_kib": (rss_after - rss_before) / max(connected, 1),
        "frames": len(delays),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--subscribers", type=int, default=10_000)
    ap.add_argument("--changes", type=int, default=20)
    ap.add_argument("--smoke", action="store_true", help="seconds 2, 1 round, 200 subscribers")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.smoke:
        args.seconds, args.rounds, args.subscribers, args.changes = 2.0, 1, 200, 3
    profile = "dev" if args.smoke else "release"
    b.log(f"building ticketctl and faults ({profile})")
    subprocess.run(["cargo", "build", "--quiet", "--profile", profile, "-p", "ticketctl", "-p", "faults"],
                   check=True, cwd=ROOT)
    target = ROOT / "target" / ("debug" if profile == "dev" else "release")
    ticketctl, faults = target / "ticketctl", target / "faults"
    workdir = Path(tempfile.mkdtemp(prefix="notify-"))
    cluster = b.Cluster(workdir)
    results: dict = {"when": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                     "machine": b.machine(), "seconds": args.seconds, "rounds": args.rounds,
                     "clients": args.clients}
    try:
        cluster.start()
        cluster.psql("postgres", "CREATE DATABASE notify")
        url = cluster.url("notify")
        b.run([str(ticketctl), "migrate", "--database-url", url])
        results["postgres"] = webhook_rounds(ticketctl, faults, "postgres", (cluster, "notify"), url,
                                             workdir, args.rounds, args.seconds, args.clients)
        lite = workdir / "notify.db"
        lite_url = f"sqlite://{lite}"
        results["sqlite"] = webhook_rounds(ticketctl, faults, "sqlite", lite, lite_url, workdir,
                                           args.rounds, args.seconds, args.clients)
        server = b.Server(ticketctl, url, workdir, 256, "stream",
                          ["--max-streams", str(args.subscribers + 100),
                           "--max-connections", str(args.subscribers + 1000)])
        try:
            event = b.create_event(ticketctl, url, "streamed")
            results["stream"] = asyncio.run(stream_run(server, event, args.subscribers, args.changes))
        finally:
            server.stop()
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    text = render(results)
    print(text)
    out = Path(args.out) if args.out else (Path(tempfile.gettempdir()) / "notify-smoke.md" if args.smoke
                                            else ROOT / "bench" / "results" / f"{dt.date.today()}-notify.md")
    out.write_text(text)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2))
    b.log(f"results in {out}")
    bad = [s for s in ("postgres", "sqlite") if results[s]["left_pending"] != 0]
    return 1 if bad else 0


def render(r: dict) -> str:
    f = lambda x, d=0: "—" if x is None else f"{x:,.{d}f}"
    lines = [f"# Notifications benchmark, {r['when']}", "",
             f"- machine: {r['machine']['cpu']}, {r['machine']['cores']} cores, "
             f"{r['machine']['memory_gib']} GiB, Linux {r['machine']['kernel']}",
             f"- hot reserves, one event, {r['clients']} connections, {r['seconds']} s per run, "
             f"{r['rounds']} rounds alternating no endpoint / one endpoint subscribed to `*` at a "
             "local receiver (`faults --receive`); PostgreSQL fsync on, SQLite synchronous=FULL", "",
             "| store | no endpoint (req/s) | one endpoint (req/s) | ratio (median of rounds; goal 0.9) "
             "| all delivered after the run's end | delivery lag p50 / p99 ms (goal p99 < 1000) | deliveries |",
             "|---|---|---|---:|---|---:|---:|"]
    for s in ("postgres", "sqlite"):
        w = r[s]
        lines.append(f"| {s} | {', '.join(f(x) for x in w['plain'])} | {', '.join(f(x) for x in w['hooked'])} "
                     f"| {w['ratio']:.2f} | {', '.join(f(x, 1) + ' s' for x in w['settle_s'])} "
                     f"| {f(w['lag_p50_ms'], 1)} / {f(w['lag_p99_ms'], 1)} | {w['deliveries']:,} |")
    st = r["stream"]
    lines += ["", f"Stream: {st['connected']:,} of {st['subscribers']:,} subscribers of one event "
              f"connected; {st['changes']} reserves one at a time; from each 201 to its frame at every "
              f"subscriber: p50 {f(st['p50_ms'], 1)} ms, p99 {f(st['p99_ms'], 1)} ms, max "
              f"{f(st['max_ms'], 1)} ms (goal p99 < 500 ms; {st['frames']:,} frames); server RSS per "
              f"subscriber {st['rss_per_subscriber_kib']:.1f} KiB.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
