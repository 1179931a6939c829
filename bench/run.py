#!/usr/bin/env python3
"""`just bench`: the hot-event benchmark, side by side, in one run.

(S) the seed's design: pgbench running bench/sql/seed_reserve.sql (lock the event row, count
    the live holds, insert), straight on PostgreSQL with no HTTP in the path;
(U) the service on PostgreSQL with group commit off (--batch-max 1), through HTTP;
(P) the service on PostgreSQL with group commit, through HTTP (`ticketctl bench`);
(L) the service on its embedded SQLite store, through HTTP.

Each run loads a fresh event whose capacity never runs out, at 1, 16, 64 and 256 concurrent
clients; then S and P run again at 64 clients on an event pre-filled with 1,000,000 live holds.
PostgreSQL is a throwaway cluster started from the local server binaries, with fsync and
synchronous_commit on: every reservation answered 201 is durable. Every service run ends with
`ticketctl bench --verify`, and the README's SQL invariant check runs on every event at the end.

The table goes to stdout and to bench/results/<date>.md (with --smoke: a temporary file).
Python standard library only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED_SQL = ROOT / "bench" / "sql" / "seed_reserve.sql"
CAPACITY = 2_000_000_000  # never runs out
ADMIN_TOKEN = "bench-admin-token"
ROUNDS = 3  # alternating runs for the pre-filled comparison


def log(msg: str) -> None:
    print(f"== {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen | None = None, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"process on port {port} exited early")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on port {port}")


# ---------------------------------------------------------------- PostgreSQL


def pg_bin_dir() -> Path:
    candidates = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], text=True, capture_output=True).stdout.strip()
        candidates.append(Path(out))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for c in candidates:
        if (c / "initdb").exists() and (c / "pg_ctl").exists() and (c / "pgbench").exists():
            return c
    if shutil.which("initdb") and shutil.which("pgbench"):
        return Path(shutil.which("initdb")).parent
    raise SystemExit("the benchmark needs the PostgreSQL server binaries (initdb, pg_ctl, pgbench): "
                     "apt-get install postgresql postgresql-contrib")


class Cluster:
    """A throwaway PostgreSQL cluster on a free port, durable settings, removed at exit."""

    def __init__(self, workdir: Path):
        self.bin = pg_bin_dir()
        self.dir = workdir / "pg"
        self.data = self.dir / "data"
        self.port = free_port()
        self.root = os.geteuid() == 0
        self.dir.mkdir(parents=True)
        if self.root:
            run(["chown", "-R", "postgres:postgres", str(self.dir)])
            os.chmod(workdir, 0o755)

    def _as_owner(self, cmd: list[str]) -> list[str]:
        return (["runuser", "-u", "postgres", "--"] + cmd) if self.root else cmd

    def start(self) -> None:
        log(f"PostgreSQL cluster on 127.0.0.1:{self.port} ({self.bin})")
        run(self._as_owner([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                            "--auth=trust", "-E", "UTF8"]))
        # Durable (fsync, synchronous_commit, full page writes on), and sized for a write-heavy
        # server: at 20,000 reservations/s PostgreSQL writes about 8 MB of WAL a second, so the
        # default max_wal_size (1 GB) forces a checkpoint every two minutes, whose writes stall
        # commits for seconds on this disk. 8 GB and 15 minutes is ordinary production tuning.
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                   "-c max_connections=400 -c shared_buffers=256MB "
                   "-c fsync=on -c synchronous_commit=on -c full_page_writes=on "
                   "-c max_wal_size=8GB -c checkpoint_timeout=15min "
                   # kept in server.log (BENCH_KEEP=1) to explain a slow run
                   "-c log_checkpoints=on -c log_lock_waits=on -c log_min_duration_statement=500")
        run(self._as_owner([str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
                            "-l", str(self.dir / "server.log"), "-w", "start"]))

    def stop(self) -> None:
        subprocess.run(self._as_owner([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast",
                                       "-w", "stop"]), capture_output=True)

    def url(self, db: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def psql(self, db: str, sql: str) -> str:
        return run([str(self.bin / "psql"), "-X", "-qAt", "-v", "ON_ERROR_STOP=1",
                    "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", db,
                    "-c", sql]).stdout.strip()

    def version(self) -> str:
        return self.psql("postgres", "SHOW server_version")


# ---------------------------------------------------------------- the service


class Server:
    def __init__(self, ticketctl: Path, url: str, workdir: Path, batch_max: int, name: str,
                 extra: list[str] | None = None):
        self.port = free_port()
        self.log = open(workdir / f"serve-{name}.log", "w")
        env = dict(os.environ, RUST_LOG="warn")
        self.proc = subprocess.Popen(
            [str(ticketctl), "serve", "--database-url", url, "--bind", f"127.0.0.1:{self.port}",
             "--admin-token", ADMIN_TOKEN, "--expire-interval-seconds", "0",
             "--reservation-ttl-seconds", "86400", "--batch-max", str(batch_max)] + (extra or []),
            stdout=self.log, stderr=self.log, env=env, cwd=workdir)
        wait_port(self.port, self.proc)
        self.base = f"http://127.0.0.1:{self.port}"

    def memory_kib(self) -> dict:
        """The server's resident memory now and at its peak, from /proc."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        field = lambda name: int(re.search(rf"{name}:\s+(\d+) kB", status).group(1))
        return {"rss_kib": field("VmRSS"), "peak_rss_kib": field("VmHWM")}

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def create_event(ticketctl: Path, url: str, name: str) -> int:
    out = run([str(ticketctl), "events", "create", "--database-url", url, "--name", name,
               "--capacity", str(CAPACITY)]).stdout
    return json.loads(out)["id"]


