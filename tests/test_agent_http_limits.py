"""The node agent's HTTPS server has the log server's limits (issue 16 part 8): nodes face
the internet, and 200 half-open TLS plus 200 silent TCP connections were all still open
after 20 s. The server is the one `attest agent` runs (cli_agent.agent_server)."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from attest.agent.cli_agent import agent_server
from attest.agent.node_identity import make_node_identity
from tests.support.tlog_net import free_port

DEADLINE = 1.0
# A TLS record header and the start of a ClientHello that never ends (RFC 8446 §5.1, §4.1.2).
PARTIAL_CLIENT_HELLO = bytes.fromhex("160301020001000200") + b"\x03\x03" + bytes(16)


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except OSError:  # reset by the server
        return True
    return True


def test_agent_drops_half_open_tls_and_silent_connections(tmp_path: Path) -> None:
    key, cert = make_node_identity(datetime.now(UTC)).write(tmp_path)

    async def hello(request):  # type: ignore[no-untyped-def]
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/", hello)])
    port = free_port()
    server = agent_server(app, "127.0.0.1", port, key, cert, header_timeout=DEADLINE)
    server.config.install_signal_handlers = False  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(1000):
            if server.started:
                break
            time.sleep(0.01)
        assert server.started
        silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
        half_open = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
        for s in half_open:
            s.sendall(PARTIAL_CLIENT_HELLO)
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        # a completed handshake that never sends a request: the header deadline
        idle_tls = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)))
        big = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)))
        big.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
        assert big.recv(100).startswith(b"HTTP/1.1 431")
        start = time.monotonic()
        for s in [*silent, *half_open, idle_tls]:
            assert _closed_within(s, DEADLINE * 4 + 2), "connection still open"
            s.close()
        assert time.monotonic() - start < DEADLINE * 4 + 2
        ok = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)))
        ok.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert ok.recv(100).startswith(b"HTTP/1.1 200")
        ok.close()
        big.close()
    finally:
        server.should_exit = True
        thread.join(10)
