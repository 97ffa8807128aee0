"""A loopback TCP proxy that adds a fixed latency to every HTTP request (for benchmarks).

Real S3 answers each request after tens of milliseconds; a local moto server answers in one.
Put this in front of it and a client's parallelism matters as it does on real S3: each
request waits ``delay`` seconds before it is forwarded, each connection on its own, so
requests on different connections wait at the same time (latency, not a bandwidth cap).

A request starts with the first bytes a client sends after the server last answered on
that connection (HTTP/1.1 keep-alive: one request at a time per connection); request bodies
arriving in later reads are not delayed again. The proxy runs in its own process (in the
benchmark's process its event loop would compete for the GIL with the client under test):
``python _latency_proxy.py HOST PORT DELAY_MS`` prints its own port, then runs until its
stdin closes.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse

_CHUNK = 256 * 1024


async def _serve(host: str, port: int, delay: float) -> None:
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(host, port)
        except OSError:
            client_w.close()
            return
        answered = [True]  # True: the next client bytes start a new request

        async def upstream() -> None:
            while data := await client_r.read(_CHUNK):
                if answered[0]:
                    answered[0] = False
                    await asyncio.sleep(delay)
                server_w.write(data)
                await server_w.drain()
            server_w.close()

        async def downstream() -> None:
            while data := await server_r.read(_CHUNK):
                answered[0] = True
                client_w.write(data)
                await client_w.drain()
            client_w.close()

        try:
            await asyncio.gather(upstream(), downstream())
        except (ConnectionError, OSError):
            pass
        finally:
            client_w.close()
            server_w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=512)
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.get_running_loop().create_future()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.get_loop().call_soon_threadsafe(
        stop.set_result, None)), daemon=True).start()
    async with server:
        await stop


@contextmanager
def latency_proxy(endpoint: str, delay_ms: float) -> Iterator[str]:
    """A proxy in front of ``endpoint`` (``http://host:port``); yields the proxy's URL."""
    target = urlparse(endpoint)
    proc = subprocess.Popen([sys.executable, __file__, str(target.hostname), str(target.port),
                             str(delay_ms)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().strip()
        if not port.isdigit():
            raise RuntimeError(f"latency proxy did not start (printed {port!r})")
        yield f"http://127.0.0.1:{port}"
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) / 1000))
