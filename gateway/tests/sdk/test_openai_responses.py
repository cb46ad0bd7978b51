"""The official `openai` SDK's Responses client (`responses.create`, `responses.stream`) against the gateway.

Started by gateway/tests/sdk.rs like test_openai_client.py: LLM_GATEWAY_URL is the gateway's /v1 base.
"""
from enum import Enum
from typing import Optional

import openai
import pytest
from pydantic import BaseModel

from test_openai_client import clear, fault, gateway

TOOLS = [
    {"type": "web_search"},
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
]


def test_responses_create_plain():
    r = gateway().responses.create(model="default", input="Tell me about fallbacks", instructions="Be brief.")
    assert r.id.startswith("resp_")
    assert r.status == "completed"
    assert r.output_text.startswith("[openai]")
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens > 0


def test_responses_stream_final_response_is_the_deltas():
    deltas = []
    with gateway().responses.stream(model="default", input="Tell me about fallbacks") as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = stream.get_final_response()
    assert final.status == "completed"
    assert final.output_text == "".join(deltas)
    assert final.output_text.startswith("[openai]")
    assert final.usage.total_tokens > 0


def test_responses_function_tool_round_trip_with_the_hosted_tool_dropped():
    client = gateway()
    raw = client.responses.with_raw_response.create(model="default", input="Weather in Oslo?", tools=TOOLS)
    assert raw.headers["x-llm-dropped-tools"] == "web_search"
    first = raw.parse()
    calls = [i for i in first.output if i.type == "function_call"]
    assert calls and calls[0].name == "get_weather"
    history = [{"role": "user", "content": "Weather in Oslo?"}]
    history += [i.model_dump(exclude_none=True) for i in first.output]
    history.append({"type": "function_call_output", "call_id": calls[0].call_id, "output": '{"temp": 3}'})
    second = client.responses.create(model="default", input=history, tools=TOOLS)
    assert second.status == "completed"
    assert second.output_text


def test_responses_streamed_function_call():
    with gateway().responses.stream(
        model="default", input="Weather in Oslo?", tools=TOOLS, tool_choice={"type": "function", "name": "get_weather"}
    ) as stream:
        final = stream.get_final_response()
    calls = [i for i in final.output if i.type == "function_call"]
    assert calls and calls[0].name == "get_weather" and calls[0].arguments.startswith("{")


def test_responses_stream_cut_after_the_first_delta_raises():
    fault("openai", fault="truncated_stream", times=1, after_chunks=2)
    try:
        stream = gateway().responses.create(model="default", input="Tell me about fallbacks", stream=True)
        got = []
        with pytest.raises(openai.APIError) as e:
            for event in stream:
                if event.type == "response.output_text.delta":
                    got.append(event.delta)
        assert "".join(got).startswith("[openai]"), "tokens before the cut did arrive"
        assert "broke" in str(e.value)
    finally:
        clear("openai")


def test_responses_stream_cut_before_the_first_delta_is_served_by_the_next_provider():
    fault("openai", fault="truncated_stream", times=1, after_chunks=0)
    try:
        with gateway().responses.stream(model="default", input="Tell me about fallbacks") as stream:
            final = stream.get_final_response()
        assert final.output_text.startswith("[kimi]")
    finally:
        clear("openai")


class Unit(str, Enum):
    celsius = "celsius"
    fahrenheit = "fahrenheit"


class Place(BaseModel):
    city: str
    country: str


class Forecast(BaseModel):
    place: Place
    unit: Unit
    highs: list[int]
    note: Optional[str] = None


def test_responses_parse_with_a_pydantic_model():
    # text.format json_schema goes up as response_format; the answer is parsed into the model by the SDK.
    r = gateway().responses.parse(model="default", input="Forecast for Oslo", text_format=Forecast)
    assert r.status == "completed"
    f = r.output_parsed
    assert isinstance(f, Forecast), r
    assert isinstance(f.place, Place) and isinstance(f.unit, Unit)
    assert all(isinstance(h, int) for h in f.highs)


def test_responses_errors_are_openai_shaped():
    with pytest.raises(openai.BadRequestError) as e:
        gateway().responses.create(model="default", input="hi", previous_response_id="resp_1")
    assert e.value.code == "previous_response_not_found"
    assert e.value.param == "previous_response_id"
    with pytest.raises(openai.NotFoundError):
        gateway().responses.create(model="no-such-model", input="hi")
