"""The emulator and the bridge as separate processes, as in a real deployment."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from twilio.rest import Client

from bridge.config import SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]


class Process:
    def __init__(
        self, args: list[str], env: dict[str, str], url: str, health: str, log: Path
    ) -> None:
        self.args, self.env, self.url, self.health, self.log = args, env, url, health, log
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> Process:
        with self.log.open("ab") as log:
            self.popen = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                self.args, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.args} exited: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + self.health, timeout=1).status_code < 500:
                    return self
            time.sleep(0.05)
        raise TimeoutError(f"{self.args} did not come up: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when a machine dies."""
        if self.popen and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        assert self.popen is not None
        self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout)


def sandbox_process(tmp: Path) -> Process:
    port = free_port()
    env = {
        **os.environ,
        "TWILIO_ACCOUNT_SID": SANDBOX_ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": SANDBOX_AUTH_TOKEN,
    }
    return Process(
        [sys.executable, "-m", "bridge.sandbox", "--port", str(port)],
        env,
        f"http://127.0.0.1:{port}",
        "/sandbox/control/faults",
        tmp / "sandbox.log",
    )


def bridge_process(tmp: Path, sandbox: Process, **overrides: str) -> Process:
    """main.py in real mode, pointed at the emulator process like at Twilio."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "SANDBOX"))},
        "SANDBOX": "0",
        "ALLOW_INSECURE_NO_AUTH": "1",
        "TWILIO_ACCOUNT_SID": SANDBOX_ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": SANDBOX_AUTH_TOKEN,
        "TWILIO_FLOW_SID": "FW" + "0" * 32,
        "TWILIO_API_BASE_URL": f"{sandbox.url}/sandbox/twilio",
        "BRIDGE_SECRET": "test-bridge-secret-0123456789-abcdefghij",
        "PORT": str(port),
        "DATABASE_URL": f"sqlite:///{tmp / 'bridge.db'}",
        "REPLY_WAIT_SECONDS": "2",
    }
    env.update(overrides)
    return Process(
        [sys.executable, "main.py", "serve"],
        env,
        f"http://127.0.0.1:{env['PORT']}",
        "/healthz",
        tmp / "bridge.log",
    )


def sandbox_client(base: str) -> Client:
    """The twilio library, pointed at an emulator process's Conversations API."""
    client = Client(SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN)
    client.conversations.base_url = f"{base}/sandbox/twilio"
    return client


def set_faults(sandbox: Process, **faults: float) -> None:
    response = httpx.put(
        f"{sandbox.url}/sandbox/control/faults",
        json=faults,
        auth=(SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN),
    )
    response.raise_for_status()


@contextlib.contextmanager
def running(*processes: Process) -> Iterator[None]:
    try:
        yield
    finally:
        for process in reversed(processes):
            process.kill()


def sandbox_bridge_process(tmp: Path, **overrides: str) -> Process:
    """main.py in sandbox mode (the emulator inside, a generated BRIDGE_SECRET)."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "SANDBOX"))},
        "PORT": str(port),
        "DATABASE_URL": f"sqlite:///{tmp / 'sandbox-bridge.db'}",
        "REPLY_WAIT_SECONDS": "2",
        **overrides,
    }
    return Process(
        [sys.executable, "main.py", "serve"],
        env,
        f"http://127.0.0.1:{port}",
        "/healthz",
        tmp / "sandbox-bridge.log",
    )
