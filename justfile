# Tasks for developers and CI. `just --list` shows them.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Where `just db-up` publishes its PostgreSQL.
compose_db_url := "postgres://tickets:tickets@127.0.0.1:5433/tickets"

default:
    @just --list

# Serve the API (release build). Pass flags after it: `just serve --bind 0.0.0.0:8080`.
serve *args:
    cargo run --release -p ticketctl -- serve {{args}}

# Run every test (as `cargo test --workspace`, with nextest when installed). PostgreSQL comes
# from DATABASE_URL, else a throwaway local cluster.
test *args:
    if cargo nextest --version >/dev/null 2>&1; then \
        cargo nextest run --workspace --no-fail-fast {{args}}; \
    else \
        cargo test --workspace --no-fail-fast {{args}}; \
    fi

# Formatting and clippy (pedantic, warnings are errors).
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# Supply chain: licences, banned crates, sources (offline). `just deny advisories` too where the
# advisory database can be downloaded.
deny *checks="licenses bans sources":
    cargo deny --all-features check {{checks}}

# Start a local PostgreSQL 16 with Docker Compose (needs a Docker engine).
db-up:
    docker compose -f docker/compose.yaml up -d --wait postgres
    @echo "export DATABASE_URL={{compose_db_url}}"

# Stop the Compose PostgreSQL (its data volume stays).
db-down:
    docker compose -f docker/compose.yaml down

# The seat-map page in Debian's chromium (playwright-core from npm; no browser download): two
# visitors race for a seat, one buys, the other holds the best block; a screenshot is checked.
browser:
    cargo build -p ticketctl
    cd tests/browser && npm ci --no-audit --no-fund
    TICKETCTL=target/debug/ticketctl node tests/browser/seatmap.test.mjs

# The server's real webhook deliveries verified with the Standard Webhooks reference library
# (standardwebhooks from PyPI, installed into target/webhooks-venv).
webhooks-verify:
    tests/webhooks/run

# schemathesis against a live `ticketctl serve` (SQLite): every check, stateful phase, bounded.
schemathesis seconds="120":
    .ci/schemathesis {{seconds}}

# Fault scenarios with a history checker (docs/reliability.md): `just faults --short` for the
# CI-sized run, `just faults --only stall,ttl-race` for some, `just faults --list`.
faults *args:
    cargo build --release -p ticketctl -p faults
    target/release/faults --ticketctl target/release/ticketctl {{args}}

# The hot-event benchmark: seed design (pgbench) vs the service on PostgreSQL and SQLite.
# `just bench --smoke` is the 5-second check CI runs. See bench/README.md.
bench *args:
    python3 bench/run.py {{args}}

# What telling the shop costs: hot reserves with and without a webhook endpoint (delivery lag,
# time to deliver everything), and 10,000 subscribers of one event's stream. `--smoke` in CI.
bench-notify *args:
    python3 bench/notify.py {{args}}
