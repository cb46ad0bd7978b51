"""The `openai` SDK against the OpenAI, Kimi, Qwen compatible-mode and Ollama /v1 fakes."""
import base64
import struct

import openai
import pytest
from conftest import fault, journal, root

SURFACES = {
    "openai": ("/v1", "gpt-4o-mini", "text-embedding-3-small"),
    "kimi": ("/v1", "moonshot-v1-8k", None),
    "qwen": ("/compatible-mode/v1", "qwen-plus", "text-embedding-v3"),
    "ollama": ("/v1", "llama3.2", "all-minilm"),
}


def client(provider: str) -> openai.OpenAI:
    prefix = SURFACES[provider][0]
    return openai.OpenAI(base_url=root(provider) + prefix, api_key="sk-test-0123456789abcdef", max_retries=0)


def model(provider: str) -> str:
    return SURFACES[provider][1]


@pytest.mark.parametrize("provider", list(SURFACES))
def test_chat_plain(provider):
    r = client(provider).chat.completions.create(model=model(provider), messages=[{"role": "user", "content": "Hello"}])
    assert r.choices[0].message.content.startswith(f"[{provider}] ")
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert r.object == "chat.completion"


def test_request_id_header():
    raw = client("openai").chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
    )
    assert raw.headers["x-request-id"].startswith("req_")
    assert int(raw.headers["x-ratelimit-remaining-requests"]) > 0
    assert raw.parse().id.startswith("chatcmpl-")


