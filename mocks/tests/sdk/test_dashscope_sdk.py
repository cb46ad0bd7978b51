"""The `dashscope` SDK against the Qwen fake's native API."""
import dashscope
import pytest
from conftest import fault, root
from dashscope import Generation, TextEmbedding

KEY = "sk-test-dashscope"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Сделай SQL-фильтр по продажам"}]


@pytest.fixture(autouse=True)
def base_url():
    dashscope.base_http_api_url = root("qwen") + "/api/v1"
    yield


def full_text():
    r = Generation.call(model="qwen-plus", messages=MESSAGES, result_format="message", api_key=KEY)
    assert r.status_code == 200, r
    return r.output.choices[0].message.content


def test_generation_message_and_text_formats():
    text = full_text()
    assert text.startswith("[qwen] ")
    r = Generation.call(model="qwen-plus", prompt="Сделай SQL-фильтр по продажам", api_key=KEY)
    assert r.status_code == 200
    assert r.output.text.startswith("[qwen] ")
    assert r.output.finish_reason == "stop"
    assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0
    assert r.request_id


def test_stream_incremental():
    parts = list(Generation.call(model="qwen-plus", messages=MESSAGES, result_format="message",
                                 stream=True, incremental_output=True, api_key=KEY))
    assert len(parts) > 3
    assert all(p.status_code == 200 for p in parts)
    text = "".join(p.output.choices[0].message.content for p in parts)
    assert text == full_text()
    assert parts[-1].output.choices[0].finish_reason == "stop"


def test_stream_full_output():
    # Asking for incremental_output=False: the SDK may send true and merge itself; either way each
    # response holds the text so far and the last one the whole answer.
    parts = list(Generation.call(model="qwen-plus", messages=MESSAGES, result_format="message",
                                 stream=True, incremental_output=False, api_key=KEY))
    texts = [p.output.choices[0].message.content for p in parts]
    assert all(b.startswith(a) for a, b in zip(texts, texts[1:]))
    assert texts[-1] == full_text()


def test_text_embedding():
    r = TextEmbedding.call(model="text-embedding-v3", input=["alpha", "beta"], api_key=KEY)
    assert r.status_code == 200, r
    emb = r.output["embeddings"]
    assert [e["text_index"] for e in emb] == [0, 1]
    assert len(emb[0]["embedding"]) == 1024
    assert r.usage["total_tokens"] > 0


@pytest.mark.parametrize("name,status,code", [
    ("rate_limited", 429, "Throttling.RateQuota"),
    ("quota_exhausted", 400, "Arrearage"),
    ("overloaded", 503, "ServiceUnavailable"),
    ("server_error", 500, "InternalError"),
    ("auth", 401, "InvalidApiKey"),
    ("bad_request", 400, "InvalidParameter"),
    ("context_length", 400, "InvalidParameter"),
    ("content_filter", 400, "DataInspectionFailed"),
])
def test_faults_come_back_as_status_and_code(name, status, code):
    fault("qwen", fault=name, times=1)
    r = Generation.call(model="qwen-plus", messages=MESSAGES, result_format="message", api_key=KEY)
    assert r.status_code == status
    assert r.code == code
    assert r.message
    assert Generation.call(model="qwen-plus", messages=MESSAGES, api_key=KEY).status_code == 200


def test_stream_error_event_reaches_the_sdk():
    fault("qwen", fault="stream_error", times=1, after_chunks=2)
    parts = list(Generation.call(model="qwen-plus", messages=MESSAGES, result_format="message",
                                 stream=True, incremental_output=True, api_key=KEY))
    assert parts[0].status_code == 200
    assert parts[-1].status_code != 200
    assert parts[-1].code == "InternalError"


def test_missing_key_is_401():
    r = Generation.call(model="qwen-plus", messages=MESSAGES, api_key="")
    assert r.status_code == 401 or r.status_code is None
