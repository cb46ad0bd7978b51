#!/usr/bin/env bash
# Cut responses short: each connection's response is closed after BYTES bytes (a stream cut mid-answer).
# Usage: cut_stream.sh NAME BYTES
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

[[ $# -eq 2 ]] || die "usage: cut_stream.sh NAME BYTES"
name="$1"
bytes="$2"
require_int BYTES "$bytes"
require_proxy "$name"
set_toxic "$name" cut_stream limit_data downstream "{\"bytes\":$bytes}"
echo "$name: toxic cut_stream: each connection is closed after $bytes response bytes"
