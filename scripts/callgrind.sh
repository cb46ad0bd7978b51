#!/usr/bin/env bash
# Instructions per request under callgrind: the gateway (and the bare forwarder beside it) on the load benchmark's
# config against the OpenAI fake, non-streamed chat. callgrind counts instructions, not time, so the figures
# repeat on a busy machine. Each server runs twice under callgrind, once with no requests and once with N; the
# difference divided by N is what one request costs, start and stop left out.
#
# Usage: [STREAM=1|usage] scripts/callgrind.sh [N] [GATEWAY_BINARY]
#   STREAM          1: streamed chat (`stream: true`, the SSE answer read to its end; the fake sends 14 chunks);
#                   usage: the same with `stream_options.include_usage`; unset: non-streamed
#   N               requests per run (default 1000), sent one after another on one keep-alive connection
#   GATEWAY_BINARY  the gateway to measure (default target/release/llm-gateway); give another build's binary to
#                   compare two builds on the same inputs
# Needs: valgrind, python3, curl, and `cargo build --release -p llm-gateway -p llm-mocks -p llm-benches --bins`.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
N=${1:-1000}
GW=${2:-target/release/llm-gateway}
REL=${REL:-target/release}
for b in "$GW" "$REL/llm-mocks" "$REL/llm-benches"; do
  [ -x "$b" ] || { echo "callgrind.sh: $b is missing; build with cargo build --release --bins" >&2; exit 2; }
done
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is missing (apt-get install valgrind)" >&2; exit 2; }

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP:-}" ] && echo "kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
until_up() { # url: polls until the server answers (a readiness check, not a timed wait)
  for _ in $(seq 1 600); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "callgrind.sh: $1 did not come up" >&2; exit 1
}

fake_port=$(free_port)
"$REL/llm-mocks" serve --only openai --openai-port "$fake_port" >"$work/fake.log" 2>&1 &
pids+=($!)
until_up "http://127.0.0.1:$fake_port/v1/models"
fake="http://127.0.0.1:$fake_port"

# The load benchmark's gateway config (benches/src/suite.rs gateway_config), one provider.
cat >"$work/gateway.yaml" <<EOF
server: { listen: "127.0.0.1:0", body_limit_bytes: 1048576, shutdown_grace: 1s }
mode: remote
models:
  default: { openai: gpt-4o-mini }
providers:
  openai: { kind: openai, base_url: "$fake/v1", secret: { value: sk-bench-openai } }
fallback_policy:
  order: [openai]
  deadline: 30s
  connect_timeout: 500ms
  first_token_timeout: 10s
  stall_timeout: 10s
  attempt_timeout: 10s
EOF

STREAM=${STREAM:-}
case "$STREAM" in ""|1|usage) ;; *) echo "callgrind.sh: STREAM is 1, usage or unset, not '$STREAM'" >&2; exit 2 ;; esac

send() { # port count model: count chat requests on one keep-alive connection; fails on any non-200
  python3 - "$1" "$2" "$3" "$STREAM" <<'PY'
import http.client, json, sys
port, n, model, stream = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
for i in range(n):
    req = {"model": model, "messages": [{"role": "user", "content": f"Summarise ticket {i % 50} for the on-call engineer"}]}
    if stream:
        req["stream"] = True
    if stream == "usage":
        req["stream_options"] = {"include_usage": True}
    c.request("POST", "/v1/chat/completions", json.dumps(req), {"content-type": "application/json", "authorization": "Bearer sk-bench-openai"})
    r = c.getresponse(); data = r.read()
    if r.status != 200:
        sys.exit(f"request {i}: HTTP {r.status}: {data[:200]!r}")
    if stream and not data.rstrip().endswith(b"data: [DONE]"):
        sys.exit(f"request {i}: the stream did not end with [DONE]: {data[-200:]!r}")
PY
}

# Runs one server under callgrind with `count` requests; prints its total instructions.
measure() { # name model count command...
  local name=$1 model=$2 count=$3; shift 3
  local port out
  port=$(free_port)
  out="$work/$name.$count.out"
  # MIMALLOC_PURGE_DELAY set: the gateway would otherwise exec itself to set it, out of callgrind's sight.
  MIMALLOC_PURGE_DELAY=0 RUST_LOG=error valgrind --tool=callgrind --callgrind-out-file="$out" "$@" "127.0.0.1:$port" >"$work/$name.log" 2>&1 &
  local pid=$!
  until_up "http://127.0.0.1:$port/healthz"
  send "$port" "$count" "$model"
  kill -TERM "$pid"
  wait "$pid" || true
  awk '/^(summary|totals):/ {print $2; exit}' "$out"
}

per_request() { # name model command...
  local name=$1 model=$2; shift 2
  local base total
  base=$(measure "$name" "$model" 1 "$@")
  total=$(measure "$name" "$model" $((N + 1)) "$@")
  echo "$name: $(( (total - base) / N )) instructions per request ($N requests; ${total} in all, ${base} for start, one request and stop)"
}

kind=non-streamed
[ "$STREAM" = 1 ] && kind=streamed
[ "$STREAM" = usage ] && kind="streamed (include_usage)"
echo "callgrind: $N $kind chat requests per server, on the load benchmark's config ($GW)" >&2
# The gateway maps `default` to gpt-4o-mini: the fake gets the same request from both.
per_request gateway default "$GW" serve --config "$work/gateway.yaml" --listen
per_request forwarder gpt-4o-mini "$REL/llm-benches" forwarder --upstream "$fake" --listen