def service_run(ticketctl: Path, server: Server, event: int, clients: int, seconds: float,
                threads: int) -> dict:
    out = subprocess.run(
        [str(ticketctl), "bench", "--url", server.base, "--event", str(event),
         "--concurrency", str(clients), "--threads", str(threads), "--duration", str(seconds),
         "--json", "--verify"],
        text=True, capture_output=True)
    if out.returncode != 0:
        raise SystemExit(f"ticketctl bench failed ({out.returncode}): {out.stderr.strip()}\n{out.stdout}")
    result = json.loads(out.stdout)
    if not result.get("verify", {}).get("ok"):
        raise SystemExit(f"--verify failed: {result.get('verify')}")
    errors = result.get("transport_errors") or {}
    non_201 = {k: v for k, v in result["statuses"].get("reserve", {}).items() if k != "201"}
    if errors or non_201:
        raise SystemExit(f"reserve answers other than 201 on an event that cannot sell out: "
                         f"{non_201} {errors}")
    return result


def bench(ticketctl: Path, server: Server, *, mix: str, clients: int, seconds: float, threads: int,
          events: int = 1, verify: bool = True, extra: tuple[str, ...] = ()) -> dict:
    """`ticketctl bench` on `events` fresh events that cannot sell out."""
    cmd = [str(ticketctl), "bench", "--url", server.base, "--capacity", str(CAPACITY),
           "--events", str(events), "--admin-token", ADMIN_TOKEN, "--mix", mix,
           "--concurrency", str(clients), "--threads", str(threads), "--duration", str(seconds), "--json",
           *extra]
    out = subprocess.run(cmd + (["--verify"] if verify else []), text=True, capture_output=True)
    if out.returncode != 0:
        raise SystemExit(f"ticketctl bench failed ({out.returncode}): {out.stderr.strip()}\n{out.stdout}")
    return json.loads(out.stdout)


# Ticket types of the inventory shapes: 4 types drawing from 2 named quotas and the root (type 0
# from quota 0, type 1 from quota 1, type 2 from both, type 3 from the root only).
TYPED = ("--ticket-types", "4", "--quotas", "2")

# (key, what, mix, events, extra bench flags): the load shapes of an on-sale, compared with
# GET /health.
SHAPES = [
    ("hot", "reserve, one hot event", "reserve=100", 1, ()),
    ("typed", "typed reserve of 1 ticket, one hot event (4 types, 2 quotas + root)", "reserve=100", 1, TYPED),
    ("lines3", "reserve of 3 lines (1 ticket each), one hot event", "reserve=100", 1, TYPED + ("--lines", "3")),
    ("quotas100", "typed reserve of 1 ticket, one hot event with 100 quotas", "reserve=100", 1,
     ("--ticket-types", "4", "--quotas", "100")),
    ("spread", "reserve spread over {n} events", "reserve=100", 1000, ()),
    ("read1", "GET /api/events/{{id}}, one event", "read=100", 1, ()),
    ("readn", "GET /api/events/{{id}}, spread over {n} events", "read=100", 1000, ()),
    ("rush", "80% reads + 20% reserves, one event (an on-sale rush)", "read=80,reserve=20", 1, ()),
    ("mixed", "90% reserves + 10% purchases of own holds, one event", "reserve=90,purchase=10", 1, ()),
]

# The seat shapes: a fixed number of requests on fresh events of SEATS seats (80% held before
# the run for best80), so every run decides the same number of requests and the event cannot
# run out during it; hot_n is plain hot reserves of the same length, their reference.
SEATS = 50_000
SEAT_REQUESTS = 4_500


def seat_shapes(seats: int, requests: int) -> list:
    n = ("--requests", str(requests))
    plan = ("--seats", str(seats))
    return [
        ("hot_n", f"reserve, one hot event, {requests:,} requests", "reserve=100", 1, n),
        ("best", f"best-available pairs, one {seats:,}-seat event, {requests:,} requests", "best=100", 1, plan + n),
        ("best80", f"best-available pairs, one {seats:,}-seat event 80% held, {requests:,} requests", "best=100", 1,
         plan + ("--fill", "0.8") + n),
        ("seatpick", f"two seats by label, one {seats:,}-seat event, {requests:,} requests (201 or 409)", "seat=100", 1,
         plan + n),
        ("seatmap", f"GET /api/events/{{{{id}}}}/seats of a {seats:,}-seat event (gzip)", "seatmap=100", 1, plan),
        ("seatmap304", f"the same with If-None-Match: 304", "seatmap304=100", 1, plan),
    ]


# Answers other than 200/201 a shape may give.
ALSO_ALLOWED = {"seatpick": {"409"}, "seatmap304": {"304"}}

# Seat shapes against others of the same run: (key, reference, what, goal).
SEAT_RATIOS = [
    ("best", "hot_n", "best-available pairs against plain hot reserves", 0.5),
    ("best80", "best", "best-available pairs at 80% held against a fresh event", 0.8),
    ("seatpick", "hot_n", "reserves of two seats by label against plain hot reserves", 0.5),
]

# Seat map reads against GET /health: (key, goal).
SEAT_READS = [("seatmap", 0.3), ("seatmap304", 0.6)]

