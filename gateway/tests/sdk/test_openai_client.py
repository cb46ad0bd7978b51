"""The official `openai` SDK as a client of the gateway (started by gateway/tests/sdk.rs on a free port).

LLM_GATEWAY_URL is the gateway's /v1 base; LLM_MOCKS_<PROVIDER> the fakes' roots, for switching faults on.
"""
import os

import httpx
import openai
import pytest


def gateway() -> openai.OpenAI:
    url = os.environ.get("LLM_GATEWAY_URL")
    if not url:
        pytest.fail("LLM_GATEWAY_URL is not set: run through `cargo nextest` (gateway sdk test)")
    return openai.OpenAI(base_url=url, api_key="client-key", max_retries=0, timeout=20)


def fault(provider: str, **spec) -> None:
    root = os.environ[f"LLM_MOCKS_{provider.upper()}"].rstrip("/")
    r = httpx.post(f"{root}/__mock/faults", json=spec)
    assert r.status_code == 201, r.text


def clear(provider: str) -> None:
    root = os.environ[f"LLM_MOCKS_{provider.upper()}"].rstrip("/")
    httpx.delete(f"{root}/__mock/faults")


MESSAGES = [{"role": "user", "content": "Tell me about fallbacks"}]


def test_chat_plain():
    r = gateway().chat.completions.create(model="default", messages=MESSAGES)
    assert r.choices[0].message.content.startswith("[openai]")
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.total_tokens > 0


def test_chat_streamed():
    stream = gateway().chat.completions.create(model="default", messages=MESSAGES, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text.startswith("[openai]")


def test_chat_streamed_with_usage():
    stream = gateway().chat.completions.create(
        model="default", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


def test_embeddings_default_base64_and_float():
    client = gateway()
    r = client.embeddings.create(model="embeddings", input=["alpha", "beta"])
    assert len(r.data) == 2
    assert len(r.data[0].embedding) > 10 and isinstance(r.data[0].embedding[0], float)
    r = client.embeddings.create(model="embeddings", input="alpha", encoding_format="float")
    assert isinstance(r.data[0].embedding[0], float)


def test_models():
    ids = [m.id for m in gateway().models.list()]
    assert "default" in ids and "gpt-4o-mini" in ids


def test_headers_through_raw_response_and_provider_choice():
    raw = gateway().chat.completions.with_raw_response.create(
        model="default", messages=MESSAGES, extra_headers={"X-LLM-Provider": "kimi"}
    )
    assert raw.headers["x-llm-actual-provider"] == "kimi"
    assert raw.headers["x-llm-fallbacks"] == "0"
    assert raw.headers["x-llm-source"] == "provider"
    assert raw.parse().choices[0].message.content.startswith("[kimi]")


def test_fallback_is_visible_in_headers():
    fault("qwen", fault="server_error")
    try:
        raw = gateway().chat.completions.with_raw_response.create(
            model="default", messages=MESSAGES, extra_headers={"X-LLM-Provider": "qwen"}
        )
        assert raw.headers["x-llm-actual-provider"] == "openai"
        assert raw.headers["x-llm-fallbacks"] == "1"
    finally:
        clear("qwen")


def test_mid_stream_cut_is_an_error_not_a_finished_answer():
    fault("gigachat", fault="truncated_stream", times=1, after_chunks=2)
    stream = gateway().chat.completions.create(
        model="default", messages=MESSAGES, stream=True, extra_headers={"X-LLM-Provider": "gigachat"}
    )
    got = []
    with pytest.raises(openai.APIError) as e:
        for c in stream:
            got.append(c.choices[0].delta.content or "" if c.choices else "")
    assert "".join(got).startswith("[gigachat]"), "tokens before the cut did arrive"
    assert "broke" in str(e.value)


def test_errors_are_openai_shaped():
    with pytest.raises(openai.NotFoundError) as e:
        gateway().chat.completions.create(model="no-such-model", messages=MESSAGES)
    assert e.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as e:
        gateway().chat.completions.create(model="default", messages=[])
    assert e.value.code == "missing_messages"
