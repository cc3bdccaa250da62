"""The self-hosted tier: a real OpenAI-compatible model server — llama.cpp's
`llama-server` with SmolLM2-135M-Instruct, built and cached by scripts/fetch-llama.sh —
behind Warden as a `vllm`-kind provider, driven by the official openai SDK: chat and
streams with the server's usage, Warden's prompt-token estimate against the server's
count, personal data pseudonymized before the model and restored after it, a client
disconnect cancelling generation on the server, and the server's own errors passing
through. LLAMA_CACHE names the cache (fetch-llama.sh prints it)."""

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sdk"))
from conftest import free_port, start_warden, stop, wait_ready  # noqa: E402

MODEL = "smollm2"
EMAIL = "jane.doe@example.com"
# A whole placeholder as Warden writes it: type, number, six-character nonce.
WHOLE_PLACEHOLDER = re.compile(r"<EMAIL_\d+_[a-z0-9]{6}>")
CONTEXT = 1024


def report(line: str) -> None:
    """Figures the closing note quotes, shown whatever pytest captures."""
    print(f"[llama tier] {line}", file=sys.__stderr__, flush=True)


@pytest.fixture(scope="module")
def cache() -> Path:
    cache = os.environ.get("LLAMA_CACHE")
    if not cache:
        pytest.fail("LLAMA_CACHE must name scripts/fetch-llama.sh's cache (the tier never skips)")
    return Path(cache)


@pytest.fixture(scope="module")
def server(cache):
    binary = next(cache.glob("llama-cpp-*/bin/llama-server"))
    port = free_port()
    log = open(tempfile.mktemp(prefix="llama-server-", suffix=".log"), "w")
    proc = subprocess.Popen(
        [str(binary), "-m", str(cache / "SmolLM2-135M-Instruct.Q4_1.gguf"), "--host", "127.0.0.1",
         "--port", str(port), "-c", str(CONTEXT), "-np", "1", "-t", "2", "--metrics", "-v",
         "--no-webui"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    wait_ready(proc, f"{url}/health", f"llama-server (see {log.name})", seconds=120)
    yield url, Path(log.name)
    stop(proc)


@pytest.fixture(scope="module")
def warden(server, cache):
    url, _ = server
    workdir = tempfile.mkdtemp(prefix="warden-llama-")
    config = f"""
log:
  format: json
providers:
  llama:
    kind: vllm
    base_url: {url}/v1
    timeouts: {{first_byte_ms: 60000, total_ms: 120000}}
models:
  {MODEL}:
    tokenizer: {cache / "tokenizer.json"}
    targets:
      - provider: llama
        model: SmolLM2-135M-Instruct
pii:
  default_profile: shop
  profiles:
    shop:
      actions: {{EMAIL: pseudonymize}}
"""
    proc, base_url = start_warden(config)
    log = Path(proc.args[proc.args.index("--config") + 1]).parent / "warden.log"
    yield base_url, log
    stop(proc)


@pytest.fixture
def client(warden):
    return OpenAI(base_url=warden[0], api_key="unused", max_retries=0, timeout=120)


def access_line(log: Path, request_id: str) -> dict:
    deadline = time.time() + 5
    while time.time() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if request_id in line and '"request"' in line:
                return json.loads(line)
        time.sleep(0.05)
    pytest.fail(f"no access line for {request_id}")


def test_chat_with_the_servers_usage_and_warden_estimate(client, warden):
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "You answer shoppers of an outdoor store in one sentence."},
            {"role": "user", "content": "Which tent would you pick for two people in the rain?"},
        ],
        max_tokens=24,
        temperature=0,
    )
    r = raw.parse()
    assert r.choices[0].message.content.strip()
    served = r.usage.prompt_tokens
    assert served > 0 and 0 < r.usage.completion_tokens <= 24
    line = access_line(warden[1], raw.headers["x-request-id"])
    estimate = line["prompt_estimate"]
    assert line["prompt_tokens"] == served
    error = (estimate - served) / served
    report(f"prompt tokens: Warden's estimate {estimate}, the server's count {served}, error {error:+.1%}")
    # The text is counted with the model's own tokenizer; what differs is the framing of
    # each message (OpenAI's 3 per message against ChatML's) — a few tokens, never more.
    assert abs(estimate - served) <= 8


