"""Shared fixtures: a live bridge (with its embedded sandbox) on a real port, and an agent.

The server runs in its own thread and event loop, as it would in its own process: tests
talk to it only over HTTP, and a blocked loop on either side shows up as a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from twilio.rest import Client

from bridge.config import SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN, Settings, load_settings
from bridge.server import serve
from tests.postgres import postgres_server, postgres_url  # noqa: F401 - fixtures


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """``bridge.server.serve`` running in a background thread until :meth:`stop`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = f"http://127.0.0.1:{settings.port}"
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="live-server", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(serve(self.settings, shutdown_trigger=self._stopped))
        except BaseException as error:  # surfaced by start()/stop()
            self._error = error
        finally:
            # As asyncio.run does: cancel what is left (such as sse-starlette's shutdown
            # watcher, which only a uvicorn exit would end) before closing the loop.
            left = asyncio.all_tasks(self._loop)
            for task in left:
                task.cancel()
            if left:
                self._loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    async def _stopped(self) -> None:
        await self._stop.wait()

    def start(self, timeout: float = 15.0) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._error is not None:
                raise RuntimeError("server failed to start") from self._error
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return self
            time.sleep(0.05)
        raise TimeoutError("server did not answer /healthz")

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=60)
        if self._error is not None:
            raise RuntimeError("server failed") from self._error


def sandbox_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    port = free_port()
    env = {
        "PORT": str(port),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bridge.db'}",
        "REPLY_WAIT_SECONDS": "1",
        "POLL_INTERVAL_SECONDS": "0.1",
        "POLL_MAX_INTERVAL_SECONDS": "0.5",
        "POLL_STATE_SECONDS": "0.5",
    }
    env.update(overrides)
    return env


ServerFactory = Callable[..., LiveServer]


def real_mode(api_base_url: str, tmp_path: Path, **overrides: str) -> dict[str, str]:
    """Settings for a bridge in real mode (no embedded sandbox) that talks to the
    Conversations API at ``api_base_url`` as it would to Twilio."""
    return {
        "SANDBOX": "0",
        "ALLOW_INSECURE_NO_AUTH": "1",
        "TWILIO_ACCOUNT_SID": SANDBOX_ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": SANDBOX_AUTH_TOKEN,
        "TWILIO_FLOW_SID": "FW" + "1" * 32,
        "TWILIO_API_BASE_URL": api_base_url,
        "BRIDGE_SECRET": "real-mode-test-secret-0123456789-abcdef",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'real-mode.db'}",
        **overrides,
    }


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[ServerFactory]:
    started: list[LiveServer] = []

    def factory(**overrides: str) -> LiveServer:
        server = LiveServer(load_settings(sandbox_env(tmp_path, **overrides))).start()
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture
def server(make_server: ServerFactory) -> LiveServer:
    return make_server()


@pytest.fixture
async def client(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        yield http


def twilio_client(server: LiveServer) -> Client:
    """The real ``twilio`` library, pointed at the sandbox as a Flex agent's tools would be."""
    twilio = Client(SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN)
    twilio.conversations.base_url = f"{server.url}/sandbox/twilio"
    twilio.taskrouter.base_url = f"{server.url}/sandbox/taskrouter"
    twilio.flex_api.base_url = f"{server.url}/sandbox/flex"
    twilio.studio.base_url = f"{server.url}/sandbox/studio"
    return twilio


class Agent:
    """A Flex agent acting through standard Twilio Conversations API calls."""

    def __init__(self, twilio: Client, name: str = "agent.alex") -> None:
        self.twilio = twilio
        self.name = name

    @property
    def conversations(self):  # type: ignore[no-untyped-def]
        return self.twilio.conversations.v1.conversations

    def open_conversations(self) -> list[str]:
        return [c.sid for c in self.conversations.list(state="active")]

    def only_conversation(self) -> str:
        sids: list[str] = [c.sid for c in self.conversations.list()]
        assert len(sids) == 1, sids
        return sids[0]

    def join(self, sid: str) -> None:
        self.conversations(sid).participants.create(identity=self.name)

    def reply(self, sid: str, body: str) -> str:
        message = self.conversations(sid).messages.create(
            author=self.name, body=body, x_twilio_webhook_enabled="true"
        )
        return str(message.sid)

    def close(self, sid: str) -> None:
        self.conversations(sid).update(state="closed", x_twilio_webhook_enabled="true")

    def messages(self, sid: str) -> list[tuple[str, str]]:
        return [(m.author, m.body) for m in self.conversations(sid).messages.list(order="asc")]


async def wait_for_conversation(agent: Agent, within: float = 10.0) -> str:
    """The only conversation's SID, once the agent can see it."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        sids: list[str] = await asyncio.to_thread(
            lambda: [c.sid for c in agent.conversations.list()]
        )
        if sids:
            assert len(sids) == 1, sids
            return sids[0]
        await asyncio.sleep(0.05)
    raise TimeoutError("no conversation appeared")


@pytest.fixture
def agent(server: LiveServer) -> Agent:
    return Agent(twilio_client(server))
