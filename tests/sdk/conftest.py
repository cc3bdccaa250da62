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
    deadline = time.time() + 15
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"warden exited with {proc.returncode}; see {log.name}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin}/readyz", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("warden did not become ready")
    return proc, f"http://127.0.0.1:{port}/v1"


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
    deadline = time.time() + 15
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the mock provider exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_mock/stats", timeout=1) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.05)
    proc.kill()
    pytest.fail("the mock provider did not become ready")


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
