"""A keep-alive connection survives an early answer on every path: the bridge's routes,
the sandbox's, and /mcp. The body arrives after the server could already have answered
(a 404, 401, 405...), as it does under load; the next request on the same connection
must still be served."""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.conftest import LiveServer, ServerFactory


def _request(path: str, body: bytes, host: str) -> tuple[bytes, bytes]:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nAccept: application/json, text/event-stream\r\n\r\n"
    ).encode()
    return head, body


def _read_response(sock: socket.socket) -> int:
    """The status of one response, read to its end (Content-Length bodies)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(
        int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length")
    )
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        rest += chunk
    return int(lines[0].split()[1])


@pytest.mark.parametrize(
    "path",
    [
        "/sandbox/console/offers/WR00000000000000000000000000000000/accept",
        "/send/nobody/extra",  # 404 from the bridge
        "/healthz",  # 405: GET only
        "/mcp",
    ],
)
def test_a_body_arriving_after_an_early_answer_keeps_the_connection(
    make_server: ServerFactory, path: str
) -> None:
    server: LiveServer = make_server()
    host = server.url.removeprefix("http://")
    body = json.dumps({"agent": "agent.alex", "msg": "x" * 2000}).encode()
    with socket.create_connection(("127.0.0.1", server.settings.port), timeout=10) as sock:
        head, rest = _request(path, body, host)
        sock.sendall(head)
        time.sleep(0.3)  # the server may answer now, before the body is there
        sock.sendall(rest)
        first = _read_response(sock)
        assert first >= 400
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: " + host.encode() + b"\r\n\r\n")
        assert _read_response(sock) == 200
