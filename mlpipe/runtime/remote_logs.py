"""Remote copies of try logs (``MLPIPE_REMOTE_LOG_URI``): readable from any machine.

The try's process copies its log to ``<uri>/dag_id=../run_id=../task_id=..[/map_index=N]/
attempt=N.log`` (the same layout as the local log root) every ``interval`` seconds while
it runs and once more when it ends. Each copy replaces the previous one whole (the artifact
store writes atomically), so a reader sees the log as of the last copy, never half a file.
``mlpipe tasks logs`` reads the remote copy when the local file is not there (the try ran
on another machine, or its worker's home is gone).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

from mlpipe.runtime.log_paths import log_folder
from mlpipe.store.entities import TIKey

__all__ = ["read_remote_log", "remote_log_uri", "shipping_log"]

log = logging.getLogger("mlpipe.task")

#: seconds between two partial copies of a running try's log
SHIP_INTERVAL = 10.0
#: the most of a remote log that is shown (the end of a longer one)
MAX_READ_BYTES = 64 * 1024 * 1024


def remote_log_uri(root: str, key: TIKey, try_number: int) -> str:
    """Where try ``try_number`` of ``key`` is copied under ``root``."""
    if try_number < 1:
        raise ValueError(f"try_number {try_number} is not a try (tries count from 1)")
    return f"{log_folder(root.rstrip('/'), key)}/attempt={try_number}.log"


def _ship(path: Path, uri: str) -> None:
    from mlpipe.artifacts import open_store

    try:
        data = path.read_bytes()
        open_store(uri).write_bytes(uri, data)
    except Exception as exc:  # a copy that fails must never fail the try
        log.warning("could not copy the log to %s: %s", uri, exc)


@contextlib.contextmanager
def shipping_log(root: str | None, key: TIKey, try_number: int, path: Path, *,
                 interval: float = SHIP_INTERVAL) -> Iterator[None]:
    """Copy the log at ``path`` to ``root`` every ``interval`` s while the block runs, and
    once at its end; does nothing when ``root`` is None."""
    if not root:
        yield
        return
    uri = remote_log_uri(root, key, try_number)
    stop = threading.Event()

    def partial_copies() -> None:
        while not stop.wait(interval):
            _ship(path, uri)

    thread = threading.Thread(target=partial_copies, name="mlpipe-log-ship", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        _ship(path, uri)


def read_remote_log(root: str, key: TIKey, try_number: int) -> str | None:
    """The remote copy of a try's log (None when there is none)."""
    from mlpipe.artifacts import open_store
    from mlpipe.errors import ArtifactNotFoundError

    uri = remote_log_uri(root, key, try_number)
    store = open_store(uri)
    try:
        data = store.read_bytes(uri)
    except (ArtifactNotFoundError, FileNotFoundError):
        return None
    if len(data) > MAX_READ_BYTES:
        data = b"[... earlier lines not shown]\n" + data[-MAX_READ_BYTES:]
    return data.decode(errors="replace")
