"""The official `anthropic` SDK against the gateway's /v1/messages (started by gateway/tests/sdk.rs).

LLM_GATEWAY_URL is the gateway's /v1 base; the Anthropic client takes the root (it appends /v1/messages).
"""
import os

import anthropic
import pytest

from test_openai_client import clear, fault

PROVIDERS = ["openai", "kimi", "qwen", "gigachat", "ollama"]

TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather of a city",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
]


def claude(**kw) -> anthropic.Anthropic:
    url = os.environ.get("LLM_GATEWAY_URL")
    if not url:
        pytest.fail("LLM_GATEWAY_URL is not set: run through `cargo nextest` (gateway sdk test)")
    root = url.rstrip("/").removesuffix("/v1")
    kw.setdefault("max_retries", 0)
    return anthropic.Anthropic(base_url=root, api_key="client-key", timeout=20, **kw)


def test_messages_create_plain_through_an_alias():
    m = claude().messages.create(
        model="claude-sonnet-4-5",
        max_tokens=64000,
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "Tell me about fallbacks"}],
    )
    assert m.id.startswith("msg_")
    assert m.model == "claude-sonnet-4-5"
    assert m.stop_reason == "end_turn"
    assert m.content[0].type == "text" and m.content[0].text.startswith("[openai]")
    assert m.usage.input_tokens > 0 and m.usage.output_tokens > 0


def test_messages_stream_text_and_final_message():
    with claude().messages.stream(
        model="claude-sonnet-4-5", max_tokens=1024, messages=[{"role": "user", "content": "Tell me about fallbacks"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text.startswith("[openai]")
    assert final.content[0].text == text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0 and final.usage.input_tokens > 0


def test_tool_use_round_trip_plain_and_streamed():
    client = claude()
    question = {"role": "user", "content": "Weather in Oslo?"}
    first = client.messages.create(model="default", max_tokens=512, tools=TOOLS, messages=[question])
    assert first.stop_reason == "tool_use"
    uses = [b for b in first.content if b.type == "tool_use"]
    assert uses and uses[0].name == "get_weather" and isinstance(uses[0].input, dict)
    history = [
        question,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": uses[0].id, "content": '{"temp": 3}'}]},
    ]
    second = client.messages.create(model="default", max_tokens=512, tools=TOOLS, messages=history)
    assert second.stop_reason == "end_turn"
    assert second.content[0].text

    with client.messages.stream(
        model="default", max_tokens=512, tools=TOOLS, tool_choice={"type": "tool", "name": "get_weather"},
        messages=[question],
    ) as stream:
        final = stream.get_final_message()
    streamed = [b for b in final.content if b.type == "tool_use"]
    assert streamed and streamed[0].name == "get_weather" and isinstance(streamed[0].input, dict)
    assert final.stop_reason == "tool_use"


def test_count_tokens():
    r = claude().messages.count_tokens(
        model="claude-sonnet-4-5", tools=TOOLS, messages=[{"role": "user", "content": "hello " * 200}]
    )
    assert r.input_tokens > 200


def test_models_list_shows_claude_aliases():
    ids = [m.id for m in claude().models.list()]
    assert "claude-sonnet-4-5" in ids


def test_error_classes_for_bad_requests_and_unknown_models():
    with pytest.raises(anthropic.BadRequestError) as e:
        claude().messages.create(model="default", max_tokens=0, messages=[{"role": "user", "content": "hi"}])
    assert "max_tokens" in str(e.value)
    assert e.value.body["error"]["type"] == "invalid_request_error"
    with pytest.raises(anthropic.NotFoundError):
        claude().messages.create(model="gpt-9", max_tokens=10, messages=[{"role": "user", "content": "hi"}])


def test_a_stream_broken_after_the_first_delta_raises():
    fault("openai", fault="truncated_stream", times=1, after_chunks=2)
    try:
        got = []
        with pytest.raises(anthropic.APIStatusError) as e:
            with claude().messages.stream(
                model="default", max_tokens=100, messages=[{"role": "user", "content": "Tell me about fallbacks"}]
            ) as stream:
                for t in stream.text_stream:
                    got.append(t)
        assert got, "the first delta reached the client before the break"
        assert "overloaded_error" in str(e.value.body)
    finally:
        clear("openai")


def test_a_stream_broken_before_the_first_delta_is_served_by_the_next_provider():
    fault("openai", fault="truncated_stream", times=1, after_chunks=0)
    try:
        with claude().messages.stream(
            model="default", max_tokens=100, messages=[{"role": "user", "content": "Tell me about fallbacks"}]
        ) as stream:
            final = stream.get_final_message()
        text = final.content[0].text
        assert text.startswith("[") and not text.startswith("[openai]"), text
    finally:
        clear("openai")


# Last: it leaves every provider's breaker open for the rest of this gateway's life.
def test_everything_failing_is_an_overloaded_error():
    for p in PROVIDERS:
        fault(p, fault="server_error", times=50)
    try:
        with pytest.raises(anthropic.OverloadedError) as e:
            claude().messages.create(model="default", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
        assert e.value.status_code == 529
        assert e.value.body["error"]["type"] == "overloaded_error"
    finally:
        for p in PROVIDERS:
            clear(p)
