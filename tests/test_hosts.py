"""Every path checks the Host header (DNS rebinding), and a sandbox listening beyond this
machine says so loudly."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import ServerFactory, free_port
from tests.processes import ROOT

PATHS = [
    ("GET", "/healthz"),
    ("POST", "/send/alice"),
    ("GET", "/sandbox/"),
    ("GET", "/sandbox/twilio/v1/Conversations"),
    ("POST", "/mcp"),
    ("GET", "/nowhere"),
]


@pytest.mark.parametrize(("method", "path"), PATHS)
def test_a_foreign_host_is_refused_on_every_path(
    make_server: ServerFactory, method: str, path: str
) -> None:
    server = make_server()
    refused = httpx.request(
        method, f"{server.url}{path}", headers={"Host": "rebind.attacker.example"}, json={}
    )
    assert refused.status_code == 421
    assert refused.json()["error"]["code"] == "unknown_host"


def test_the_hosts_answered_are_the_public_and_local_ones(make_server: ServerFactory) -> None:
    server = make_server(
        PUBLIC_URL="https://bridge.example.com", ALLOWED_HOSTS="10.0.0.7:5002,probe.internal"
    )
    port = server.settings.port
    for host in (
        "bridge.example.com",
        "bridge.example.com:443",
        "BRIDGE.example.com",
        f"127.0.0.1:{port}",
        f"localhost:{port}",
        "10.0.0.7:5002",
        "probe.internal",
    ):
        answer = httpx.get(f"{server.url}/healthz", headers={"Host": host})
        assert answer.status_code == 200, host
    for host in ("bridge.example.com:8443", "10.0.0.7:5003", "example.com", ""):
        answer = httpx.get(f"{server.url}/healthz", headers={"Host": host})
        assert answer.status_code == 421, host


def test_a_sandbox_on_every_interface_warns() -> None:
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "bridge.sandbox", "--host", "0.0.0.0", "--port", str(port)],  # noqa: S104
        cwd=ROOT,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        seen = ""
        assert process.stderr is not None
        while "WARNING" not in seen and time.monotonic() < deadline:
            seen += process.stderr.readline()
        assert "WARNING: the sandbox listens on 0.0.0.0" in seen
    finally:
        process.kill()
        process.wait(10)
        assert process.stderr is not None
        process.stderr.close()
