# shellcheck shell=bash
# Shared helpers for the outage scripts: bash + curl only, so they work against a real Toxiproxy too.
# Sourced, not run. Reads TOXIPROXY_URL (default http://127.0.0.1:8474).

set -euo pipefail

TOXIPROXY_URL="${TOXIPROXY_URL:-http://127.0.0.1:8474}"
TOXIPROXY_URL="${TOXIPROXY_URL%/}"
API_STATUS=""
API_BODY=""

die() {
  echo "error: $*" >&2
  exit 1
}

# api METHOD PATH [JSON]: sets API_STATUS and API_BODY; dies when the API cannot be reached.
api() {
  local method="$1" path="$2" body="${3:-}" out rc
  local args=(-sS -X "$method" --max-time 30 -w '\n%{http_code}')
  if [[ -n "$body" ]]; then
    args+=(-H 'Content-Type: application/json' --data "$body")
  fi
  rc=0
  out="$(curl "${args[@]}" "$TOXIPROXY_URL$path" 2>&1)" || rc=$?
  if [[ $rc -ne 0 ]]; then
    local why
    why="$(grep -m1 '^curl: ' <<<"$out" || echo "curl exit code $rc")"
    die "cannot reach the Toxiproxy API at $TOXIPROXY_URL ($why); start 'llm-chaos serve' or set TOXIPROXY_URL"
  fi
  API_STATUS="${out##*$'\n'}"
  API_BODY="${out%$'\n'*}"
}

# expect CODE...: dies with the API's own error message unless API_STATUS is one of the codes.
expect() {
  local code
  for code in "$@"; do
    [[ "$API_STATUS" == "$code" ]] && return 0
  done
  die "Toxiproxy answered $API_STATUS: $API_BODY"
}

# proxy_names: the names of all proxies, one per line.
proxy_names() {
  api GET /proxies
  expect 200
  grep -o '"[^"]*":{"name":"[^"]*"' <<<"$API_BODY" | sed 's/^"\([^"]*\)".*/\1/' || true
}

# require_proxy NAME: dies with the list of known proxies when NAME does not exist.
require_proxy() {
  local name="$1"
  [[ "$name" =~ ^[A-Za-z0-9._-]+$ ]] || die "invalid proxy name '$name'"
  api GET "/proxies/$name"
  if [[ "$API_STATUS" == 404 ]]; then
    local known
    known="$(proxy_names | paste -sd, - | sed 's/,/, /g')"
    die "unknown proxy '$name' (known: ${known:-none})"
  fi
  expect 200
}

# require_int NAME VALUE: dies unless VALUE is a non-negative integer.
require_int() {
  [[ "$2" =~ ^[0-9]+$ ]] || die "$1 must be a non-negative integer, got '$2'"
}

# toxic_names PROXY: the names of the proxy's toxics, one per line.
toxic_names() {
  api GET "/proxies/$1/toxics"
  expect 200
  grep -o '"name":"[^"]*"' <<<"$API_BODY" | sed 's/"name":"\(.*\)"/\1/' || true
}

# set_toxic PROXY NAME TYPE STREAM ATTRIBUTES_JSON: adds the toxic, or updates it when it already exists.
set_toxic() {
  local proxy="$1" name="$2" type="$3" stream="$4" attrs="$5"
  api POST "/proxies/$proxy/toxics" \
    "{\"name\":\"$name\",\"type\":\"$type\",\"stream\":\"$stream\",\"toxicity\":1,\"attributes\":$attrs}"
  if [[ "$API_STATUS" == 409 ]]; then
    api POST "/proxies/$proxy/toxics/$name" "{\"toxicity\":1,\"attributes\":$attrs}"
  fi
  expect 200
}

# remove_toxic PROXY NAME: removes the toxic if present.
remove_toxic() {
  api DELETE "/proxies/$1/toxics/$2"
  expect 204 404
}

# set_enabled PROXY true|false
set_enabled() {
  api POST "/proxies/$1" "{\"enabled\":$2}"
  expect 200
}
