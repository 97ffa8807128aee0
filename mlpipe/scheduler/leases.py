"""A command's hold on the runs it drives: a short lease, renewed while it is alive.

``mlpipe dags trigger --wait`` and ``dags backfill`` drive runs themselves. They lease them
for ``MLPIPE_TASK_LEASE_S`` and renew the lease from a daemon thread every third of it, so a
scheduler leaves those runs alone while the command lives. If the command dies (SIGKILL,
SIGTERM, a task calling ``os._exit`` under the sequential executor), renewals stop: within
one lease a scheduler takes the runs over, finds their task instances whose heartbeat
stopped, retries or fails them, and the runs end normally.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterable
from datetime import timedelta
from types import TracebackType

from mlpipe.store.metadata_store import MetadataStore

log = logging.getLogger("mlpipe.scheduler")


def command_holder() -> str:
    """The lease holder name of this process: ``cli:<host>-<pid>``."""
    return f"cli:{socket.gethostname()}-{os.getpid()}"


class RunLease:
    """Leases ``runs`` for this process on enter, renews them, releases them on exit."""

    def __init__(self, store: MetadataStore, runs: Iterable[tuple[str, str]], *,
                 lease: timedelta, holder: str | None = None) -> None:
        self.store = store
        self.runs = list(runs)
        self.lease = lease
        self.holder = holder or command_holder()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> RunLease:
        # A live scheduler that holds a run keeps it: we drive it too (claims stay safe).
        for dag_id, run_id in self.runs:
            self.store.lease_run(self.holder, dag_id, run_id, self.lease)
        self._thread = threading.Thread(target=self._renew, name="mlpipe-run-lease",
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.store.release_runs(self.holder, self.runs)

    def _renew(self) -> None:
        every = self.lease.total_seconds() / 3
        while not self._stop.wait(every):
            try:
                self.store.renew_leases(self.holder, self.lease)
            except Exception:  # the database may be busy: the next renewal tries again
                log.warning("renewing the lease of %s failed", self.runs, exc_info=True)
