#!/usr/bin/env bash
# Cut the internet: disable every proxy, so every provider refuses connections. Usage: cut_internet.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

[[ $# -eq 0 ]] || die "usage: cut_internet.sh (no arguments; restore with restore.sh)"
names="$(proxy_names)"
[[ -n "$names" ]] || die "no proxies at $TOXIPROXY_URL: nothing to cut"
while read -r name; do
  set_enabled "$name" false
  echo "$name: disabled (connections refused)"
done <<<"$names"
echo "internet cut: $(wc -l <<<"$names" | tr -d ' ') proxies disabled"
