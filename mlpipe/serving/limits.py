"""Bounded input for ``mlpipe serve``: body and file sizes capped while the bytes arrive,
decoded pixels capped from the image header before any decoding.

- :class:`BodyLimitMiddleware` (pure ASGI) answers 413 as soon as a request declares
  (``Content-Length``) or has sent more than ``max_body_bytes``; nothing beyond the limit is
  ever read.
- :func:`read_image_files` parses ``multipart/form-data`` chunk by chunk and stops at the
  first file above ``max_file_bytes`` or the file after ``max_files``.
- :func:`check_pixels` reads only the image header (``Image.open`` is lazy).
"""

from __future__ import annotations

import io
import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import HTTPException
from starlette.requests import Request

from mlpipe.errors import BodyTooLargeError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MB = 1024 * 1024
MAX_FIELD_BYTES = 64 * 1024  # a non-file form field (ignored, but bounded too)


@dataclass(frozen=True)
class ServeLimits:
    """What one request may carry (defaults: 20 MB body, 10 MB per file, 64 files, 40 Mpx)."""

    max_body_bytes: int = 20 * MB
    max_file_bytes: int = 10 * MB
    max_files: int = 64
    max_pixels: int = 40_000_000


def too_large(detail: str) -> HTTPException:
    """A 413 whose detail names what is too large and the limit."""
    return HTTPException(status_code=413, detail=detail)


class BodyLimitMiddleware:
    """Counts request body bytes as they arrive; 413 (JSON) past ``max_body_bytes``."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._reject(send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLargeError:
            if started:
                raise
            await self._reject(send)

    async def _reject(self, send: Send) -> None:
        limit = self.max_body_bytes
        body = json.dumps({"detail": f"request body is larger than the limit of "
                                     f"{_size(limit)} (--max-body-mb)",
                           "limit_bytes": limit}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _size(n: int) -> str:
    return f"{n / MB:g} MB" if n >= MB else f"{n} bytes"


@dataclass
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    name: bytes = b""
    value: bytes = b""
    filename: str | None = None
    data: bytearray = field(default_factory=bytearray)


class _FileCollector:
    """python-multipart callbacks keeping each file in memory up to the per-file cap."""

    def __init__(self, limits: ServeLimits) -> None:
        self.limits = limits
        self.files: list[tuple[str, bytes]] = []
        self.fields = 0
        self.part = _Part()

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {"on_part_begin": self.on_part_begin, "on_part_data": self.on_part_data,
                "on_part_end": self.on_part_end, "on_header_field": self.on_header_field,
                "on_header_value": self.on_header_value, "on_header_end": self.on_header_end,
                "on_headers_finished": self.on_headers_finished}

    def on_part_begin(self) -> None:
        self.part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.part.name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.part.value += data[start:end]

    def on_header_end(self) -> None:
        self.part.headers[self.part.name.lower()] = self.part.value
        self.part.name, self.part.value = b"", b""

    def on_headers_finished(self) -> None:
        from python_multipart.multipart import parse_options_header

        _, options = parse_options_header(self.part.headers.get(b"content-disposition", b""))
        if b"filename" not in options:
            self.fields += 1
            if self.fields > self.limits.max_files:
                raise too_large(f"more than {self.limits.max_files} form fields in one request")
            return
        name = options[b"filename"].decode("utf-8", "replace")
        self.part.filename = name or f"file-{len(self.files)}"
        if len(self.files) + 1 > self.limits.max_files:
            raise too_large(f"more than {self.limits.max_files} files in one request "
                            "(--max-files)")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self.part
        part.data += data[start:end]
        cap = self.limits.max_file_bytes if part.filename is not None else MAX_FIELD_BYTES
        if len(part.data) > cap:
            what = f"file {part.filename!r}" if part.filename is not None else "a form field"
            raise too_large(f"{what} is larger than the limit of {_size(cap)}"
                            + (" (--max-file-mb)" if part.filename is not None else ""))

    def on_part_end(self) -> None:
        if self.part.filename is not None:
            self.files.append((self.part.filename, bytes(self.part.data)))
        self.part = _Part()


async def read_image_files(request: Request, limits: ServeLimits) -> list[tuple[str, bytes]]:
    """The uploaded files of a ``multipart/form-data`` request, read chunk by chunk.

    Raises:
        HTTPException: 415 not multipart, 400 malformed or no (or an empty) file, 413 a file
            above ``max_file_bytes`` or more than ``max_files`` files.
    """
    from python_multipart.exceptions import MultipartParseError
    from python_multipart.multipart import MultipartParser, parse_options_header

    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data":
        raise HTTPException(status_code=415, detail="send images as multipart/form-data "
                            "files (field 'files'), e.g. curl -F files=@digit.png")
    if not params.get(b"boundary"):
        raise HTTPException(status_code=400, detail="bad multipart payload: the Content-Type "
                            "header has no boundary")
    collector = _FileCollector(limits)
    parser = MultipartParser(params[b"boundary"], collector.callbacks())  # type: ignore[arg-type]
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise HTTPException(status_code=400, detail=f"bad multipart payload: {exc}") from None
    if not collector.files:
        raise HTTPException(status_code=400, detail="no image files in the request; send "
                            "one or more as multipart field 'files'")
    for name, data in collector.files:
        if not data:
            raise HTTPException(status_code=400, detail=f"file {name!r} is empty")
    return collector.files


def check_pixels(name: str, data: bytes, max_pixels: int) -> None:
    """Refuse (413) an image whose header declares more than ``max_pixels`` pixels.

    Only the header is read; bytes Pillow cannot identify pass (the decoder names them).
    """
    from PIL import Image

    limit = f"above the limit of {max_pixels:,} pixels (--max-pixels)"
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
    except Image.DecompressionBombError:  # Pillow's own, higher limit
        raise too_large(f"file {name!r} is a decompression bomb, {limit}") from None
    except Exception:
        return
    if width * height > max_pixels:
        raise too_large(f"file {name!r} is {width}x{height} = {width * height:,} pixels, "
                        f"{limit}")
