"""The Responses API through Warden with the official `openai` Python SDK: create, the
SDK's own stream helper and raw streams, function tools over two turns with
`previous_response_id`, PII pseudonymized on the way out and restored on the way back
(across the turns of a conversation too), stored responses read, listed and deleted by
their owner only, provider-hosted tools governed by policy, and what Warden refuses."""

import hashlib
import json
import os
import tempfile

import urllib.request

import openai
import pytest
from openai import OpenAI

from conftest import start_mock_provider, start_warden, stop

MODEL = "gpt-4o-mini"
AZURE_MODEL = "gpt-4o-azure"
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
  - name: service-responses
    effect: allow
    match: {auth_methods: [api_key]}
    settings:
      tools: {builtin: [file_search]}
"""


KEYS = {"acme": "sk-responses-acme", "globex": "sk-responses-globex"}


@pytest.fixture(scope="module")
def provider():
    # Answers in 3-character pieces, so placeholders arrive split across stream events.
    proc, url = start_mock_provider("--chunk-chars", "3")
    yield url
    stop(proc)


def last_request(provider):
    with urllib.request.urlopen(f"{provider}/_mock/last-request", timeout=5) as r:
        return json.load(r)


@pytest.fixture(scope="module")
def warden(provider):
    workdir = tempfile.mkdtemp(prefix="warden-responses-")
    os.mkdir(os.path.join(workdir, "policies"))
    with open(os.path.join(workdir, "policies", "suite.yaml"), "w") as f:
        f.write(POLICY)
    config = f"""
providers:
  upstream:
    kind: openai
    base_url: {provider}/v1
    api_key: sk-upstream
  azure:
    kind: azure
    endpoint: {provider}
    api_version: 2025-04-01-preview
    api_key: azure-key
models:
  {MODEL}:
    targets:
      - provider: upstream
  {AZURE_MODEL}:
    targets:
      - provider: azure
        model: support-4o-deployment
policy:
  dir: {workdir}/policies
pii:
  default_profile: shop
  profiles:
    shop:
      actions: {{EMAIL: pseudonymize, PHONE: pseudonymize, IBAN: redact}}
auth:
  api_keys:
"""
    for tenant, key in KEYS.items():
        digest = hashlib.sha256(key.encode()).hexdigest()
        config += f"    - {{id: {tenant}-app, sha256: {digest}, tenant: {tenant}}}\n"
    proc, url = start_warden(config)
    yield url
    stop(proc)


@pytest.fixture(scope="module")
def client(warden):
    return OpenAI(base_url=warden, api_key=KEYS["acme"], max_retries=0)


@pytest.fixture(scope="module")
def other(warden):
    return OpenAI(base_url=warden, api_key=KEYS["globex"], max_retries=0)


def test_create_answers_with_usage(client):
    r = client.responses.create(model=MODEL, input="Where is my order?")
    assert r.object == "response"
    assert r.status == "completed"
    assert r.output_text == "You said: Where is my order?"
    assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens


def test_personal_data_is_pseudonymized_and_restored(client, provider):
    r = client.responses.create(
        model=MODEL,
        instructions=f"The customer writes from {EMAIL}.",
        input=[{"role": "user", "content": [{"type": "input_text", "text": f"My email is {EMAIL}"}]}],
    )
    sent = json.dumps(last_request(provider)["body"])
    assert EMAIL not in sent and "<EMAIL_" in sent
    # The answer, which quotes the placeholder, comes back with the value, and so do
    # the instructions the response echoes.
    assert r.output_text == f"You said: My email is {EMAIL}"
    assert r.instructions == f"The customer writes from {EMAIL}."


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
    with pytest.raises(openai.BadRequestError) as reference:
        client.responses.create(model=MODEL, input=[{"type": "item_reference", "id": "msg_someone_elses"}])
    assert reference.value.param == "input"


def test_a_value_from_turn_one_is_restored_in_turn_three(client):
    first = client.responses.create(model=MODEL, input=f"My email is {EMAIL}")
    second = client.responses.create(model=MODEL, previous_response_id=first.id, input="Thanks!")
    assert second.output_text == "You said: Thanks!"
    third = client.responses.create(
        model=MODEL, previous_response_id=second.id, input="Please repeat my first message"
    )
    # The provider kept turn 1 with its placeholder; the conversation's vault restores it.
    assert third.output_text == f"You first said: My email is {EMAIL}"


def test_the_same_value_keeps_its_placeholder_across_turns(client):
    first = client.responses.create(
        model=MODEL, instructions=f"Customer: {EMAIL}", input=f"Write to {EMAIL}"
    )
    second = client.responses.create(
        model=MODEL,
        previous_response_id=first.id,
        instructions=f"Customer: {EMAIL}",
        input="and also write to bob@shop.example",
    )
    # Responses echo the instructions they were given: restored for the client.
    assert first.instructions == second.instructions == f"Customer: {EMAIL}"
    raw = client.responses.with_raw_response.retrieve(second.id)
    assert raw.parse().output_text == "You said: and also write to bob@shop.example"


def test_the_owner_reads_lists_and_deletes_a_stored_response(client):
    created = client.responses.create(model=MODEL, input=f"Ship it to {EMAIL}")
    got = client.responses.retrieve(created.id)
    assert got.id == created.id
    assert got.output_text == f"You said: Ship it to {EMAIL}"
    items = client.responses.input_items.list(created.id)
    texts = [part.text for item in items.data for part in item.content]
    assert texts == [f"Ship it to {EMAIL}"]
    deleted = client.responses.delete(created.id)
    assert deleted is None or getattr(deleted, "deleted", True)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)


def test_another_tenant_finds_nothing(client, other):
    created = client.responses.create(model=MODEL, input=f"My email is {EMAIL}")
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.input_items.list(created.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError) as continued:
        other.responses.create(
            model=MODEL, previous_response_id=created.id, input="Please repeat my first message"
        )
    assert continued.value.body["param"] == "previous_response_id"
    # The owner's response is untouched.
    assert client.responses.retrieve(created.id).output_text == f"You said: My email is {EMAIL}"


def test_ids_warden_never_passed_are_not_found(client):
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve("resp_never_created")
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model=MODEL, previous_response_id="resp_never_created", input="hi")


def test_azure_serves_responses_at_its_own_path(client, provider):
    created = client.responses.create(model=AZURE_MODEL, input=f"Azure, mail {EMAIL}")
    seen = last_request(provider)
    assert seen["path"] == "/openai/responses?api-version=2025-04-01-preview"
    assert seen["headers"]["api-key"] == "azure-key"
    assert seen["body"]["model"] == "support-4o-deployment"
    assert created.output_text == f"You said: Azure, mail {EMAIL}"
    assert client.responses.retrieve(created.id).output_text == created.output_text
    assert last_request(provider)["path"] == f"/openai/responses/{created.id}?api-version=2025-04-01-preview"