# Shapes compared with plain hot reserves, run by run: (key, what, goal).
AGAINST_HOT = [
    ("typed", "typed reserves against plain hot reserves", 0.8),
    ("lines3", "3-line reserves against plain hot reserves", 0.6),
]


def shapes_run(ticketctl: Path, server: Server, clients: int, seconds: float, threads: int,
               spread: int, rounds: int, seat_shapes: list) -> dict:
    """Every shape `rounds` times, each round after a `GET /health` run; medians per shape.

    This machine drifts by up to ±20% from minute to minute, so the shapes and the ceiling are
    measured in alternation, in the same minutes, and compared by their medians."""
    median = lambda xs: sorted(xs)[len(xs) // 2]
    out: dict = {"clients": clients, "rounds": rounds, "health": [], "shapes": {}, "runs": {}}
    for r in range(rounds):
        log(f"  round {r + 1}/{rounds}")
        out["health"].append(bench(ticketctl, server, mix="health=100", clients=clients,
                                   seconds=seconds, threads=threads, verify=False))
        for key, what, mix, events, extra in SHAPES + seat_shapes:
            n = spread if events > 1 else 1
            result = bench(ticketctl, server, mix=mix, clients=clients, seconds=seconds, threads=threads,
                           events=n, extra=extra)
            if not result.get("verify", {}).get("ok"):
                raise SystemExit(f"--verify failed on shape {key}: {result.get('verify')}")
            allowed = {"200", "201"} | ALSO_ALLOWED.get(key, set())
            bad = {op: {k: v for k, v in st.items() if k not in allowed}
                   for op, st in result["statuses"].items()}
            if any(bad.values()) or result.get("transport_errors"):
                raise SystemExit(f"shape {key}: answers other than 200/201: {bad} {result.get('transport_errors')}")
            result["what"] = what.format(n=n)
            out["runs"].setdefault(key, []).append(result)
    out["ceiling"] = median([h["requests_per_second"] for h in out["health"]])
    for key, runs in out["runs"].items():
        rates = [x["requests_per_second"] for x in runs]
        chosen = sorted(runs, key=lambda x: x["requests_per_second"])[len(runs) // 2]
        out["shapes"][key] = dict(chosen, rates=rates)
    ratio = lambda a, b: median([x["requests_per_second"] / y["requests_per_second"]
                                 for x, y in zip(out["runs"][a], out["runs"][b])])
    if "mixed" in out["runs"] and "hot" in out["runs"]:
        out["mixed_over_hot"] = ratio("mixed", "hot")
    out["over_hot"] = {key: ratio(key, "hot") for key, _, _ in AGAINST_HOT if key in out["runs"]}
    if "quotas100" in out["runs"] and "typed" in out["runs"]:
        out["quotas100_over_typed"] = ratio("quotas100", "typed")
    out["seat_ratios"] = {key: ratio(key, ref) for key, ref, _, _ in SEAT_RATIOS
                          if key in out["runs"] and ref in out["runs"]}
    out["seat_reads"] = {key: median([x["requests_per_second"] / h["requests_per_second"]
                                      for x, h in zip(out["runs"][key], out["health"])])
                         for key, _ in SEAT_READS if key in out["runs"]}
    return out


def overload_run(ticketctl: Path, url: str, workdir: Path, batch_max: int, clients: int, seconds: float,
                 deadline_ms: int, name: str, checked: bool) -> dict:
    """`clients` connections reserving on one event against a server with a request deadline."""
    server = Server(ticketctl, url, workdir, batch_max, name,
                    ["--request-deadline-ms", str(deadline_ms)])
    try:
        result = bench(ticketctl, server, mix="reserve=100", clients=clients, seconds=seconds,
                       threads=2, verify=True)
        result["memory"] = server.memory_kib()
    finally:
        server.stop()
    statuses = result["statuses"].get("reserve", {})
    problems = []
    if result.get("transport_errors"):
        problems.append(f"no answer: {result['transport_errors']}")
    if set(statuses) - {"201", "409", "503"}:
        problems.append(f"answers other than 201, 409, 503: {statuses}")
    if result.get("unavailable_without_retry_after"):
        problems.append(f"{result['unavailable_without_retry_after']} answers 503 without Retry-After")
    if result["latency_ms"]["p99"] >= 2 * deadline_ms:
        problems.append(f"p99 {result['latency_ms']['p99']:.0f} ms >= twice the deadline")
    if not result.get("verify", {}).get("ok"):
        problems.append(f"--verify: {result.get('verify')}")
    result.update({"clients": clients, "deadline_ms": deadline_ms, "problems": problems, "checked": checked})
    return result


def recount_mismatches_pg(cluster: Cluster, db: str) -> list[str]:
    """Events whose counters differ from a recount of their rows (what `events check` does)."""
    rows = cluster.psql(db, """
        SELECT e.id FROM events e
          LEFT JOIN (SELECT event_id,
                            SUM(quantity) FILTER (WHERE status = 'purchased') AS p,
                            SUM(quantity) FILTER (WHERE status = 'reserved') AS r
                       FROM reservations GROUP BY event_id) x ON x.event_id = e.id
         WHERE e.purchased_count <> COALESCE(x.p, 0) OR e.reserved_count <> COALESCE(x.r, 0)""")
    return [f"{db} event {line}: counters differ from a recount" for line in rows.splitlines() if line]


def quota_recount(lines: str) -> str:
    """Each quota's counters next to a recount of the lines of its types' holds; `lines` is
    the store's table of line items `(event_id, reservation_id, ticket_type_id, quantity)` of
    the JSON `lines` column of reservations."""
    return f"""
    SELECT q.event_id, q.id, q.capacity, q.purchased_count, q.reserved_count,
           COALESCE(SUM(CASE WHEN r.status = 'purchased' THEN l.quantity END), 0),
           COALESCE(SUM(CASE WHEN r.status = 'reserved' THEN l.quantity END), 0)
      FROM quotas q
      LEFT JOIN ticket_type_quotas x ON x.event_id = q.event_id AND x.quota_id = q.id
      LEFT JOIN ({lines}) l ON l.event_id = x.event_id AND l.ticket_type_id = x.ticket_type_id
      LEFT JOIN reservations r ON r.event_id = l.event_id AND r.id = l.reservation_id
     GROUP BY q.event_id, q.id, q.capacity, q.purchased_count, q.reserved_count"""


PG_LINES = """SELECT r.event_id, r.id AS reservation_id, (j.value->>0)::int8 AS ticket_type_id,
                     (j.value->>1)::int8 AS quantity
                FROM reservations r CROSS JOIN LATERAL jsonb_array_elements(r.lines::jsonb) j"""
SQLITE_LINES = """SELECT r.event_id, r.id AS reservation_id, json_extract(j.value, '$[0]') AS ticket_type_id,
                         json_extract(j.value, '$[1]') AS quantity
                    FROM reservations r, json_each(r.lines) j"""


def quota_mismatches(rows: list, store: str) -> list[str]:
    """Quotas whose counters differ from a recount of the lines of their types, or oversold."""
    return [f"{store} event {e} quota {q}: counters {p}/{h}, recount {rp}/{rh}, capacity {c}"
            for e, q, c, p, h, rp, rh in rows if (p, h) != (rp, rh) or rp + rh > c]


def quota_mismatches_pg(cluster: Cluster, db: str) -> list[str]:
    rows = [tuple(int(x) for x in line.split("|")) for line in cluster.psql(db, quota_recount(PG_LINES)).splitlines() if line]
    return quota_mismatches(rows, db)


def recount_mismatches_sqlite(path: Path) -> list[str]:
    import sqlite3
    con = sqlite3.connect(path)
    try:
        rows = con.execute("""
            SELECT e.id, e.capacity, e.purchased_count, e.reserved_count,
                   COALESCE(SUM(CASE WHEN r.status = 'purchased' THEN r.quantity END), 0),
                   COALESCE(SUM(CASE WHEN r.status = 'reserved' THEN r.quantity END), 0)
              FROM events e LEFT JOIN reservations r ON r.event_id = e.id
             GROUP BY e.id""").fetchall()
    finally:
        con.close()
    problems = [f"SQLite event {e}: counters {p}/{h}, recount {rp}/{rh}, capacity {c}"
                for e, c, p, h, rp, rh in rows if p != rp or h != rh or rp + rh > c]
    con = sqlite3.connect(path)
    try:
        problems += quota_mismatches(con.execute(quota_recount(SQLITE_LINES)).fetchall(), "SQLite")
    finally:
        con.close()
    return problems


def seed_run(cluster: Cluster, db: str, event: int, clients: int, seconds: float) -> dict:
    out = run([str(cluster.bin / "pgbench"), "-n", "-h", "127.0.0.1", "-p", str(cluster.port),
               "-U", "postgres", "-M", "prepared", "-c", str(clients), "-j", str(min(clients, os.cpu_count() or 2)),
               "-T", str(max(1, round(seconds))), "-f", str(SEED_SQL),
               "-D", f"event={event}", "-D", f"capacity={CAPACITY}", db]).stdout
    tps = float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", out).group(1))
    latency = re.search(r"latency average = ([\d.]+) ms", out)
    return {"reservations_per_second": tps, "latency_avg_ms": float(latency.group(1)) if latency else None}


def invariant(cluster: Cluster, db: str) -> list[tuple[int, int, int, int]]:
    """The README's SQL invariant check on every event: (event, capacity, purchased, reserved_active)."""
    rows = cluster.psql(db, """
        SELECT e.id, e.capacity,
               COALESCE(SUM(CASE WHEN r.status='purchased' THEN r.quantity ELSE 0 END), 0),
               COALESCE(SUM(CASE WHEN r.status='reserved' AND r.expires_at > NOW() THEN r.quantity ELSE 0 END), 0)
          FROM events e LEFT JOIN reservations r ON r.event_id = e.id
         GROUP BY e.id, e.capacity ORDER BY e.id""")
    return [tuple(int(x) for x in line.split("|")) for line in rows.splitlines() if line]


# ---------------------------------------------------------------- report


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    except (OSError, AttributeError):
        mem_kb = 0
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kb / 1024 / 1024, 1),
            "kernel": platform.release(), "python": platform.python_version()}


