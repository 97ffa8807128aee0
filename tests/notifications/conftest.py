"""A real HTTP server (http.server in a thread) that records the POSTs it gets, and a real
SMTP server (aiosmtpd) on 127.0.0.1 that records the messages."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Received:
    """Requests the server got: ``(path, headers, json body)``."""

    posts: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[tuple[str, dict[str, str],
                                                                      Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.posts) >= count:
                    return list(self.posts)
            time.sleep(0.02)
        raise AssertionError(f"gave up after {timeout:g} s waiting for {count} POSTs; got "
                             f"{len(self.posts)}")


@pytest.fixture
def webhook_server() -> Iterator[tuple[str, Received]]:
    """``(base_url, received)``: ``/fail`` answers 500, ``/slow`` answers after 3 s."""
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            size = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(size) or b"null")
            with received.lock:
                received.posts.append((self.path, dict(self.headers.items()), body))
            if self.path.startswith("/slow"):
                time.sleep(3)
            status = 500 if self.path.startswith("/fail") else 200
            try:
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except OSError:  # the client gave up (a notifier's timeout): expected
                pass

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


@dataclass
class Mailbox:
    messages: list[tuple[str, list[str], Message]] = field(default_factory=list)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[tuple[str, list[str],
                                                                      Message]]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"gave up after {timeout:g} s waiting for {count} mails")
            time.sleep(0.02)
        return list(self.messages)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, Mailbox]]:
    """``(port, mailbox)`` of an aiosmtpd server on 127.0.0.1 (no TLS, no auth)."""
    from aiosmtpd.controller import Controller

    mailbox = Mailbox()

    class Handler:
        async def handle_DATA(self, server: Any, session: Any,
                              envelope: Any) -> str:
            mailbox.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                                     message_from_bytes(envelope.original_content)))
            return "250 Message accepted for delivery"

    port = _free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port,
                            server_hostname="localhost")
    controller.start()
    yield port, mailbox
    controller.stop()
