"""``mlpipe serve`` facing the internet: bounded bodies, files and pixels, a bearer token and
a loopback default bind, against a real server process over real HTTP sockets."""

from __future__ import annotations

import io
import json
import select
import socket
import struct
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from model_fixtures import MLPIPE, ServeProcess, Server, free_port
from typer.testing import CliRunner

from mlpipe.cli.main import app
from mlpipe.tracking.models import register_model

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

MB = 1024 * 1024


def multipart(files: list[tuple[str, bytes]], boundary: str) -> bytes:
    body = io.BytesIO()
    for name, data in files:
        body.write(f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; "
                   f"filename=\"{name}\"\r\nContent-Type: image/png\r\n\r\n".encode())
        body.write(data + b"\r\n")
    body.write(f"--{boundary}--\r\n".encode())
    return body.getvalue()


def post_files(server: Server, files: list[tuple[str, bytes]],
               token: str | None = None) -> tuple[int, dict[str, Any]]:
    boundary = uuid.uuid4().hex
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return server.request("POST", "/predict", multipart(files, boundary), headers)


def one_digit(tmp_path: Path) -> bytes:
    from mlpipe.ml.datasets import write_digits_pngs

    write_digits_pngs(tmp_path / "digits", limit=1)
    return next((tmp_path / "digits").rglob("*.png")).read_bytes()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` but whose (tiny) data is cut short:
    decoding it would allocate width*height bytes; reading its header costs nothing."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    idat = zlib.compress(b"\x00" * (width + 1) * 64)  # the first 64 rows, all zero
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND",
                                                                                      b"")


def peak_rss(pid: int) -> int:
    """The process's peak resident set size so far (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


def stream_upload(url: str, head: dict[str, str], chunks: Iterator[bytes],
                  deadline_s: float = 120) -> tuple[int, dict[str, Any], int]:
    """POST ``chunks`` as a chunked body on a raw socket (no body at all with a
    ``Content-Length`` header), reading the answer as soon as the server sends one:
    (status, JSON body, bytes sent before the answer came)."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    framing = [] if "Content-Length" in head else ["Transfer-Encoding: chunked"]
    lines = ["POST /predict HTTP/1.1", f"Host: {host}", *framing,
             *(f"{k}: {v}" for k, v in head.items())]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    sent, answer = 0, b""
    deadline = time.monotonic() + deadline_s
    try:
        for data in chunks:
            assert time.monotonic() < deadline, "the server never answered the upload"
            # poll, not select: select() refuses descriptors above 1024, and a long test
            # session may hold that many
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            readable = poller.poll(0)
            if readable:
                break
            try:
                sock.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(data)
        while b"\r\n\r\n" not in answer or not _complete(answer):
            part = sock.recv(65536)
            if not part:
                break
            answer += part
    finally:
        sock.close()
    head_bytes, _, body = answer.partition(b"\r\n\r\n")
    status = int(head_bytes.split(b" ", 2)[1])
    return status, json.loads(body), sent


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def zeros(total: int, chunk: int = MB) -> Iterator[bytes]:
    """``total`` bytes in ``chunk``-sized pieces, one piece in memory at a time."""
    piece = b"\x00" * chunk
    for _ in range(total // chunk):
        yield piece


@pytest.fixture(scope="module")
def served(trained_models: dict[str, Any]) -> str:
    version = register_model(trained_models["tracking_uri"], trained_models["good"],
                             "serve_limits", {})
    return f"models:/serve_limits/{version}"


def part_head(boundary: str, name: str) -> bytes:
    return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; "
            f"filename=\"{name}\"\r\n\r\n").encode()


def test_400_mb_uploads_get_413_and_the_server_memory_stays_bounded(
        trained_models: dict[str, Any], served: str, serve_process: ServeProcess,
        tmp_path: Path) -> None:
    server = serve_process(served, trained_models["tracking_uri"])  # default limits
    digit = one_digit(tmp_path)
    assert post_files(server, [("warmup.png", digit)])[0] == 200
    before = peak_rss(server.process.pid)
    boundary = uuid.uuid4().hex
    head = {"Content-Type": f"multipart/form-data; boundary={boundary}"}

    def one_file() -> Iterator[bytes]:  # 400 MB in one file part, never built in memory
        yield part_head(boundary, "huge.png")
        yield from zeros(400 * MB)

    status, answer, sent = stream_upload(server.url, head, one_file())
    assert status == 413, answer
    assert answer["detail"] == ("file 'huge.png' is larger than the limit of 10 MB "
                                "(--max-file-mb)")
    assert sent < 200 * MB  # answered long before the 400 MB were sent

    def many_files() -> Iterator[bytes]:  # 80 files of 5 MB: each under the file limit
        for i in range(80):
            yield part_head(boundary, f"part{i}.png")
            yield from zeros(5 * MB)
            yield b"\r\n"

    status, answer, sent = stream_upload(server.url, head, many_files())
    assert status == 413, answer
    assert answer["detail"] == ("request body is larger than the limit of 20 MB "
                                "(--max-body-mb)")
    assert answer["limit_bytes"] == 20 * MB
    assert sent < 200 * MB
    assert peak_rss(server.process.pid) - before < 100 * MB

    # declared too large: refused from the header, before any body byte is read
    status, answer, sent = stream_upload(server.url, {**head, "Content-Length": str(400 * MB)},
                                         iter([]))
    assert status == 413 and "--max-body-mb" in answer["detail"]
    assert post_files(server, [("after.png", digit)])[0] == 200  # still serving


def test_one_file_above_the_file_limit_or_too_many_files_get_413(
        trained_models: dict[str, Any], served: str, serve_process: ServeProcess,
        tmp_path: Path) -> None:
    server = serve_process(served, trained_models["tracking_uri"], "--max-file-mb", "1",
                           "--max-files", "3")
    digit = one_digit(tmp_path)
    status, body = post_files(server, [("ok.png", digit), ("big.png", b"\x00" * (2 * MB))])
    assert status == 413
    assert body["detail"] == "file 'big.png' is larger than the limit of 1 MB (--max-file-mb)"
    status, body = post_files(server, [(f"d{i}.png", digit) for i in range(4)])
    assert status == 413 and body["detail"] == "more than 3 files in one request (--max-files)"
    status, body = post_files(server, [(f"d{i}.png", digit) for i in range(3)])
    assert status == 200 and len(body["predictions"]) == 3


def test_an_image_above_the_pixel_limit_is_refused_from_its_header(
        trained_models: dict[str, Any], served: str, serve_process: ServeProcess,
        tmp_path: Path) -> None:
    server = serve_process(served, trained_models["tracking_uri"])
    bomb = png_header_only(12000, 12000)  # 144 Mpx, a few hundred bytes
    assert len(bomb) < 10_000
    before = peak_rss(server.process.pid)
    status, body = post_files(server, [("ok.png", one_digit(tmp_path)), ("bomb.png", bomb)])
    assert status == 413
    assert body["detail"] == ("file 'bomb.png' is 12000x12000 = 144,000,000 pixels, above the "
                              "limit of 40,000,000 pixels (--max-pixels)")
    status, body = post_files(server, [("huge.png", png_header_only(20000, 20000))])
    assert status == 413  # above Pillow's own limit too: refused at open
    assert body["detail"] == ("file 'huge.png' is a decompression bomb, above the limit of "
                              "40,000,000 pixels (--max-pixels)")
    assert peak_rss(server.process.pid) - before < 100 * MB  # 144 MB were never allocated

    lower = serve_process(served, trained_models["tracking_uri"], "--max-pixels", "1000")
    status, body = post_files(lower, [("wide.png", png_header_only(100, 11))])
    assert status == 413 and "100x11 = 1,100 pixels" in body["detail"]


def test_a_token_guards_predict_and_reload_but_not_health_and_metadata(
        trained_models: dict[str, Any], served: str, serve_process: ServeProcess,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPIPE_SERVE_TOKEN", "s3cret-token")
    server = serve_process(served, trained_models["tracking_uri"])
    digit = one_digit(tmp_path)

    status, body = post_files(server, [("d.png", digit)])
    assert status == 401 and "bearer token" in body["detail"]
    assert post_files(server, [("d.png", digit)], token="wrong")[0] == 401
    assert post_files(server, [("d.png", digit)], token="s3cret-token")[0] == 200
    assert server.request("POST", "/reload")[0] == 401
    assert server.request("POST", "/reload", b"", {"Authorization": "Basic s3cret-token"}
                          )[0] == 401
    assert server.request("POST", "/reload", b"",
                          {"Authorization": "Bearer s3cret-token"})[0] == 200
    assert server.get("/health")["status"] == "ok"
    assert server.get("/metadata")["model_uri"] == served

    from mlpipe.hooks.serving import ServingClient, ServingError

    assert ServingClient(server.url).predict([("d.png", digit)])["predictions"]  # env token
    with pytest.raises(ServingError, match="answered 401: missing or wrong bearer token"):
        ServingClient(server.url, token="wrong").reload()


def test_the_token_option_overrides_the_environment(
        trained_models: dict[str, Any], served: str, serve_process: ServeProcess,
        tmp_path: Path) -> None:
    server = serve_process(served, trained_models["tracking_uri"], "--token", "from-option")
    digit = one_digit(tmp_path)
    assert post_files(server, [("d.png", digit)], token="from-option")[0] == 200
    assert post_files(server, [("d.png", digit)])[0] == 401


def test_it_binds_loopback_by_default_and_warns_without_a_token_elsewhere(
        trained_models: dict[str, Any], served: str, serve_process: ServeProcess) -> None:
    server = serve_process(served, trained_models["tracking_uri"])
    listening = [c.laddr for c in psutil.Process(server.process.pid).net_connections("tcp")
                 if c.status == psutil.CONN_LISTEN]
    assert [addr.ip for addr in listening] == ["127.0.0.1"], listening

    import os
    import subprocess

    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": trained_models["tracking_uri"],
           "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLPIPE_SERVE_TOKEN", None)
    process = subprocess.Popen([MLPIPE, "serve", served, "--host", "0.0.0.0", "--port",
                                str(port)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        Server(process, f"http://127.0.0.1:{port}").wait_until_listening()
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    assert ("warning: serving on 0.0.0.0 without a token: anyone who reaches this address "
            "can predict and reload; set --token or MLPIPE_SERVE_TOKEN") in err


@pytest.mark.parametrize(("args", "line"), [
    (["--max-body-mb", "0"], "--max-body-mb 0.0 is not a positive number"),
    (["--max-files", "-1"], "--max-files -1 is not a positive number"),
    (["--max-pixels", "0"], "--max-pixels 0 is not a positive number"),
    (["--token", " "], "--token (or MLPIPE_SERVE_TOKEN) is empty"),
])
def test_bad_limits_and_an_empty_token_are_one_line(args: list[str], line: str) -> None:
    result = CliRunner().invoke(app, ["serve", "models:/m@production", *args])
    assert result.exit_code == 1
    assert line in result.output
    assert "Traceback" not in result.output
