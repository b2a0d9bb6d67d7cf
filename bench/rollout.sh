#!/usr/bin/env bash
# Rollout: how long `agentfleet rollout` takes to move every worker of a running `up` to a new
# env-sourced key, and what the fleet does meanwhile. `up` runs 2 workers of concurrency 16
# under load (the stand-in at 50 ms latency, a queue that never empties, SQLite). Each round
# runs `rollout` with a new key in STANDIN_KEY and reports how long it took and the fleet's
# throughput during the rollout beside its throughput in the 5 s before it, in the same run;
# at the end, how many tasks failed (the target is none).
# Usage: bench/rollout.sh [ROUNDS]     (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-5}"
cargo build --release -q -p agentfleet
bin=$PWD/target/release/agentfleet
work=$(mktemp -d)
up=""
trap 'kill $up "$standin" 2>/dev/null || true; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT

key() { printf 'sk-bench-rollout-%04d-%s' "$1" "$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"; }
for round in $(seq 0 "$rounds"); do key "$round"; echo; done > "$work/keys"
"$bin" standin --keys-file "$work/keys" --latency-ms 50 > "$work/standin.out" 2>/dev/null &
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

[queue]
url = "sqlite://queue.db"
TOML
seq "${TASKS:-400000}" | awk '{printf "{\"task\": \"task %d\", \"agent\": \"writer\"}\n", $1}' > "$work/tasks.jsonl"
cd "$work"; [ -n "${KEEP:-}" ] && echo "work: $work"
"$bin" submit --file tasks.jsonl > /dev/null
done_now() { "$bin" queue stats --json | sed -n 's/.*"done": *\([0-9]*\).*/\1/p'; }
now() { date +%s.%N; }

STANDIN_KEY="$(sed -n 1p keys)" "$bin" up --workers 2 --concurrency 16 > /dev/null \
  2> >(while IFS= read -r line; do printf '%s %s\n' "$(date +%s.%N)" "$line"; done > up.log) &
up=$!
registered() { local n; n=$(grep -c registered up.log 2>/dev/null); echo "${n:-0}"; }
for _ in $(seq 200); do [ "$(registered)" -ge 2 ] && break; sleep 0.05; done
sleep 2

printf '%-6s %10s %16s %16s\n' round seconds steady_tasks/s rollout_tasks/s
for round in $(seq 1 "$rounds"); do
  t0=$(now); d0=$(done_now); sleep 5
  t1=$(now); d1=$(done_now)
  STANDIN_KEY="$(sed -n "$((round + 1))p" keys)" "$bin" rollout > "rollout.$round" 2>&1 \
    || { echo "round $round: rollout failed:"; sed 's/^/    /' "rollout.$round"; }
  t2=$(now); d2=$(done_now)
  awk -v r="$round" -v t0="$t0" -v t1="$t1" -v t2="$t2" -v d0="$d0" -v d1="$d1" -v d2="$d2" \
    'BEGIN { printf "%-6d %10.2f %16.0f %16.0f\n", r, t2 - t1, (d1 - d0) / (t1 - t0), (d2 - d1) / (t2 - t1) }'
done
"$bin" queue stats --json | tr -d '\n ' | sed 's/.*"failed":\([0-9]*\).*"dead":\([0-9]*\).*/failed \1, dead \2/'
echo
"$bin" status | grep -c 'healthy  generation' | sed 's/^/healthy workers on the last generation: /'
