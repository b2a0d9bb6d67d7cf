#!/usr/bin/env bash
# Throughput of the stand-in provider on one core: the server runs with one thread pinned to
# CPU 0, wrk (a C load generator) runs on CPU 1, so the number is the server's alone.
# Usage: bench/standin.sh [SECONDS]    (default 10 per run)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
cargo build --release -q -p agentfleet

key="sk-bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
taskset -c 0 target/release/agentfleet standin --threads 1 --key "$key" > "$work/out" 2>/dev/null &
server=$!
for _ in $(seq 100); do [ -s "$work/out" ] && break; sleep 0.05; done
url=$(sed -n 's/^listening on //p' "$work/out")

request='{"model":"standin","messages":[{"role":"system","content":"You write short, clear answers."},{"role":"user","content":"What is the capital of France?"}]}'
surface() { # name path header body
  cat > "$work/$1.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["$3"] = "$4"
wrk.headers["anthropic-version"] = "2023-06-01"
wrk.body = '$5'
LUA
}
surface openai /v1/chat/completions Authorization "Bearer $key" "$request"
surface openai-stream /v1/chat/completions Authorization "Bearer $key" "${request%\}},\"stream\":true}"
surface anthropic /v1/messages x-api-key "$key" '{"model":"standin","max_tokens":64,"system":"You write short, clear answers.","messages":[{"role":"user","content":"What is the capital of France?"}]}'

printf '%-16s %5s %12s %10s %10s %8s\n' surface conns requests/s p50 p99 non-2xx
for run in "openai /v1/chat/completions 1" "openai /v1/chat/completions 32" "openai-stream /v1/chat/completions 32" "anthropic /v1/messages 32"; do
  set -- $run
  out=$(taskset -c 1 wrk -t1 -c"$3" -d"${seconds}s" --latency -s "$work/$1.lua" "$url$2")
  rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  bad=$(echo "$out" | awk '/Non-2xx/ {print $5}')
  printf '%-16s %5s %12s %10s %10s %8s\n' "$1" "$3" "$rps" "$p50" "$p99" "${bad:-0}"
done
