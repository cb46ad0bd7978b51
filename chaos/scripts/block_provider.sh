#!/usr/bin/env bash
# Block a provider's proxy: refuse (connections refused, the default), blackhole (data vanishes, nothing answers)
# or reset (TCP RST on the first bytes either way). Usage: block_provider.sh NAME [refuse|blackhole|reset]
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

[[ $# -ge 1 && $# -le 2 ]] || die "usage: block_provider.sh NAME [refuse|blackhole|reset]"
name="$1"
mode="${2:-refuse}"
[[ "$mode" =~ ^(refuse|blackhole|reset)$ ]] || die "mode must be refuse, blackhole or reset, got '$mode'"
require_proxy "$name"

case "$mode" in
  refuse)
    set_enabled "$name" false
    echo "$name: disabled: new connections are refused, live ones were closed"
    ;;
  blackhole)
    set_enabled "$name" true
    set_toxic "$name" block_blackhole_up timeout upstream '{"timeout":0}'
    set_toxic "$name" block_blackhole_down timeout downstream '{"timeout":0}'
    echo "$name: black hole: toxics block_blackhole_up/down (timeout 0): data is swallowed, nothing answers"
    ;;
  reset)
    set_enabled "$name" true
    set_toxic "$name" block_reset_up reset_peer upstream '{"timeout":0}'
    set_toxic "$name" block_reset_down reset_peer downstream '{"timeout":0}'
    echo "$name: reset: toxics block_reset_up/down (reset_peer 0): connections get a TCP RST on the first bytes"
    ;;
esac
