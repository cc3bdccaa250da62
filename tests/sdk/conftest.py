"""Starts a real Warden process (the binary named by WARDEN_BIN) on free 127.0.0.1 ports
for the OpenAI SDK compatibility suite, and stops it when the session ends."""

import hashlib
import os
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

API_KEY = "sk-warden-sdk-suite"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_warden(config: str):
    binary = os.environ.get("WARDEN_BIN")
    if not binary or not os.path.exists(binary):
        pytest.fail(f"WARDEN_BIN must point at the warden binary (got {binary!r})")
    workdir = tempfile.mkdtemp(prefix="warden-sdk-")
    path = os.path.join(workdir, "warden.yaml")
    with open(path, "w") as f:
        f.write(config)
    port, admin = free_port(), free_port()
    log = open(os.path.join(workdir, "warden.log"), "w")
    proc = subprocess.Popen(
        [binary, "serve", "--config", path, "--listen", f"127.0.0.1:{port}", "--admin-listen", f"127.0.0.1:{admin}"],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    wait_ready(proc, f"http://127.0.0.1:{admin}/readyz", f"warden (see {log.name})")
    return proc, f"http://127.0.0.1:{port}/v1"


def wait_ready(proc, url: str, what: str, seconds: float = 15):
    """Waits until `url` answers 200, failing the test if `proc` exits or time runs out."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    proc.kill()
    pytest.fail(f"{what} did not become ready")


def start_mock_provider(*args: str):
    """Starts `warden mock-provider` on a free 127.0.0.1 port; returns it and its URL."""
    binary = os.environ.get("WARDEN_BIN")
    if not binary or not os.path.exists(binary):
        pytest.fail(f"WARDEN_BIN must point at the warden binary (got {binary!r})")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "mock-provider", "--listen", f"127.0.0.1:{port}", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_ready(proc, f"{url}/_mock/stats", "the mock provider")
    return proc, url


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


CONFIG = """
server:
  max_body_bytes: 65536
providers:
  mock:
    kind: mock
models:
  gpt-4o-mini:
    targets:
      - provider: mock
  text-embedding-3-small:
    targets:
      - provider: mock
"""


@pytest.fixture(scope="session")
def base_url():
    proc, url = start_warden(CONFIG)
    yield url
    stop(proc)


@pytest.fixture(scope="session")
def keyed_base_url():
    digest = hashlib.sha256(API_KEY.encode()).hexdigest()
    config = CONFIG + f"auth:\n  api_keys:\n    - id: sdk-suite\n      sha256: {digest}\n"
    proc, url = start_warden(config)
    yield url
    stop(proc)
