"""The `gigachat` SDK against the GigaChat fake, through its OAuth flow."""
import base64
import time

import pytest
from conftest import fault, journal, root, settings
from gigachat import GigaChat
from gigachat.exceptions import AuthenticationError, RateLimitError, ResponseError, ServerError
from gigachat.models import Chat, Function, FunctionParameters, Messages, MessagesRole

CREDENTIALS = base64.b64encode(b"client-id:client-secret").decode()


def giga(**kw) -> GigaChat:
    return GigaChat(
        credentials=CREDENTIALS,
        scope="GIGACHAT_API_PERS",
        auth_url=root("gigachat") + "/api/v2/oauth",
        base_url=root("gigachat") + "/api/v1",
        verify_ssl_certs=False,
        model="GigaChat",
        **kw,
    )


def test_chat_through_oauth():
    r = giga().chat("Привет")
    assert r.choices[0].message.content.startswith("[gigachat] ")
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.total_tokens > 0
    paths = [e["path"] for e in journal("gigachat")]
    assert paths[0] == "/api/v2/oauth"
    assert "/api/v1/chat/completions" in paths
    oauth = journal("gigachat")[0]
    assert oauth["headers"]["rquid"]
    assert "client-secret" not in str(oauth), "the Basic key is masked in the journal"


def test_stream():
    g = giga()
    whole = g.chat("Расскажи")
    text = "".join(c.choices[0].delta.content or "" for c in g.stream("Расскажи"))
    assert text == whole.choices[0].message.content


def test_functions_have_object_arguments():
    chat = Chat(
        messages=[Messages(role=MessagesRole.USER, content="Погода в Москве на 3 дня?")],
        functions=[Function(name="weather_forecast", description="Прогноз",
                            parameters=FunctionParameters(type="object", properties={
                                "location": {"type": "string"}, "num_days": {"type": "integer"}},
                                required=["location", "num_days"]))],
        function_call="auto",
    )
    r = giga().chat(chat)
    msg = r.choices[0].message
    assert r.choices[0].finish_reason == "function_call"
    assert msg.function_call.name == "weather_forecast"
    assert isinstance(msg.function_call.arguments, dict)


def test_short_lived_tokens_are_refreshed():
    settings("gigachat", token_ttl_ms=1000)
    g = giga()
    for _ in range(5):
        assert g.chat("ping").choices[0].message.content
        time.sleep(0.7)
    oauth_calls = [e for e in journal("gigachat") if e["path"] == "/api/v2/oauth"]
    assert len(oauth_calls) >= 2, "the SDK fetched new tokens as the old ones expired"


def test_a_401_triggers_one_refresh_and_retry():
    g = giga()
    g.chat("warm up")
    fault("gigachat", fault="auth", times=1)
    assert g.chat("again").choices[0].message.content
    paths = [e["path"] for e in journal("gigachat")]
    assert paths.count("/api/v2/oauth") == 2


@pytest.mark.parametrize("name,exc,status", [
    ("rate_limited", RateLimitError, 429),
    ("quota_exhausted", ResponseError, 402),
    ("server_error", ServerError, 500),
    ("overloaded", ServerError, 503),
])
def test_faults_raise_sdk_errors(name, exc, status):
    g = giga()
    fault("gigachat", fault=name, times=1)
    with pytest.raises(exc) as info:
        g.chat("x")
    assert info.value.status_code == status


def test_content_refusal_is_blacklist():
    fault("gigachat", fault="content_filter", times=1)
    r = giga().chat("x")
    assert r.choices[0].finish_reason == "blacklist"


def test_bad_credentials_are_an_authentication_error():
    g = GigaChat(credentials=base64.b64encode(b"nocolon").decode(), scope="GIGACHAT_API_PERS",
                 auth_url=root("gigachat") + "/api/v2/oauth", base_url=root("gigachat") + "/api/v1",
                 verify_ssl_certs=False)
    with pytest.raises(AuthenticationError):
        g.chat("x")


def test_models_embeddings_tokens_balance():
    g = giga()
    assert any(m.id_ == "GigaChat" for m in g.get_models().data)
    e = g.embeddings(["a", "b"])
    assert len(e.data) == 2 and len(e.data[0].embedding) == 1024
    t = g.tokens_count(["hello world"])
    assert t[0].tokens > 0
    assert g.get_balance().balance[0].value > 0


def test_chat_parse_structured_output():
    import enum
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

    completion, event = giga().chat_parse("Plan a meeting", response_format=Event)
    assert isinstance(event, Event) and event.kind == Kind.meeting
    sent = [e["body"] for e in journal("gigachat") if e["path"] == "/api/v1/chat/completions"][-1]
    assert sent["response_format"]["type"] == "json_schema" and "schema" in sent["response_format"]
