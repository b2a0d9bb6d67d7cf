#!/usr/bin/env bash
# Key rotation: how long after a mounted secret changes every worker is using the new key.
# `agentfleet up` runs 2 workers under load (the stand-in at 20 ms latency, a queue that never
# empties) with their key in secrets/api-key, laid out the way the kubelet mounts a Secret.
# Each round writes a new key the kubelet's way (a new timestamped directory, then the ..data
# symlink swapped by an atomic rename) and times, per worker, the log line that says the new key
# was swapped in; the key is used from the very next request on. The stand-in accepts every
# key, so only the directory watch can explain the change (the periodic re-read is an hour).
# Usage: bench/rotation.sh [ROUNDS]     (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-20}"
cargo build --release -q -p agentfleet
bin=$PWD/target/release/agentfleet
work=$(mktemp -d)
up=""
trap 'kill $up "$standin" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

key() { printf 'sk-bench-rotation-%04d-%s' "$1" "$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"; }
for round in $(seq 0 "$rounds"); do key "$round"; echo; done > "$work/keys"
"$bin" standin --keys-file "$work/keys" --latency-ms 20 > "$work/standin.out" 2>/dev/null &
standin=$!
for _ in $(seq 100); do [ -s "$work/standin.out" ] && break; sleep 0.05; done
url=$(sed -n 's/^listening on //p' "$work/standin.out")

kubelet_write() { # generation, key
  local version="..2026_11_29_$1"
  mkdir -p "$work/secrets/$version"
  printf '%s\n' "$2" > "$work/secrets/$version/api-key"
  ln -sfn "$version" "$work/secrets/..data_tmp"
  mv -T "$work/secrets/..data_tmp" "$work/secrets/..data"
  [ -e "$work/secrets/api-key" ] || ln -s ..data/api-key "$work/secrets/api-key"
}
kubelet_write 0 "$(sed -n 1p "$work/keys")"

cat > "$work/agentfleet.toml" <<TOML
[providers.main]
kind = "standin"
base_url = "$url"
api_key = { file = "secrets/api-key" }

[agents.writer]
provider = "main"

[queue]
url = "sqlite://queue.db"

[fleet]
key_reread_interval = "1h"
TOML
seq 200000 | awk '{printf "{\"task\": \"task %d\", \"agent\": \"writer\"}\n", $1}' > "$work/tasks.jsonl"
(cd "$work" && "$bin" submit --file tasks.jsonl > /dev/null)

cd "$work"
"$bin" up --workers 2 --concurrency 8 > /dev/null \
  2> >(while IFS= read -r line; do printf '%s %s\n' "$(date +%s.%N)" "$line"; done > "$work/up.log") &
up=$!
cd - > /dev/null
for _ in $(seq 200); do [ "$(grep -c registered "$work/up.log" || true)" -ge 2 ] && break; sleep 0.05; done
sleep 1

for round in $(seq 1 "$rounds"); do
  new=$(sed -n "$((round + 1))p" "$work/keys")
  date +%s.%N > "$work/round.$round"
  kubelet_write "$round" "$new"
  sleep 0.5
done
sleep 1

printf '%-6s %10s %10s\n' round slowest_ms workers
for round in $(seq 1 "$rounds"); do
  start=$(cat "$work/round.$round")
  awk -v start="$start" -v gen="(generation $((round + 1)))" '
    index($0, "key rotated") && index($0, gen) { n++; ms = ($1 - start) * 1000; if (ms > max) max = ms }
    END { printf "%-6d %10.1f %10d\n", '"$round"', max, n }' "$work/up.log"
done | tee "$work/rounds"
awk '{ print $2 }' "$work/rounds" | sort -n | awk '
  { v[NR] = $1 } END { printf "median %.1f ms, worst %.1f ms over %d rounds (every worker, from the swap to the key in use)\n", v[int((NR + 1) / 2)], v[NR], NR }'
