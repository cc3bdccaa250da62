"""Client compatibility: LangChain's `ChatOpenAI` (PyPI `langchain-openai`) pointed at
Warden with only `base_url` changed — invoke, stream, tool binding, and the Responses API
(`use_responses_api=True`), with personal data pseudonymized and restored on the way."""

import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from conftest import start_warden, stop

MODEL = "gpt-4o-mini"
EMAIL = "jane.doe@example.com"


@tool
def check_inventory(sku: str) -> str:
    """Units in stock for a SKU."""
    return f"7 units of {sku}"


@pytest.fixture(scope="module")
def base_url():
    config = f"""
providers:
  mock:
    kind: mock
models:
  {MODEL}:
    targets:
      - provider: mock
pii:
  default_profile: shop
  profiles:
    shop:
      actions: {{EMAIL: pseudonymize}}
"""
    proc, url = start_warden(config)
    yield url
    stop(proc)


def chat(base_url, **kwargs):
    return ChatOpenAI(model=MODEL, base_url=base_url, api_key="unused", max_retries=0, **kwargs)


def test_invoke(base_url):
    reply = chat(base_url).invoke(f"Write to {EMAIL}")
    assert reply.content == f"You said: Write to {EMAIL}"
    assert reply.usage_metadata["output_tokens"] > 0


def test_stream(base_url):
    pieces = [c.content for c in chat(base_url, stream_usage=True).stream(f"Stream to {EMAIL}")]
    assert "".join(pieces) == f"You said: Stream to {EMAIL}"
    assert len(pieces) > 3


def test_bound_tools_round_trip(base_url):
    model = chat(base_url).bind_tools([check_inventory])
    question = HumanMessage("Please check_inventory for SKU-9")
    first = model.invoke([question])
    call = first.tool_calls[0]
    assert call["name"] == "check_inventory"
    result = check_inventory.invoke(call["args"])
    second = model.invoke([question, first, ToolMessage(result, tool_call_id=call["id"])])
    assert second.content == f"Tool result received: {result}"


def test_the_responses_api(base_url):
    model = chat(base_url, use_responses_api=True)
    reply = model.invoke(f"My email is {EMAIL}")
    assert reply.text == f"You said: My email is {EMAIL}"
    assert reply.response_metadata["id"].startswith("resp_")
    streamed = "".join(c.text for c in model.stream("stream it"))
    assert streamed == "You said: stream it"
    tooled = model.bind_tools([check_inventory]).invoke("check_inventory for SKU-3")
    assert tooled.tool_calls[0]["name"] == "check_inventory"
