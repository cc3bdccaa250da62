"""Client compatibility: the official `openai` Python SDK pointed at Warden with only
`base_url` changed. Covers models, chat (plain, streamed, with and without usage), a tool
call round trip, completions, embeddings, and the SDK's error classes."""

import json

import openai
import pytest
from openai import OpenAI

MODEL = "gpt-4o-mini"

LOOKUP_TOOL = {
    "type": "function",
    "function": {
        "name": "check_inventory",
        "description": "Units in stock for a SKU",
        "parameters": {
            "type": "object",
            "properties": {"sku": {"type": "string"}, "warehouse": {"type": "string", "enum": ["berlin", "lyon"]}},
            "required": ["sku", "warehouse"],
        },
    },
}


@pytest.fixture
def client(base_url):
    return OpenAI(base_url=base_url, api_key="any-client-token", max_retries=0)


def test_models_list_and_retrieve(client):
    ids = [m.id for m in client.models.list()]
    assert ids == ["gpt-4o-mini", "text-embedding-3-small"]
    assert client.models.retrieve(MODEL).id == MODEL


def test_chat_non_stream(client):
    r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Where is my order?"}])
    assert r.object == "chat.completion"
    assert r.choices[0].message.content == "You said: Where is my order?"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens > 0


def test_chat_with_raw_response_headers(client):
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], extra_headers={"x-request-id": "sdk-req-1"}
    )
    assert raw.headers["x-request-id"] == "sdk-req-1"
    assert raw.parse().choices[0].message.content == "You said: hi"


def collect(stream):
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return chunks, text


def test_chat_stream_without_usage(client):
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "stream this answer"}], stream=True
    )
    chunks, text = collect(stream)
    assert text == "You said: stream this answer"
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_chat_stream_with_usage(client):
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "count my tokens"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks, text = collect(stream)
    assert text == "You said: count my tokens"
    last = chunks[-1]
    assert last.choices == []
    content_chunks = sum(1 for c in chunks if c.choices and c.choices[0].delta.content)
    assert content_chunks == 5
    # The mock bills like OpenAI: "You said: count my tokens" is 6 o200k_base tokens.
    assert last.usage.completion_tokens == 6
    assert last.usage.total_tokens == last.usage.prompt_tokens + 6


def test_tool_call_round_trip(client):
    messages = [{"role": "user", "content": "Please check_inventory for SKU-123"}]
    first = client.chat.completions.create(model=MODEL, messages=messages, tools=[LOOKUP_TOOL])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "check_inventory"
    args = json.loads(call.function.arguments)
    assert args == {"sku": "Please check_inventory for SKU-123", "warehouse": "berlin"}

    messages.append(choice.message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "42 units in berlin"})
    second = client.chat.completions.create(model=MODEL, messages=messages, tools=[LOOKUP_TOOL])
    assert second.choices[0].message.content == "Tool result received: 42 units in berlin"


def test_tool_call_streamed(client):
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "check_inventory please"}],
        tools=[LOOKUP_TOOL],
        stream=True,
    )
    name, arguments = "", ""
    for chunk in stream:
        for call in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
            name += call.function.name or ""
            arguments += call.function.arguments or ""
    assert name == "check_inventory"
    assert json.loads(arguments)["warehouse"] == "berlin"


def test_completions(client):
    r = client.completions.create(model=MODEL, prompt="Write a tagline")
    assert r.choices[0].text == "You said: Write a tagline"


def test_embeddings_default_base64_and_float(client):
    r = client.embeddings.create(model="text-embedding-3-small", input=["red shoes", "blue shoes"])
    assert len(r.data) == 2
    assert len(r.data[0].embedding) == 64
    norm = sum(x * x for x in r.data[0].embedding)
    assert abs(norm - 1.0) < 1e-3
    f = client.embeddings.create(model="text-embedding-3-small", input="red shoes", encoding_format="float")
    assert f.data[0].embedding == pytest.approx(r.data[0].embedding, abs=1e-6)


def test_unknown_model_is_not_found_error(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="gpt-9-ultra", messages=[{"role": "user", "content": "x"}])
    assert e.value.code == "model_not_found"
    assert e.value.status_code == 404


def test_malformed_input_is_bad_request_error(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=MODEL, messages=[])
    assert e.value.status_code == 400
    assert e.value.param == "messages"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages="not a list")


def test_oversized_body_is_413(client):
    with pytest.raises(openai.APIStatusError) as e:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x" * 100_000}])
    assert e.value.status_code == 413
    assert e.value.code == "request_too_large"


def test_api_key_is_required_when_configured(keyed_base_url):
    from conftest import API_KEY

    bad = OpenAI(base_url=keyed_base_url, api_key="sk-not-valid", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as e:
        bad.models.list()
    assert "sk-not-valid" not in str(e.value)
    good = OpenAI(base_url=keyed_base_url, api_key=API_KEY, max_retries=0)
    assert [m.id for m in good.models.list()][0] == "gpt-4o-mini"
