"""The official openai SDK over HTTPS: Warden's listener with a certificate from a test
CA (trustme), the SDK trusting that CA, over HTTP/1.1 and HTTP/2 (httpx with h2), a
stream over HTTP/2, and a client that does not trust the CA refused at the handshake."""

import ssl

import openai
import pytest
import trustme

from conftest import CONFIG, start_warden, stop


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    d = tmp_path_factory.mktemp("tls")
    cert.cert_chain_pems[0].write_to_path(str(d / "tls.crt"))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(d / "tls.crt"), append=True)
    cert.private_key_pem.write_to_path(str(d / "tls.key"))
    config = CONFIG.replace(
        "server:\n",
        f"server:\n  tls:\n    cert_file: {d / 'tls.crt'}\n    key_file: {d / 'tls.key'}\n",
    )
    proc, url = start_warden(config)
    yield ca, url.replace("http://127.0.0.1", "https://localhost")
    stop(proc)


def client(ca, url, http2):
    context = ssl.create_default_context()
    ca.configure_trust(context)
    http = openai.DefaultHttpxClient(http2=http2, verify=context)
    return openai.OpenAI(base_url=url, api_key="unused", http_client=http, max_retries=0)


MESSAGES = [{"role": "user", "content": "Is the Trailblazer 2 waterproof?"}]


@pytest.mark.parametrize("http2, version", [(False, "HTTP/1.1"), (True, "HTTP/2")])
def test_chat_over_https(tls, http2, version):
    ca, url = tls
    raw = client(ca, url, http2).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES
    )
    assert raw.http_response.http_version == version
    answer = raw.parse()
    assert answer.choices[0].message.content
    assert answer.usage.total_tokens > 0


def test_a_stream_over_http2(tls):
    ca, url = tls
    raw = client(ca, url, True).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    assert raw.http_response.http_version == "HTTP/2"
    text, usage = "", None
    for chunk in raw.parse():
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        usage = chunk.usage or usage
    assert text
    assert usage is not None and usage.completion_tokens > 0


def test_a_client_that_does_not_trust_the_ca_is_refused(tls):
    _, url = tls
    untrusting = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
    with pytest.raises(openai.APIConnectionError):
        untrusting.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
