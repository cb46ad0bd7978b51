#!/usr/bin/env bash
# Slow a provider down: add (or change) a latency toxic on its responses.
# Usage: degrade.sh NAME LATENCY_MS [JITTER_MS]
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

[[ $# -ge 2 && $# -le 3 ]] || die "usage: degrade.sh NAME LATENCY_MS [JITTER_MS]"
name="$1"
latency="$2"
jitter="${3:-0}"
require_int LATENCY_MS "$latency"
require_int JITTER_MS "$jitter"
require_proxy "$name"
set_toxic "$name" degrade_latency latency downstream "{\"latency\":$latency,\"jitter\":$jitter}"
echo "$name: toxic degrade_latency: every response delayed ${latency} ms (jitter ${jitter} ms)"
