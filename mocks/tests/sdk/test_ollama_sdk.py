"""The `ollama` SDK against the Ollama fake."""
import ollama
import pytest
from conftest import fault, root


def client() -> ollama.Client:
    return ollama.Client(host=root("ollama"))


def test_chat_plain_and_stream():
    c = client()
    r = c.chat(model="llama3.2", messages=[{"role": "user", "content": "hi"}])
    assert r.message.role == "assistant"
    assert r.message.content.startswith("[ollama] ")
    assert r.done and r.eval_count > 0
    parts = list(c.chat(model="llama3.2", messages=[{"role": "user", "content": "hi"}], stream=True))
    assert "".join(p.message.content for p in parts) == r.message.content
    assert parts[-1].done and parts[-1].done_reason == "stop"


def test_generate():
    r = client().generate(model="llama3.2", prompt="why is the sky blue")
    assert r.response.startswith("[ollama] ")
    parts = list(client().generate(model="llama3.2", prompt="why is the sky blue", stream=True))
    assert "".join(p.response for p in parts) == r.response


def test_tools():
    r = client().chat(model="qwen2.5:7b", messages=[{"role": "user", "content": "Weather in Tokyo?"}],
                      tools=[{"type": "function", "function": {"name": "get_weather", "description": "w",
                              "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                             "required": ["city"]}}}])
    call = r.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert isinstance(call.function.arguments, dict)


def test_embed_and_list():
    c = client()
    e = c.embed(model="all-minilm", input=["a", "b"])
    assert len(e.embeddings) == 2 and len(e.embeddings[0]) == 384
    names = [m.model for m in c.list().models]
    assert "llama3.2:latest" in names


def test_unknown_model_is_a_response_error():
    with pytest.raises(ollama.ResponseError) as info:
        client().chat(model="nope", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 404


@pytest.mark.parametrize("name,status", [("rate_limited", 429), ("overloaded", 503), ("server_error", 500)])
def test_faults_are_response_errors(name, status):
    fault("ollama", fault=name, times=1)
    with pytest.raises(ollama.ResponseError) as info:
        client().chat(model="llama3.2", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == status


def test_mid_stream_error_line_raises():
    fault("ollama", fault="stream_error", times=1, after_chunks=2)
    with pytest.raises(ollama.ResponseError):
        list(client().chat(model="llama3.2", messages=[{"role": "user", "content": "x"}], stream=True))


# --- Structured output (issue 14) ---

import enum
import json
from typing import List, Optional

import pydantic


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


def test_chat_format_schema_gives_a_valid_instance():
    r = client().chat(model="llama3.2", messages=[{"role": "user", "content": "Plan a meeting"}],
                      format=Event.model_json_schema())
    event = Event.model_validate_json(r.message.content)
    assert event.kind == Kind.meeting
    parts = list(client().chat(model="llama3.2", messages=[{"role": "user", "content": "Plan a meeting"}],
                               format=Event.model_json_schema(), stream=True))
    assert "".join(p.message.content for p in parts) == r.message.content


def test_chat_format_json():
    r = client().chat(model="llama3.2", messages=[{"role": "user", "content": "x"}], format="json")
    assert isinstance(json.loads(r.message.content), dict)
