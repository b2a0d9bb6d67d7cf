#!/usr/bin/env bash
# The fleet at work: the stand-in at 50 ms latency, `agentfleet up` with 2 workers of
# concurrency 32, 10,000 single-agent tasks, on SQLite and on PostgreSQL. Reports tasks per
# second against the ideal (workers x concurrency / latency = 1,280/s), from starting `up` until
# every task is done, worker CPU time per task and each worker's peak resident memory (as the
# workers report them when they stop).
# Usage: bench/fleet.sh [TASKS]     (default 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
tasks="${1:-10000}"
workers=2
concurrency=32
latency_ms=50
cargo build --release -q -p agentfleet
bin=$PWD/target/release/agentfleet
work=$(mktemp -d)
schema="af_fleet_bench_$$"
key="sk-bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
trap 'kill "$standin" 2>/dev/null || true; rm -rf "$work"; psql -q -h 127.0.0.1 -U postgres -d test -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true' EXIT

printf '%s\n' "$key" > "$work/keys"
"$bin" standin --keys-file "$work/keys" --latency-ms "$latency_ms" > "$work/standin.out" 2>/dev/null &
standin=$!
for _ in $(seq 100); do [ -s "$work/standin.out" ] && break; sleep 0.05; done
url=$(sed -n 's/^listening on //p' "$work/standin.out")

cat > "$work/agentfleet.toml" <<TOML
[providers.main]
kind = "standin"
base_url = "$url"
api_key = { env = "STANDIN_KEY" }

[agents.writer]
provider = "main"
system_message = "You write short, clear answers."

[queue]
url = "sqlite://queue.db"

[fleet]
heartbeat_interval = "1s"
TOML
seq "$tasks" | awk '{printf "{\"task\": \"Explain durable queues, take %d.\", \"agent\": \"writer\"}\n", $1}' > "$work/tasks.jsonl"

ideal=$(( workers * concurrency * 1000 / latency_ms ))
printf '%-10s %6s %8s %11s %7s %14s %16s\n' backend tasks seconds tasks/s ideal% cpu_ms/task peak_rss_MB
run() { # name, extra env
  local name=$1
  local start end
  (cd "$work" && env "${@:2}" STANDIN_KEY="$key" "$bin" submit --file tasks.jsonl > /dev/null)
  # `up` says when it saw the last task finish, counted from its start: the fleet's own
  # shutdown afterwards is not task throughput.
  (cd "$work" && env "${@:2}" STANDIN_KEY="$key" "$bin" up --workers "$workers" --concurrency "$concurrency" --until-empty 2> "$work/$name.log")
  awk -v name="$name" -v tasks="$tasks" -v ideal="$ideal" '
    /stopped: .* done/ {
      for (i = 1; i <= NF; i++) {
        if ($i == "cpu") { cpu += $(i + 1) }
        if ($i == "rss") { rss = rss (rss == "" ? "" : "/") $(i + 1) }
      }
    }
    /every task is finished after/ { seconds = $7 }
    END {
      rate = tasks / seconds
      printf "%-10s %6d %8.2f %11.0f %6.0f%% %14.3f %16s\n", name, tasks, seconds, rate, 100 * rate / ideal, 1000 * cpu / tasks, rss
    }' "$work/$name.log"
}
run sqlite BACKEND=sqlite
psql -q -h 127.0.0.1 -U postgres -d test -c "CREATE SCHEMA $schema" > /dev/null
run postgres AGENTFLEET_QUEUE_URL="postgres://postgres@127.0.0.1:5432/test?options=-csearch_path%3D$schema"
