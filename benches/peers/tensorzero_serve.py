"""Runs TensorZero's HTTP gateway (the Rust/axum one embedded in the PyPI wheel) for `llm-benches load --peer
tensorzero`.

The wheel ships no gateway binary, but its native module holds the whole gateway: the private helper
`tensorzero._start_http_gateway` (what the wheel's `patch_openai_client` uses) serves its OpenAI-compatible route,
`POST /openai/v1/chat/completions`, from this process on a free port of 127.0.0.1. The bench reads the address
from the `base_url` line printed here and checks that the process listens on loopback only.

Usage: python tensorzero_serve.py CONFIG.toml   (stops on SIGTERM)
"""

import signal
import sys

import tensorzero


def main() -> None:
    gateway = tensorzero._start_http_gateway(
        config_file=sys.argv[1],
        clickhouse_url=None,
        postgres_url=None,
        valkey_url=None,
        async_setup=False,
    )
    print("base_url", gateway.base_url, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            signal.pause()
    finally:
        gateway.close()


if __name__ == "__main__":
    main()
