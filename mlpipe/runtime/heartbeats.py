"""Heartbeats of running tries: one daemon thread per process marks each of them alive.

A try registers on start and unregisters on end. Starting a thread per try cost ~0.5 ms
on the 2-core machines here, most of an in-process try's overhead; the one thread waits
while nothing is registered. A forked child starts with an empty registry and a thread of
its own on first use (``os.register_at_fork``), never with a lock its parent held.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlpipe.store.entities import TIKey
    from mlpipe.store.protocols import TryStore

log = logging.getLogger("mlpipe.task")

#: heartbeats per lease: a try beats every lease/6 (``MLPIPE_TASK_LEASE_S``)
LEASE_BEATS = 6


@dataclass(slots=True)
class _Beat:
    store: TryStore
    key: TIKey
    interval: float
    on_lost: Callable[[], None] | None
    due: float
    #: when a beat last reached the database
    ok_at: float


class Heartbeats:
    """The registry of running tries and the thread that beats them."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._beats: dict[int, _Beat] = {}
        self._tokens = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, store: TryStore, key: TIKey, interval: float,
            on_lost: Callable[[], None] | None = None) -> int:
        """Beat ``key`` every ``interval`` seconds until ``remove``; a token for that."""
        with self._lock:
            token = next(self._tokens)
            now = time.monotonic()
            self._beats[token] = _Beat(store, key, interval, on_lost, now + interval, now)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="mlpipe-heartbeat",
                                                daemon=True)
                self._thread.start()
            self._changed.notify()
        return token

    def remove(self, token: int) -> None:
        with self._lock:
            self._beats.pop(token, None)

    def _due(self) -> list[tuple[int, _Beat]]:
        """Wait for the next beat that is due; those due now, with their next time set."""
        with self._lock:
            while True:
                now = time.monotonic()
                due = [(t, b) for t, b in self._beats.items() if b.due <= now]
                if due:
                    for _, beat in due:
                        beat.due = now + beat.interval
                    return due
                first = min((b.due for b in self._beats.values()), default=None)
                self._changed.wait(None if first is None else first - now)

    def _run(self) -> None:
        pid = os.getpid()
        while True:
            for token, beat in self._due():
                try:
                    alive = beat.store.heartbeat(beat.key, pid)
                    beat.ok_at = time.monotonic()
                except Exception:  # the database may be busy: try again next beat
                    log.warning("heartbeat of %s failed", beat.key, exc_info=True)
                    # a lease (six beats) without one reaching the database: others may
                    # already have declared this try lost, so it must not go on
                    alive = time.monotonic() - beat.ok_at <= beat.interval * LEASE_BEATS
                    if alive:
                        continue
                with self._lock:
                    lost = not alive and self._beats.pop(token, None) is not None
                if lost:
                    log.error("%s is no longer running in the metadata database; stopping",
                              beat.key)
                    if beat.on_lost is not None:
                        beat.on_lost()


HEARTBEATS = Heartbeats()
os.register_at_fork(after_in_child=HEARTBEATS._reset)