@pytest.mark.parametrize("provider", list(SURFACES))
def test_stream_with_usage(provider):
    c = client(provider)
    plain = c.chat.completions.create(model=model(provider), messages=[{"role": "user", "content": "Stream"}])
    stream = c.chat.completions.create(
        model=model(provider),
        messages=[{"role": "user", "content": "Stream"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage, finish = "", None, None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
            extra = chunk.choices[0].model_extra or {}
            if extra.get("usage"):
                usage = extra["usage"]["total_tokens"]
        if chunk.usage:
            usage = chunk.usage.total_tokens
    assert text == plain.choices[0].message.content
    assert finish == "stop"
    assert usage == plain.usage.total_tokens


def test_tool_calls():
    r = client("openai").chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {
            "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
    )
    call = r.choices[0].message.tool_calls[0]
    assert r.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert "city" in call.function.arguments


@pytest.mark.parametrize("provider", [p for p, s in SURFACES.items() if s[2]])
def test_embeddings_default_base64_and_float(provider):
    c = client(provider)
    emb_model = SURFACES[provider][2]
    default = c.embeddings.create(model=emb_model, input=["alpha", "beta"])
    assert len(default.data) == 2
    assert all(isinstance(x, float) for x in default.data[0].embedding)
    floats = c.embeddings.create(model=emb_model, input="alpha", encoding_format="float")
    assert floats.data[0].embedding == pytest.approx(default.data[0].embedding, abs=1e-6)
    # The SDK asked for base64 when the caller did not say (PROVIDERS.md 1.4).
    bodies = [e["body"] for e in journal(provider) if e["path"].endswith("/embeddings")]
    assert bodies[0]["encoding_format"] == "base64"


def test_embeddings_raw_base64_is_little_endian_float32():
    raw = client("openai").embeddings.create(model="text-embedding-3-small", input="x", encoding_format="base64")
    vec = raw.data[0].embedding
    if isinstance(vec, str):
        decoded = struct.unpack(f"<{len(base64.b64decode(vec)) // 4}f", base64.b64decode(vec))
        assert len(decoded) == 1536


@pytest.mark.parametrize("provider", list(SURFACES))
def test_models(provider):
    c = client(provider)
    ids = [m.id for m in c.models.list()]
    assert ids
    assert c.models.retrieve(ids[0]).id == ids[0]
    with pytest.raises(openai.NotFoundError):
        c.models.retrieve("no-such-model")


# (provider, fault, exception, attribute, value)
FAULTS = [
    ("openai", "rate_limited", openai.RateLimitError, "code", "rate_limit_exceeded"),
    ("openai", "quota_exhausted", openai.RateLimitError, "code", "insufficient_quota"),
    ("openai", "overloaded", openai.InternalServerError, "code", "server_is_overloaded"),
    ("openai", "server_error", openai.InternalServerError, "type", "server_error"),
    ("openai", "auth", openai.AuthenticationError, "code", "invalid_api_key"),
    ("openai", "bad_request", openai.BadRequestError, "type", "invalid_request_error"),
    ("openai", "context_length", openai.BadRequestError, "code", "context_length_exceeded"),
    ("kimi", "rate_limited", openai.RateLimitError, "type", "rate_limit_reached_error"),
    ("kimi", "quota_exhausted", openai.RateLimitError, "type", "exceeded_current_quota_error"),
    ("kimi", "overloaded", openai.RateLimitError, "type", "engine_overloaded_error"),
    ("kimi", "server_error", openai.InternalServerError, "type", "server_error"),
    ("kimi", "auth", openai.AuthenticationError, "type", "invalid_authentication_error"),
    ("kimi", "bad_request", openai.BadRequestError, "type", "invalid_request_error"),
    ("kimi", "context_length", openai.BadRequestError, "type", "invalid_request_error"),
    ("kimi", "content_filter", openai.BadRequestError, "type", "content_filter"),
    ("qwen", "rate_limited", openai.RateLimitError, "code", "limit_requests"),
    ("qwen", "quota_exhausted", openai.BadRequestError, "code", "Arrearage"),
    ("qwen", "overloaded", openai.InternalServerError, "code", "ServiceUnavailable"),
    ("qwen", "server_error", openai.InternalServerError, "code", "internal_error"),
    ("qwen", "auth", openai.AuthenticationError, "code", "invalid_api_key"),
    ("qwen", "bad_request", openai.BadRequestError, "code", "invalid_parameter_error"),
    ("qwen", "context_length", openai.BadRequestError, "code", "invalid_parameter_error"),
    ("qwen", "content_filter", openai.BadRequestError, "code", "data_inspection_failed"),
    ("ollama", "rate_limited", openai.RateLimitError, "type", "api_error"),
    ("ollama", "quota_exhausted", openai.RateLimitError, "type", "api_error"),
    ("ollama", "overloaded", openai.InternalServerError, "type", "api_error"),
    ("ollama", "server_error", openai.InternalServerError, "type", "api_error"),
    ("ollama", "auth", openai.AuthenticationError, "type", "api_error"),
    ("ollama", "bad_request", openai.BadRequestError, "type", "invalid_request_error"),
    ("ollama", "context_length", openai.BadRequestError, "type", "invalid_request_error"),
]


@pytest.mark.parametrize("provider,name,exc,attr,value", FAULTS)
def test_fault_raises_matching_exception(provider, name, exc, attr, value):
    fault(provider, fault=name, times=1)
    with pytest.raises(exc) as info:
        client(provider).chat.completions.create(model=model(provider), messages=[{"role": "user", "content": "x"}])
    assert getattr(info.value, attr) == value
    # One fault, one request: the next one succeeds (no SDK retries with max_retries=0).
    client(provider).chat.completions.create(model=model(provider), messages=[{"role": "user", "content": "x"}])


def test_retry_after_reaches_the_sdk():
    fault("openai", fault="rate_limited", times=1, retry_after_s=3)
    with pytest.raises(openai.RateLimitError) as info:
        client("openai").chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    assert info.value.response.headers["retry-after"] == "3"


@pytest.mark.parametrize("provider", list(SURFACES))
def test_stream_error_raises_mid_stream(provider):
    fault(provider, fault="stream_error", times=1, after_chunks=2)
    got = []
    with pytest.raises(openai.APIError):
        for chunk in client(provider).chat.completions.create(
            model=model(provider), messages=[{"role": "user", "content": "x"}], stream=True
        ):
            got.append(chunk)
    assert len(got) >= 2


@pytest.mark.parametrize("provider", list(SURFACES))
def test_truncated_stream_has_no_finish(provider):
    fault(provider, fault="truncated_stream", times=1, after_chunks=2)
    chunks = list(client(provider).chat.completions.create(
        model=model(provider), messages=[{"role": "user", "content": "x"}], stream=True
    ))
    assert chunks and all(c.choices[0].finish_reason is None for c in chunks if c.choices)


@pytest.mark.parametrize("provider", list(SURFACES))
def test_drop_connection_is_a_connection_error(provider):
    fault(provider, fault="drop_connection", times=1)
    with pytest.raises(openai.APIConnectionError):
        client(provider).chat.completions.create(model=model(provider), messages=[{"role": "user", "content": "x"}])


@pytest.mark.parametrize("provider", list(SURFACES))
def test_malformed_body_fails_in_the_sdk(provider):
    fault(provider, fault="malformed", times=1)
    with pytest.raises(Exception):
        client(provider).chat.completions.create(model=model(provider), messages=[{"role": "user", "content": "x"}])


def test_openai_content_filter_finish_reason():
    fault("openai", fault="content_filter", times=1)
    r = client("openai").chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    assert r.choices[0].finish_reason == "content_filter"


def test_missing_key_is_authentication_error():
    # The SDK refuses to start without a key, so send a header that carries no Bearer key at all.
    c = openai.OpenAI(base_url=root("kimi") + "/v1", api_key="unused", max_retries=0,
                      default_headers={"Authorization": "Basic"})
    with pytest.raises(openai.AuthenticationError):
        c.chat.completions.create(model="moonshot-v1-8k", messages=[{"role": "user", "content": "x"}])


# --- Responses API and structured output (issue 14) ---

import enum
import json
from typing import List, Optional

import pydantic

RESPONSES = {"openai": "gpt-4o-mini", "ollama": "llama3.2"}
WEATHER = [{"type": "function", "name": "get_weather", "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                           "additionalProperties": False}, "strict": True}]


class Kind(str, enum.Enum):
    meeting = "meeting"
    call = "call"


class Place(pydantic.BaseModel):
    city: str
    floor: int


class Event(pydantic.BaseModel):
    name: str
    kind: Kind
    place: Place
    attendees: List[str]
    note: Optional[str] = None


@pytest.mark.parametrize("provider", list(RESPONSES))
def test_responses_create(provider):
    c = client(provider)
    r = c.responses.create(model=RESPONSES[provider], input="Hello", instructions="Be brief.")
    assert r.id.startswith("resp_") and r.status == "completed"
    assert r.output_text.startswith(f"[{provider}] ")
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    chat = c.chat.completions.create(model=RESPONSES[provider], messages=[{"role": "user", "content": "Hello"}])
    assert r.output_text == chat.choices[0].message.content


@pytest.mark.parametrize("provider", list(RESPONSES))
def test_responses_stream(provider):
    c = client(provider)
    with c.responses.stream(model=RESPONSES[provider], input="Stream it") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert len(deltas) > 3
    assert "".join(deltas) == final.output_text
    raw = list(c.responses.create(model=RESPONSES[provider], input="Stream it", stream=True))
    seq = [e.sequence_number for e in raw]
    assert seq == list(range(len(raw)))
    assert raw[0].type == "response.created" and raw[-1].type == "response.completed"


def test_responses_function_call_round_trip():
    c = client("openai")
    r = c.responses.create(model="gpt-4o-mini", input="Weather in Oslo?", tools=WEATHER)
    call = r.output[0]
    assert call.type == "function_call" and call.name == "get_weather"
    assert isinstance(json.loads(call.arguments)["city"], str)
    history = [{"role": "user", "content": "Weather in Oslo?"}, call.model_dump(exclude_none=True),
               {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}]
    r = c.responses.create(model="gpt-4o-mini", input=history, tools=WEATHER)
    assert r.output_text.startswith("[openai] ")


@pytest.mark.parametrize("provider", list(RESPONSES))
def test_responses_parse_text_format(provider):
    r = client(provider).responses.parse(model=RESPONSES[provider], input="Plan a meeting", text_format=Event)
    event = r.output_parsed
    assert isinstance(event, Event) and event.kind == Kind.meeting and isinstance(event.place, Place)
    assert event.attendees


@pytest.mark.parametrize("provider", list(SURFACES))
def test_chat_completions_parse(provider):
    r = client(provider).chat.completions.parse(
        model=model(provider), messages=[{"role": "user", "content": "Plan a meeting"}], response_format=Event)
    event = r.choices[0].message.parsed
    assert isinstance(event, Event) and isinstance(event.place.floor, int)


@pytest.mark.parametrize("provider", list(SURFACES))
def test_forced_tool_choice_arguments_parse_with_the_model(provider):
    tools = [{"type": "function", "function": {"name": "noise", "parameters": {"type": "object", "properties": {}}}},
             openai.pydantic_function_tool(Event)]
    r = client(provider).chat.completions.create(
        model=model(provider), messages=[{"role": "user", "content": "Plan a meeting"}], tools=tools,
        tool_choice={"type": "function", "function": {"name": "Event"}})
    call = r.choices[0].message.tool_calls[0]
    assert call.function.name == "Event"
    Event.model_validate_json(call.function.arguments)


def test_responses_faults():
    c = client("openai")
    fault("openai", fault="quota_exhausted", times=1)
    with pytest.raises(openai.RateLimitError) as info:
        c.responses.create(model="gpt-4o-mini", input="x")
    assert info.value.code == "insufficient_quota"
    # In-stream after response.created: the SDK raises at the error event.
    fault("openai", fault="stream_error", times=1, after_chunks=2)
    seen = []
    with pytest.raises(openai.APIError):
        with c.responses.stream(model="gpt-4o-mini", input="x") as stream:
            for e in stream:
                seen.append(e.type)
    assert seen[0] == "response.created" and seen.count("response.output_text.delta") == 2
    # Cut with no terminal event: the SDK has no final response.
    fault("openai", fault="truncated_stream", times=1, after_chunks=2)
    with pytest.raises(Exception):
        with c.responses.stream(model="gpt-4o-mini", input="x") as stream:
            stream.get_final_response()
    fault("openai", fault="drop_connection", times=1)
    with pytest.raises(openai.APIConnectionError):
        c.responses.create(model="gpt-4o-mini", input="x")