def test_a_stream_ends_with_the_servers_usage(client):
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Name three hiking essentials."}],
        max_tokens=20,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    usage = chunks[-1].usage
    assert usage.prompt_tokens > 0 and 0 < usage.completion_tokens <= 20


def test_the_model_sees_a_placeholder_and_the_client_its_value(client, server):
    _, server_log = server
    # A question the model answers by quoting the sentence, placeholder included.
    messages = [
        {"role": "user", "content": f"What is the email address in this sentence? Contact {EMAIL} for help."}
    ]
    # Each request's placeholder has a new random nonce, which the model copies exactly
    # most of the time (and sometimes mangles, `[email_1_…]`): a few tries show both a
    # whole and a streamed answer (its placeholder arriving token by token) restored.
    restored = {"whole": 0, "stream": 0}
    tries = 0
    while tries < 12 and not all(restored.values()):
        tries += 1
        for mode in restored:
            if mode == "whole":
                r = client.chat.completions.create(
                    model=MODEL, messages=messages, max_tokens=30, temperature=0
                )
                answer = r.choices[0].message.content
            else:
                chunks = client.chat.completions.create(
                    model=MODEL, messages=messages, max_tokens=30, temperature=0, stream=True
                )
                answer = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            # A placeholder the model wrote whole never reaches the client. (An answer cut
            # off by max_tokens inside one ends with its beginning: that is not a value.)
            assert not WHOLE_PLACEHOLDER.search(answer), answer
            if EMAIL in answer:
                restored[mode] += 1
                report(f"a real model's answer ({mode}), restored: {answer!r}")
    report(f"restored answers in {tries} tries of each: {restored}")
    assert all(restored.values()), restored
    # With `-v` the server logs a slot's last prompt when the slot's next task starts.
    client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "ok"}], max_tokens=1
    )
    deadline = time.time() + 10
    # The server logs token pieces, which may split a character: read what is there.
    while "<EMAIL_1_" not in server_log.read_text(errors="replace") and time.time() < deadline:
        time.sleep(0.1)
    seen = server_log.read_text(errors="replace")
    assert "<EMAIL_1_" in seen, "the server's log shows the prompt it was given"
    assert EMAIL not in seen, "the address never reached the model"


def test_a_client_disconnect_cancels_generation_on_the_server(warden, server):
    url, _ = server

    def predicted() -> float:
        with urllib.request.urlopen(f"{url}/metrics", timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line.startswith("llamacpp:tokens_predicted_total"):
                    return float(line.split()[-1])
        return 0.0

    before = predicted()
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Write a very long story about a mountain."}],
        "max_tokens": 800,
        "ignore_eos": True,
        "stream": True,
    }
    with httpx.stream("POST", f"{warden[0]}/chat/completions", json=body, timeout=60) as r:
        assert r.status_code == 200
        for i, _ in enumerate(r.iter_lines()):
            if i >= 6:
                break  # the client goes away after a few chunks
    # Generation stops within a moment of the disconnect, far short of the 800 tokens.
    time.sleep(3)
    first = predicted() - before
    time.sleep(2)
    generated = predicted() - before
    report(f"client disconnect: the server generated {generated:.0f} of 800 tokens")
    assert generated == first, "the server kept generating after the client left"
    assert generated < 400


def test_the_servers_own_errors_pass_through(client):
    long_text = "tent " * (CONTEXT * 2)
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": long_text}], max_tokens=8
        )
    report(f"the server's error, as the client sees it: {err.value.body}")
    assert "context" in json.dumps(err.value.body).lower()
