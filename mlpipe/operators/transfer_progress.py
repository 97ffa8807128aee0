"""Progress of a many-object transfer: objects and bytes, in the task log and on a terminal.

Every tenth of the objects, a log line with counts, bytes and the rate (task logs are files:
no bar there). When the task runs in the foreground of a terminal (``mlpipe tasks test``,
``mlpipe dags test``), a rich progress bar on that terminal as well.
"""

from __future__ import annotations

import logging
import sys
import time
from types import TracebackType
from typing import Any


def _megabytes(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


class TransferProgress:
    """``advance(size)`` once per finished object; use as a context manager."""

    def __init__(self, verb: str, objects: int, total_bytes: int, log: logging.Logger) -> None:
        self.verb = verb
        self.objects = objects
        self.total_bytes = total_bytes
        self.log = log
        self.done = 0
        self.bytes = 0
        self.began = time.perf_counter()
        self._step = max(1, objects // 10)
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> TransferProgress:
        terminal = sys.__stderr__
        if terminal is not None and terminal.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TransferSpeedColumn,
            )

            objects = TextColumn("{task.fields[done]}/{task.fields[objects]} objects")
            self._bar = Progress(TextColumn(self.verb), BarColumn(), objects, DownloadColumn(),
                                 TransferSpeedColumn(), console=Console(file=terminal),
                                 transient=True)
            self._bar.__enter__()
            self._task = self._bar.add_task(self.verb, total=self.total_bytes, done=0,
                                            objects=self.objects)
        return self

    def advance(self, size: int) -> None:
        """One more object of ``size`` bytes is complete."""
        self.done += 1
        self.bytes += size
        if self._bar is not None:
            self._bar.update(self._task, advance=size, done=self.done)
        if self.done % self._step == 0 or self.done == self.objects:
            seconds = max(time.perf_counter() - self.began, 1e-9)
            self.log.info("%s %d/%d objects, %s of %s (%s/s)", self.verb, self.done,
                          self.objects, _megabytes(self.bytes), _megabytes(self.total_bytes),
                          _megabytes(self.bytes / seconds))

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.__exit__(kind, error, trace)
