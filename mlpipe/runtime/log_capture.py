"""Capture a task instance's stdout, stderr and logging into its log, secrets masked."""

from __future__ import annotations

import io
import logging
import os
import sys
import threading
import time
from typing import Protocol

from mlpipe.masking import redact

FORMAT = "[%(asctime)s] {%(name)s} %(levelname)s - %(message)s"


class _Formatter(logging.Formatter):
    """``FORMAT`` with UTC ISO timestamps, the date part formatted once a second."""

    converter = time.gmtime

    def __init__(self, fmt: str) -> None:
        super().__init__(fmt)
        self._last: tuple[int, str] = (-1, "")  # one tuple: threads see a consistent pair

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return self._stamp(record.created)

    def _stamp(self, created: float) -> str:
        second = int(created)
        last_second, stamp = self._last
        if second != last_second:  # a task logs several lines a second: format once
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(second))
            self._last = (second, stamp)
        return f"{stamp}.{int((created - second) * 1000):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info or record.exc_text or record.stack_info:
            return super().format(record)
        record.message = record.getMessage()
        return self.line(record.created, record.name, record.levelname, record.message)

    def line(self, created: float, name: str, levelname: str, message: str) -> str:
        """``FORMAT`` filled in."""
        return f"[{self._stamp(created)}] {{{name}}} {levelname} - {message}"


_formatter = _Formatter(FORMAT)


class Sink(Protocol):
    """Where a try's output goes: a log file, or a wrapper of one."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


class _StreamHandler(logging.Handler):
    def __init__(self, sink: Sink) -> None:
        super().__init__(logging.DEBUG)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.sink.write(_formatter.format(record) + "\n")
        except Exception:  # a log call must never fail the task
            self.handleError(record)


class _StreamToLog(io.TextIOBase):
    """A text stream whose complete lines go to the task log."""

    def __init__(self, sink: Sink, name: str) -> None:
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


class LogFile:
    """A try's log file, appended to; every write reaches the file at once.

    What a line-buffered text file does for the task log (a task that is killed or runs out
    of memory keeps what it logged), without opening Python's three-layer text stack for
    every try (~10 us of each ``dag.test()`` task).
    """

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)

    def write(self, text: str) -> int:
        data = memoryview(text.encode("utf-8"))
        while data:
            data = data[os.write(self._fd, data):]
        return len(text)

    def flush(self) -> None:
        """Nothing is buffered."""

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> LogFile:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class RedactingSink:
    """Writes to ``sink`` with every registered secret replaced by ``***``.

    The streams above hand it whole lines, so a secret is never split between two writes.
    """

    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    def write(self, text: str) -> int:
        self.sink.write(redact(text))
        return len(text)

    def flush(self) -> None:
        self.sink.flush()


class _Parts:
    """A capture's handler, streams and redacting sink: made once per thread and pointed
    at each try's log in turn (making them for every try cost ~25 us of a ``dag.test()``
    task). Between tries the streams write to ``sys.stderr``."""

    def __init__(self) -> None:
        self.sink = RedactingSink(_IDLE)
        self.handler = _StreamHandler(self.sink)
        self.out = _StreamToLog(self.sink, "stdout")
        self.err = _StreamToLog(self.sink, "stderr")
        self.busy = False


class _StandardError:
    """Where a stream kept past its try writes: ``sys.stderr`` as it is now."""

    def write(self, text: str) -> int:
        if sys.stderr is not None:
            sys.stderr.write(text)
        return len(text)

    def flush(self) -> None:
        if sys.stderr is not None:
            sys.stderr.flush()


_IDLE = _StandardError()
_threads = threading.local()


def log_task_line(logger: logging.Logger, message: str, *args: object) -> None:
    """``logger.info(message, *args)``, for the lines the engine writes in every try.

    When the try's capture is the only place the record could reach (no other handler or
    filter on the way up, as in a script or notebook running ``dag.test()``), the line is
    written to the try's log directly: the same text, without building a ``LogRecord``
    (~5 us of each line). Otherwise (the CLI's console, pytest's ``caplog``) it is logged.
    """
    parts: _Parts | None = getattr(_threads, "parts", None)
    if parts is not None and parts.busy and _reaches_only(logger, parts.handler):
        parts.sink.write(_formatter.line(time.time(), logger.name, "INFO",
                                         message % args if args else message) + "\n")
    else:
        logger.info(message, *args, stacklevel=2)


def _reaches_only(logger: logging.Logger, handler: logging.Handler) -> bool:
    """Whether an INFO record of ``logger`` would be handled by ``handler`` and nothing else."""
    if logger.disabled or logger.filters or handler.filters or not logger.isEnabledFor(
            logging.INFO):
        return False
    found = False
    node: logging.Logger | None = logger
    while node is not None:
        for other in node.handlers:
            if other is not handler:
                return False
            found = True
        if not node.propagate:
            break
        node = node.parent
    return found


def capture_task_output(sink: Sink) -> TaskOutputCapture:
    """Route ``print``, ``sys.stderr`` and log records at INFO and above into ``sink``
    (``with capture_task_output(log): ...``).

    Secrets that connections and variables registered (``mlpipe.masking``) are
    written as ``***``.
    """
    return TaskOutputCapture(sink)


class TaskOutputCapture:
    """The context manager of ``capture_task_output``."""

    def __init__(self, sink: Sink) -> None:
        parts: _Parts | None = getattr(_threads, "parts", None)
        if parts is None:
            parts = _threads.parts = _Parts()
        elif parts.busy:  # a capture inside a capture (a task running dag.test())
            parts = _Parts()
        self._parts = parts
        self._file = sink

    def __enter__(self) -> None:
        parts = self._parts
        parts.busy = True
        parts.sink.sink = self._file
        parts.out._partial = parts.err._partial = ""
        root = logging.getLogger()
        self._old_level = root.level
        root.addHandler(parts.handler)
        if root.level == logging.NOTSET or root.level > logging.INFO:
            root.setLevel(logging.INFO)
        self._old_streams = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = parts.out, parts.err

    def __exit__(self, *_: object) -> None:
        parts = self._parts
        try:
            parts.out.flush()
            parts.err.flush()
        finally:
            sys.stdout, sys.stderr = self._old_streams
            root = logging.getLogger()
            root.removeHandler(parts.handler)
            if root.level != self._old_level:
                root.setLevel(self._old_level)
            parts.sink.flush()
            parts.sink.sink = _IDLE
            parts.busy = False
