#!/usr/bin/env bash
# Heal: with NAME, remove that proxy's toxics and enable it; without, reset everything (POST /reset: every proxy
# enabled, every toxic removed). Usage: restore.sh [NAME]
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

[[ $# -le 1 ]] || die "usage: restore.sh [NAME]"
if [[ $# -eq 0 ]]; then
  api POST /reset
  expect 204
  echo "all proxies enabled, all toxics removed"
  exit 0
fi
name="$1"
require_proxy "$name"
toxics="$(toxic_names "$name")"
removed=0
while read -r toxic; do
  [[ -n "$toxic" ]] || continue
  remove_toxic "$name" "$toxic"
  echo "$name: removed toxic $toxic"
  removed=$((removed + 1))
done <<<"$toxics"
set_enabled "$name" true
echo "$name: enabled, $removed toxics removed"