def fmt(x: float | None, digits: int = 0) -> str:
    return "—" if x is None else f"{x:,.{digits}f}"


def render(results: dict) -> str:
    r = results
    lines = [f"# Hot-event benchmark, {r['date']}", ""]
    m = r["machine"]
    lines += [
        f"- machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Linux {m['kernel']}",
        f"- versions: PostgreSQL {r['postgres']}, {r['rustc']}, ticketctl at {r['commit']}",
        f"- settings: fsync={r['fsync']}, synchronous_commit={r['synchronous_commit']}, "
        f"SQLite synchronous=FULL (WAL); service BATCH_MAX={r['batch_max']}, pool "
        f"{r['pool_size']} connections, {r['workers']} HTTP workers; client `ticketctl bench` with "
        f"{r['client_threads']} thread(s) on the same machine; {r['seconds']} s per run; hold TTL 1 day "
        f"(every hold stays live)",
    ]
    if any(r["runs"].get(str(c)) for c in r["clients"]):
        lines += [
            "- S: the seed's SQL through pgbench (no HTTP); U: the service, group commit off "
            "(`--batch-max 1`); P: the service with group commit; L: the service on SQLite. "
            "Reservations per second; latency in ms as p50 / p99 (S: average only).",
            "",
            "| clients | S seed (pgbench) | U service, unbatched | P service, group commit | P/S | P p50 / p99 | U p50 / p99 | L SQLite | L p50 / p99 |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
    for c in r["clients"]:
        row = r["runs"].get(str(c))
        if not row:
            continue
        s, u, p, l = row.get("S"), row.get("U"), row.get("P"), row.get("L")
        ratio = (p["reservations_per_second"] / s["reservations_per_second"]) if s and p and s["reservations_per_second"] else None

        def lat(x):
            return "—" if not x else f"{x['latency_ms']['p50']:.2f} / {x['latency_ms']['p99']:.2f}"

        lines.append(
            f"| {c} | {fmt(s and s['reservations_per_second'])} | {fmt(u and u['reservations_per_second'])} "
            f"| {fmt(p and p['reservations_per_second'])} | {fmt(ratio, 1) + '×' if ratio else '—'} "
            f"| {lat(p)} | {lat(u)} | {fmt(l and l['reservations_per_second'])} | {lat(l)} |")
    if r.get("prefilled"):
        pf = r["prefilled"]
        s1, p1, p0 = pf.get("S"), pf.get("P"), pf.get("P_fresh")
        lines += ["", f"Event pre-filled with {pf['holds']:,} live holds, {pf['clients']} clients "
                  f"(P: median of {ROUNDS} runs of {r['seconds'] / 2:g} s, alternating with a fresh event "
                  "in the same minutes; runs: " + ", ".join(f"{k} {[round(x) for x in v]}" for k, v in pf.get("rounds", {}).items()) + "):", "",
                  "| event | S seed (pgbench) | P service, group commit | P p50 / p99 |", "|---|---:|---:|---:|"]
        if p0:
            lines.append(f"| fresh (0 holds) | — | {fmt(p0['reservations_per_second'])} "
                         f"| {p0['latency_ms']['p50']:.2f} / {p0['latency_ms']['p99']:.2f} |")
        if p1:
            lines.append(f"| {pf['holds']:,} live holds | {fmt(s1 and s1['reservations_per_second'])} "
                         f"| {fmt(p1['reservations_per_second'])} "
                         f"| {p1['latency_ms']['p50']:.2f} / {p1['latency_ms']['p99']:.2f} |")
    for key, label in (("shapes", "PostgreSQL"), ("shapes_sqlite", "SQLite")):
        sh = r.get(key)
        if not sh:
            continue
        lines += ["", f"Load shapes on {label}, {sh['clients']} connections, {r['seconds']} s per run, "
                  f"{sh['rounds']} round(s) alternating with `GET /health`; medians. Ceiling runs: "
                  + ", ".join(f"{h['requests_per_second']:,.0f}" for h in sh["health"]) + " requests/s.", "",
                  "| shape | requests/s (median) | share of `GET /health` | runs | p50 / p99 ms |",
                  "|---|---:|---:|---|---:|",
                  f"| `GET /health` (ceiling) | {fmt(sh['ceiling'])} | 1 | | — |"]
        for k, v in sh["shapes"].items():
            lines.append(f"| {v['what']} | {fmt(v['requests_per_second'])} | {v['requests_per_second'] / sh['ceiling']:.2f} "
                         f"| {', '.join(f'{x:,.0f}' for x in v['rates'])} "
                         f"| {v['latency_ms']['p50']:.2f} / {v['latency_ms']['p99']:.2f} |")
        if sh.get("mixed_over_hot"):
            lines += ["", "90/10 reserve/purchase against reserve-only on one event (median of the rounds' ratios): "
                      f"{sh['mixed_over_hot']:.2f}"]
        for k, what, goal in AGAINST_HOT:
            if k in (sh.get("over_hot") or {}):
                lines += ["", f"{what} (median of the rounds' ratios; goal {goal}): {sh['over_hot'][k]:.2f}"]
        if sh.get("quotas100_over_typed"):
            lines += ["", "typed reserves on an event with 100 quotas against one with 2 (the decision reads only the "
                      f"quotas a request touches): {sh['quotas100_over_typed']:.2f}"]
        for k, ref, what, goal in SEAT_RATIOS:
            if k in (sh.get("seat_ratios") or {}):
                lines += ["", f"{what} (median of the rounds' ratios; goal {goal}): {sh['seat_ratios'][k]:.2f}"]
        for k, goal in SEAT_READS:
            if k in (sh.get("seat_reads") or {}):
                lines += ["", f"{sh['shapes'][k]['what']} against GET /health (median of the rounds' ratios; goal "
                          f"{goal}): {sh['seat_reads'][k]:.2f}"]
    if r.get("overload"):
        lines += ["", "Overload: reserves on one event, request deadline "
                  f"{r['overload'][0]['deadline_ms']} ms, pool {r['pool_size']} connections:", "",
                  "| connections | requests/s | 201 | 409 | 503 | no answer | p99 / max ms | server RSS / peak MiB | |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for o in r["overload"]:
            st = o["statuses"].get("reserve", {})
            mem = o["memory"]
            lines.append(f"| {o['clients']:,} | {fmt(o['requests_per_second'])} | {st.get('201', 0):,} | {st.get('409', 0):,} "
                         f"| {st.get('503', 0):,} | {sum((o.get('transport_errors') or {}).values()):,} "
                         f"| {o['latency_ms']['p99']:.0f} / {o['latency_ms']['max']:.0f} "
                         f"| {mem['rss_kib'] / 1024:.0f} / {mem['peak_rss_kib'] / 1024:.0f} "
                         f"| {('ok' if not o['problems'] else 'PROBLEMS: ' + '; '.join(o['problems'])) if o['checked'] else 'measured only: ' + ('; '.join(o['problems']) or 'every request answered in time')} |")
    lines += ["", "Oversell checks: " + r["oversell"], ""]
    if r.get("targets"):
        lines += ["Targets:", ""]
        for t in r["targets"]:
            lines.append(f"- {'met' if t['met'] else 'MISSED'}: {t['name']} — measured {t['measured']}")
        lines.append("")
    return "\n".join(lines)


def targets(r: dict) -> list[dict]:
    out = []
    at64 = r["runs"].get("64", {})
    at1 = r["runs"].get("1", {})
    s, p, u, l = at64.get("S"), at64.get("P"), at64.get("U"), at64.get("L")
    if s and p:
        ratio = p["reservations_per_second"] / s["reservations_per_second"]
        out.append({"name": "P >= 10x S at 64 clients", "met": ratio >= 10, "measured": f"{ratio:.1f}x"})
    if p:
        out.append({"name": "P > 10,000 reservations/s at 64 clients", "met": p["reservations_per_second"] > 10_000,
                    "measured": f"{p['reservations_per_second']:,.0f}/s"})
        out.append({"name": "P p99 <= 50 ms at 64 clients", "met": p["latency_ms"]["p99"] <= 50,
                    "measured": f"{p['latency_ms']['p99']:.2f} ms"})
    p1, u1 = at1.get("P"), at1.get("U")
    if p1 and u1:
        gap = p1["latency_ms"]["p99"] - u1["latency_ms"]["p99"]
        out.append({"name": "P p99 at 1 client within 1 ms of the unbatched path", "met": gap <= 1.0,
                    "measured": f"{p1['latency_ms']['p99']:.2f} ms vs {u1['latency_ms']['p99']:.2f} ms ({gap:+.2f} ms)"})
    pf = r.get("prefilled") or {}
    if pf.get("P") and pf.get("P_fresh"):
        filled, fresh = pf["P"]["reservations_per_second"], pf["P_fresh"]["reservations_per_second"]
        drop = 1 - filled / fresh
        out.append({"name": f"P at {pf['holds']:,} live holds within 20% of P at 0", "met": drop <= 0.20,
                    "measured": f"{filled:,.0f}/s vs {fresh:,.0f}/s ({-drop:+.0%}), medians of alternating runs"})
    if l:
        out.append({"name": "SQLite >= 10,000 reservations/s at 64 clients", "met": l["reservations_per_second"] >= 10_000,
                    "measured": f"{l['reservations_per_second']:,.0f}/s"})
    sh = r.get("shapes")
    if sh:
        ceiling, shapes = sh["ceiling"], sh["shapes"]
        share = lambda k: shapes[k]["requests_per_second"] / ceiling
        for key, floor in (("spread", 0.15), ("read1", 0.4), ("readn", 0.4), ("rush", 0.3), ("hot", 0.2)):
            if key in shapes:
                out.append({"name": f"{shapes[key]['what']} >= {floor} of GET /health", "met": share(key) >= floor,
                            "measured": f"{share(key):.2f} ({shapes[key]['requests_per_second']:,.0f} vs {ceiling:,.0f}/s)"})
        if sh.get("mixed_over_hot"):
            ratio = sh["mixed_over_hot"]
            out.append({"name": "90/10 reserve/purchase >= 0.85 of reserve-only", "met": ratio >= 0.85,
                        "measured": f"{ratio:.2f} (median of the rounds' ratios)"})
    for key, label in (("shapes", "PostgreSQL"), ("shapes_sqlite", "SQLite")):
        over = (r.get(key) or {}).get("over_hot") or {}
        for k, what, goal in AGAINST_HOT:
            if k in over:
                out.append({"name": f"{label}: {what} >= {goal}", "met": over[k] >= goal,
                            "measured": f"{over[k]:.2f} (median of the rounds' ratios)"})
        for k, ref, what, goal in SEAT_RATIOS:
            got = ((r.get(key) or {}).get("seat_ratios") or {}).get(k)
            if got is not None:
                out.append({"name": f"{label}: {what} >= {goal}", "met": got >= goal,
                            "measured": f"{got:.2f} (median of the rounds' ratios)"})
        for k, goal in SEAT_READS:
            got = ((r.get(key) or {}).get("seat_reads") or {}).get(k)
            if got is not None:
                out.append({"name": f"{label}: {k} >= {goal} of GET /health", "met": got >= goal,
                            "measured": f"{got:.2f} (median of the rounds' ratios)"})
        q = (r.get(key) or {}).get("quotas100_over_typed")
        if q:
            out.append({"name": f"{label}: 100 quotas on the event cost no more than 2 (within 20%)", "met": q >= 0.8,
                        "measured": f"{q:.2f} of the 2-quota rate"})
    for o in [o for o in r.get("overload") or [] if o["checked"]]:
        out.append({"name": f"{o['clients']:,} connections on one event: every request answered (201, 409 or 503 with "
                            f"Retry-After), p99 < twice the deadline", "met": not o["problems"],
                    "measured": f"p99 {o['latency_ms']['p99']:.0f} ms, {sum((o.get('transport_errors') or {}).values())} "
                                f"unanswered, RSS {o['memory']['peak_rss_kib'] / 1024:.0f} MiB peak"
                                + ("" if not o["problems"] else "; " + "; ".join(o["problems"]))})
    out.append({"name": "zero oversell in every run", "met": r["oversell_ok"], "measured": r["oversell"]})
    return out


# ---------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="a ~5-second check that everything works (CI)")
    ap.add_argument("--seconds", type=float, default=10.0, help="seconds per run (default 10)")
    ap.add_argument("--clients", default="1,16,64,256", help="client counts (default 1,16,64,256)")
    ap.add_argument("--prefill", type=int, default=1_000_000, help="live holds of the pre-filled event (0: skip)")
    ap.add_argument("--batch-max", type=int, default=256)
    ap.add_argument("--client-threads", type=int, default=1, help="threads of ticketctl bench")
    ap.add_argument("--profile", default=None, help="cargo profile of ticketctl (default release; smoke: dev)")
    ap.add_argument("--out", default=None, help="results file (default bench/results/<date>.md)")
    ap.add_argument("--shape-clients", type=int, default=64, help="connections of the load shapes (default 64)")
    ap.add_argument("--spread", type=int, default=1000, help="events of the spread shapes (default 1000)")
    ap.add_argument("--shape-rounds", type=int, default=3, help="rounds of the PostgreSQL shapes (default 3)")
    ap.add_argument("--overload", default="2048,10000",
                    help="connections of the overload runs (default 2048,10000; empty: skip)")
    ap.add_argument("--overload-checked", type=int, default=2048,
                    help="overload runs up to this many connections must answer every request in time "
                         "(larger ones are measured only: memory at many connections)")
    ap.add_argument("--only", default=None, help="comma-separated parts to run: table,prefill,shapes,overload")
    args = ap.parse_args()
    try:
        # Thousands of connections need as many file descriptors, in the client and the server.
        import resource
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass

    clients = [int(c) for c in args.clients.split(",")]
    seconds, prefill = args.seconds, args.prefill
    shape_clients, spread, shape_rounds = args.shape_clients, args.spread, args.shape_rounds
    overload = [int(c) for c in args.overload.split(",") if c.strip()]
    parts = set((args.only or "table,prefill,shapes,overload").split(","))
    if args.smoke:
        clients, seconds, prefill = [16], 1.0, 0
        shape_clients, spread, overload, shape_rounds = 16, 20, [256], 1
    profile = args.profile or ("dev" if args.smoke else "release")

    log(f"building ticketctl ({profile})")
    subprocess.run(["cargo", "build", "--profile", profile, "-p", "ticketctl"], cwd=ROOT, check=True)
    ticketctl = ROOT / "target" / ("debug" if profile == "dev" else profile) / "ticketctl"

    workdir = Path(tempfile.mkdtemp(prefix="ticketing-bench-"))
    cluster = Cluster(workdir)
    servers: list[Server] = []
    try:
        cluster.start()
        for db in ("seed", "svc"):
            cluster.psql("postgres", f"CREATE DATABASE {db}")
            run([str(ticketctl), "migrate", "--database-url", cluster.url(db)])
        sqlite_url = f"sqlite://{workdir / 'bench.db'}"

        results: dict = {
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(), "postgres": cluster.version(),
            "rustc": run(["rustc", "--version"]).stdout.strip(),
            "commit": run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT).stdout.strip()
            + ("-dirty" if run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT).stdout.strip() else ""),
            "fsync": cluster.psql("postgres", "SHOW fsync"),
            "synchronous_commit": cluster.psql("postgres", "SHOW synchronous_commit"),
            "batch_max": args.batch_max, "client_threads": args.client_threads, "seconds": seconds,
            "clients": clients, "runs": {},
        }
        help_text = run([str(ticketctl), "serve", "--help"]).stdout
        results["pool_size"] = re.search(r"--pool-size.*?\[default: (\d+)\]", help_text, re.S).group(1)
        results["workers"] = os.cpu_count()

        batched = Server(ticketctl, cluster.url("svc"), workdir, args.batch_max, "P")
        unbatched = Server(ticketctl, cluster.url("svc"), workdir, 1, "U")
        lite = Server(ticketctl, sqlite_url, workdir, args.batch_max, "L")
        servers += [batched, unbatched, lite]

        for c in (clients if "table" in parts else []):
            row = results["runs"].setdefault(str(c), {})
            log(f"S: pgbench, {c} clients")
            row["S"] = seed_run(cluster, "seed", create_event(ticketctl, cluster.url("seed"), f"S{c}"), c, seconds)
            for key, server, url in (("U", unbatched, cluster.url("svc")), ("P", batched, cluster.url("svc")),
                                     ("L", lite, sqlite_url)):
                if args.smoke and key == "U":
                    continue
                log(f"{key}: service, {c} clients")
                event = create_event(ticketctl, url, f"{key}{c}")
                row[key] = service_run(ticketctl, server, event, c, seconds, args.client_threads)
            log("  " + ", ".join(f"{k} {v['reservations_per_second']:,.0f}/s" for k, v in row.items()))

        if "shapes" in parts:
            log(f"load shapes on PostgreSQL, {shape_clients} connections")
            seats = seat_shapes(2_000, 150) if args.smoke else seat_shapes(SEATS, SEAT_REQUESTS)
            results["shapes"] = shapes_run(ticketctl, batched, shape_clients, seconds, args.client_threads, spread,
                                           shape_rounds, seats)
            log("  " + ", ".join(f"{k} {v['requests_per_second'] / results['shapes']['ceiling']:.2f}"
                                 for k, v in results["shapes"]["shapes"].items()))
            log(f"load shapes on SQLite, {shape_clients} connections")
            results["shapes_sqlite"] = shapes_run(ticketctl, lite, shape_clients, seconds, args.client_threads, spread,
                                                  1, seats)
        if "overload" in parts and overload:
            results["overload"] = []
            for c in overload:
                log(f"overload: {c} connections on one event")
                results["overload"].append(overload_run(ticketctl, cluster.url("svc"), workdir, args.batch_max, c,
                                                        seconds, 2000, f"overload-{c}",
                                                        checked=c <= args.overload_checked))
                o = results["overload"][-1]
                log(f"  {o['statuses'].get('reserve')}, p99 {o['latency_ms']['p99']:.0f} ms, "
                    f"peak RSS {o['memory']['peak_rss_kib'] / 1024:.0f} MiB {o['problems'] or ''}")

        if prefill and "prefill" in parts:
            c = 64 if 64 in clients else clients[-1]
            pf = results["prefilled"] = {"holds": prefill, "clients": c}
            for key, db in (("S", "seed"), ("P", "svc")):
                event = create_event(ticketctl, cluster.url(db), f"{key}-prefilled")
                log(f"pre-filling event {event} of {db} with {prefill:,} live holds")
                cluster.psql(db, f"""
                    INSERT INTO reservations (id, event_id, status, expires_at, created_at, updated_at)
                    SELECT gen_random_uuid(), {event}, 'reserved', now() + interval '1 day', now(), now()
                      FROM generate_series(1, {prefill});
                    UPDATE events SET reserved_count = reserved_count + {prefill} WHERE id = {event};""")
                # VACUUM cannot run inside the transaction psql -c makes of several statements.
                cluster.psql(db, "VACUUM ANALYZE reservations")
                cluster.psql(db, "CHECKPOINT")
                log(f"{key}: {c} clients on {prefill:,} live holds")
                if key == "S":
                    pf[key] = seed_run(cluster, db, event, c, seconds)
                    log(f"  S {pf[key]['reservations_per_second']:,.0f}/s")
                    continue
                # Run to run, this machine varies by up to ±20%: compare the pre-filled event
                # with a fresh one in alternating runs, in the same minutes, by their medians.
                fresh = create_event(ticketctl, cluster.url(db), "P-fresh")
                rounds = {"fresh": [], "filled": []}
                for _ in range(ROUNDS):
                    for name, target in (("fresh", fresh), ("filled", event)):
                        rounds[name].append(service_run(ticketctl, batched, target, c, seconds / 2,
                                                        args.client_threads))
                median = lambda runs: sorted(runs, key=lambda x: x["reservations_per_second"])[len(runs) // 2]
                pf["P"], pf["P_fresh"] = median(rounds["filled"]), median(rounds["fresh"])
                pf["rounds"] = {k: [x["reservations_per_second"] for x in v] for k, v in rounds.items()}
                log(f"  P filled {pf['rounds']['filled']}, fresh {pf['rounds']['fresh']}")

        problems = []
        for db in ("svc", "seed"):
            for event, capacity, purchased, active in invariant(cluster, db):
                if purchased + active > capacity:
                    problems.append(f"{db} event {event}: {purchased} + {active} > {capacity}")
        problems += recount_mismatches_pg(cluster, "svc")
        problems += quota_mismatches_pg(cluster, "svc")
        problems += recount_mismatches_sqlite(workdir / "bench.db")

        checks = 0
        for url in (cluster.url("svc"), sqlite_url):
            out = subprocess.run([str(ticketctl), "events", "check", "--all", "--database-url", url],
                                 text=True, capture_output=True)
            checks += len(out.stdout.splitlines())
            if out.returncode != 0:
                problems.append(f"ticketctl events check --all on {url.split(':')[0]}: {out.stderr.strip()}")
        results["oversell_ok"] = not problems
        results["oversell"] = ("none: `--verify` passed on every service run; the README's SQL invariant held on every "
                               "PostgreSQL event and the counters of every event, on both stores, equal a recount "
                               f"(`ticketctl events check --all`: {checks:,} events)"
                               if not problems else "; ".join(problems))
        results["targets"] = [] if args.smoke else targets(results)

        report = render(results)
        print(report)
        if args.out:
            out_path = Path(args.out)
        elif args.smoke:
            out_path = workdir / "smoke.md"
        else:
            out_path = ROOT / "bench" / "results" / f"{dt.date.today().isoformat()}.md"
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(report)
        out_path.with_suffix(".json").write_text(json.dumps(results, indent=2))
        log(f"written to {out_path}")
        overloaded = [o for o in results.get("overload") or [] if o["checked"] and o["problems"]]
        return 0 if results["oversell_ok"] and not overloaded else 1
    finally:
        for s in servers:
            s.stop()
        cluster.stop()
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
