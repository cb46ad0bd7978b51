"""Shared helpers for the SDK conformance tests.

The Rust test `sdk` (mocks/tests/fakes/sdk.rs) starts the five fakes on free ports and runs pytest
with their root URLs in LLM_MOCKS_<PROVIDER>; each test starts from a reset fake.
"""
import os

import httpx
import pytest

PROVIDERS = ["openai", "kimi", "qwen", "gigachat", "ollama"]


def root(provider: str) -> str:
    url = os.environ.get(f"LLM_MOCKS_{provider.upper()}")
    if not url:
        pytest.fail(f"LLM_MOCKS_{provider.upper()} is not set: run these tests through `cargo nextest` (mocks sdk test)")
    return url.rstrip("/")


def fault(provider: str, **spec) -> dict:
    r = httpx.post(f"{root(provider)}/__mock/faults", json=spec)
    assert r.status_code == 201, r.text
    return r.json()


def settings(provider: str, **values) -> dict:
    r = httpx.post(f"{root(provider)}/__mock/settings", json=values)
    assert r.status_code == 200, r.text
    return r.json()


def journal(provider: str) -> list:
    r = httpx.get(f"{root(provider)}/__mock/requests")
    assert r.status_code == 200, r.text
    return r.json()["requests"]


@pytest.fixture(autouse=True)
def reset_fakes():
    for p in PROVIDERS:
        url = os.environ.get(f"LLM_MOCKS_{p.upper()}")
        if url:
            httpx.post(f"{url.rstrip('/')}/__mock/reset").raise_for_status()
    yield
