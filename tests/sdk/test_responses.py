"""The Responses API through Warden with the official `openai` Python SDK: create, the
SDK's own stream helper and raw streams, function tools over two turns with
`previous_response_id`, PII pseudonymized on the way out and restored on the way back,
provider-hosted tools governed by policy, and what Warden refuses."""

import json
import os
import tempfile

import openai
import pytest
from openai import OpenAI

from conftest import start_warden, stop

MODEL = "gpt-4o-mini"
EMAIL = "jane.doe@example.com"

INVENTORY_TOOL = {
    "type": "function",
    "name": "check_inventory",
    "description": "Units in stock for a SKU",
    "parameters": {
        "type": "object",
        "properties": {"sku": {"type": "string"}, "warehouse": {"type": "string", "enum": ["berlin", "lyon"]}},
        "required": ["sku", "warehouse"],
    },
}

POLICY = """
apiVersion: warden/v1
kind: Policy
metadata: {name: responses-suite, owner: tests}
rules:
  - name: anonymous-responses
    effect: allow
    match: {auth_methods: [anonymous]}
    settings:
      tools: {builtin: [file_search]}
"""


@pytest.fixture(scope="module")
def client():
    workdir = tempfile.mkdtemp(prefix="warden-responses-")
    os.mkdir(os.path.join(workdir, "policies"))
    with open(os.path.join(workdir, "policies", "suite.yaml"), "w") as f:
        f.write(POLICY)
    config = f"""
providers:
  mock:
    kind: mock
models:
  {MODEL}:
    targets:
      - provider: mock
policy:
  dir: {workdir}/policies
pii:
  default_profile: shop
  profiles:
    shop:
      actions: {{EMAIL: pseudonymize, PHONE: pseudonymize, IBAN: redact}}
"""
    proc, url = start_warden(config)
    yield OpenAI(base_url=url, api_key="any-client-token", max_retries=0)
    stop(proc)


def test_create_answers_with_usage(client):
    r = client.responses.create(model=MODEL, input="Where is my order?")
    assert r.object == "response"
    assert r.status == "completed"
    assert r.output_text == "You said: Where is my order?"
    assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens


def test_personal_data_is_pseudonymized_and_restored(client):
    r = client.responses.create(
        model=MODEL,
        instructions=f"The customer writes from {EMAIL}.",
        input=[{"role": "user", "content": [{"type": "input_text", "text": f"My email is {EMAIL}"}]}],
    )
    # The provider saw a placeholder: the response echoes the instructions it was sent.
    assert EMAIL not in r.instructions and "<EMAIL_" in r.instructions
    # The answer, which quotes the placeholder, comes back with the value.
    assert r.output_text == f"You said: My email is {EMAIL}"


def test_redacted_values_do_not_reach_the_provider(client):
    r = client.responses.create(model=MODEL, input="Refund to DE89370400440532013000 please")
    assert r.output_text == "You said: Refund to [IBAN] please"


def test_the_sdk_stream_helper_sees_restored_text_and_a_final_response(client):
    deltas = []
    with client.responses.stream(model=MODEL, input=f"Write to {EMAIL} about the parcel") as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = stream.get_final_response()
    text = f"You said: Write to {EMAIL} about the parcel"
    assert "".join(deltas) == text
    assert final.output_text == text
    assert final.usage.output_tokens > 0


def test_a_raw_stream_ends_with_the_completed_event(client):
    events = list(client.responses.create(model=MODEL, input="stream this answer", stream=True))
    types = [e.type for e in events]
    assert types[0] == "response.created"
    assert types[-1] == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    done = next(e for e in events if e.type == "response.output_text.done")
    assert text == done.text == "You said: stream this answer"
    assert events[-1].response.usage.input_tokens > 0


def test_function_tools_over_two_turns(client):
    first = client.responses.create(
        model=MODEL, input="Please check_inventory for SKU-123", tools=[INVENTORY_TOOL]
    )
    call = first.output[0]
    assert call.type == "function_call"
    assert call.name == "check_inventory"
    assert json.loads(call.arguments)["warehouse"] == "berlin"
    second = client.responses.create(
        model=MODEL,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "42 units in berlin"}],
        tools=[INVENTORY_TOOL],
    )
    assert second.output_text == "Tool result received: 42 units in berlin"


def test_function_call_arguments_stream(client):
    arguments = ""
    with client.responses.stream(
        model=MODEL, input="check_inventory please", tools=[INVENTORY_TOOL]
    ) as stream:
        for event in stream:
            if event.type == "response.function_call_arguments.delta":
                arguments += event.delta
        final = stream.get_final_response()
    assert json.loads(arguments)["warehouse"] == "berlin"
    assert final.output[0].arguments == arguments


def test_hosted_tools_need_the_policy(client):
    with pytest.raises(openai.PermissionDeniedError) as denied:
        client.responses.create(model=MODEL, input="news about trail shoes", tools=[{"type": "web_search"}])
    assert "builtin:web_search" in denied.value.message
    allowed = client.responses.create(
        model=MODEL,
        input="find the returns policy",
        tools=[{"type": "file_search", "vector_store_ids": ["vs_1"]}],
    )
    assert allowed.status == "completed"


def test_what_warden_cannot_govern_is_refused(client):
    with pytest.raises(openai.BadRequestError) as background:
        client.responses.create(model=MODEL, input="later", background=True)
    assert background.value.param == "background"
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model=MODEL, input="x", tools=[{"type": "function", "name": "bad name"}])
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="no-such-model", input="x")
