"""Capture a task instance's stdout, stderr and logging into its log, secrets masked."""

from __future__ import annotations

import io
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO, cast

from mlpipe.connections.masking import redact

FORMAT = "[%(asctime)s] {%(name)s} %(levelname)s - %(message)s"


class _Formatter(logging.Formatter):
    converter = time.gmtime

    def __init__(self, fmt: str) -> None:
        super().__init__(fmt)
        self._last: tuple[int, str] = (-1, "")  # one tuple: threads see a consistent pair

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        last_second, stamp = self._last
        if second != last_second:  # a task logs several lines a second: format once
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(second))
            self._last = (second, stamp)
        return f"{stamp}.{int(record.msecs):03d}Z"


_formatter = _Formatter(FORMAT)


class _StreamHandler(logging.Handler):
    def __init__(self, sink: TextIO) -> None:
        super().__init__(logging.DEBUG)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.sink.write(_formatter.format(record) + "\n")
        except Exception:  # a log call must never fail the task
            self.handleError(record)


class _StreamToLog(io.TextIOBase):
    """A text stream whose complete lines go to the task log."""

    def __init__(self, sink: TextIO, name: str) -> None:
        self.sink = sink
        self.name = name
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        data = self._partial + text
        lines = data.split("\n")
        self._partial = lines.pop()
        for line in lines:
            self.sink.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        if self._partial:
            self.sink.write(self._partial + "\n")
            self._partial = ""


class RedactingSink:
    """Writes to ``sink`` with every registered secret replaced by ``***``.

    The streams above hand it whole lines, so a secret is never split between two writes.
    """

    def __init__(self, sink: TextIO) -> None:
        self.sink = sink

    def write(self, text: str) -> int:
        self.sink.write(redact(text))
        return len(text)

    def flush(self) -> None:
        self.sink.flush()


@contextmanager
def capture_task_output(sink: TextIO) -> Iterator[None]:
    """Route ``print``, ``sys.stderr`` and log records at INFO and above into ``sink``.

    Secrets that connections and variables registered (``mlpipe.connections.masking``) are
    written as ``***``.
    """
    sink = cast(TextIO, RedactingSink(sink))
    root = logging.getLogger()
    handler = _StreamHandler(sink)
    old_level = root.level
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    out, err = _StreamToLog(sink, "stdout"), _StreamToLog(sink, "stderr")
    old_out, old_err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err  # type: ignore[assignment]
    try:
        yield
    finally:
        out.flush()
        err.flush()
        sys.stdout, sys.stderr = old_out, old_err
        root.removeHandler(handler)
        root.setLevel(old_level)
        sink.flush()
