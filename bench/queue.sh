#!/usr/bin/env bash
# Queue throughput (submit, lease, ack; 1 and 8 leasers) and idle-worker pickup latency, on
# SQLite (a file in a temporary directory) and on PostgreSQL (127.0.0.1:5432, a fresh schema).
# Usage: bench/queue.sh [TASKS]     (default 20000 per run)
set -euo pipefail
cd "$(dirname "$0")/.."
tasks="${1:-20000}"
cargo build --release -q -p agentfleet-queue --example bench
bench=target/release/examples/bench
work=$(mktemp -d)
schema="af_bench_$$"
trap 'rm -rf "$work"; psql -q -h 127.0.0.1 -U postgres -d test -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true' EXIT

echo "== SQLite"
"$bench" "sqlite://$work/bench.db" "$tasks"
echo "== PostgreSQL"
psql -q -h 127.0.0.1 -U postgres -d test -c "CREATE SCHEMA $schema" >/dev/null
"$bench" "postgres://postgres@127.0.0.1:5432/test?options=-csearch_path%3D$schema" "$tasks"
