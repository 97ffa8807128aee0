"""Polling ``s3://`` datasets: "retrain when new images land".

Every ``MLPIPE_DATASET_POLL_S`` seconds each ``s3://`` dataset some DAG is scheduled on is
listed (key -> ETag, size) through the connection its ``extra["aws_conn_id"]`` names
(default ``aws_default``). Listings run on a small thread pool, never on the scheduler
loop; the loop applies finished ones (``DatasetRepository.apply_listing``: the diff against
the stored listing and at most one event, in one transaction). The first listing ever of a
dataset is a baseline: stored, no event.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from mlpipe.core.datasets import Dataset
from mlpipe.errors import MlpipeError
from mlpipe.store.metadata_store import MetadataStore
from mlpipe.store.repositories.datasets import ListingChange

__all__ = ["MAX_KEYS_IN_EVENT", "MAX_LISTED_KEYS", "DatasetPoller", "list_s3_dataset"]

log = logging.getLogger("mlpipe.scheduler")

#: keys of each kind (added, changed, deleted) an event lists; the counts say the rest
MAX_KEYS_IN_EVENT = 1000
#: a prefix with more objects than this is not polled (one clear error instead)
MAX_LISTED_KEYS = 1_000_000
#: how often the loop looks for a finished listing while one runs
_PENDING_CHECK_S = 0.02


def list_s3_dataset(dataset: Dataset, clients: dict[str, Any]) -> dict[str, tuple[str, int]]:
    """Every object under the dataset's prefix: ``key -> (ETag, size)``.

    ``clients`` caches one boto3 client per connection id (clients are thread-safe).
    """
    from mlpipe.hooks.s3 import S3Hook
    from mlpipe.s3.urls import split_s3_uri

    bucket, prefix = split_s3_uri(dataset.uri, what="dataset")
    client = clients.get(dataset.aws_conn_id)
    if client is None:
        client = clients[dataset.aws_conn_id] = S3Hook(dataset.aws_conn_id).get_conn()
    found: dict[str, tuple[str, int]] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            found[item["Key"]] = (str(item.get("ETag", "")).strip('"'), int(item["Size"]))
        if len(found) > MAX_LISTED_KEYS:
            raise MlpipeError(f"more than {MAX_LISTED_KEYS} objects under {dataset.uri}; "
                             "schedule on a narrower prefix")
    return found


def _reason(exc: BaseException) -> str:
    from mlpipe.s3.errors import describe, is_boto_error

    if is_boto_error(exc):
        return describe(exc).reason
    return " ".join(str(exc).split()) or type(exc).__name__


class DatasetPoller:
    """Lists the polled datasets on a thread pool when due; the loop applies the results."""

    def __init__(self, interval: float, *, workers: int = 2,
                 max_keys_in_event: int = MAX_KEYS_IN_EVENT) -> None:
        self.interval = interval
        self.max_keys_in_event = max_keys_in_event
        self._targets: dict[str, Dataset] = {}
        self._next: dict[str, float] = {}
        self._pending: dict[str, tuple[Future[dict[str, tuple[str, int]]], datetime]] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._workers = workers
        self._clients: dict[str, Any] = {}
        self._errors: dict[str, str] = {}

    def set_targets(self, datasets: Mapping[str, Dataset]) -> None:
        """Poll these datasets (the ``s3://`` ones) from now on."""
        self._targets = {u: d for u, d in datasets.items() if d.scheme == "s3"}
        for uri in [u for u in self._next if u not in self._targets]:
            del self._next[uri]

    def start_due(self, clock: float | None = None) -> None:
        """Submit a listing of every target that is due and not being listed."""
        clock = time.monotonic() if clock is None else clock
        for uri, dataset in self._targets.items():
            if uri in self._pending or self._next.get(uri, 0.0) > clock:
                continue
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._workers,
                                                thread_name_prefix="mlpipe-dataset-poll")
            self._next[uri] = clock + self.interval
            started = datetime.now(UTC)  # before the listing: a later applied one wins
            self._pending[uri] = (self._pool.submit(list_s3_dataset, dataset, self._clients),
                                  started)

    def apply_finished(self, store: MetadataStore) -> dict[str, ListingChange]:
        """Apply every finished listing; returns the changes that made an event."""
        changed: dict[str, ListingChange] = {}
        for uri, (future, started) in list(self._pending.items()):
            if not future.done():
                continue
            del self._pending[uri]
            dataset = self._targets.get(uri)
            if dataset is None:
                continue  # no DAG consumes it any more
            try:
                listing = future.result()
            except Exception as exc:
                self._clients.pop(dataset.aws_conn_id, None)  # a new client next time
                self._report(uri, f"cannot list it: {_reason(exc)}")
                continue
            try:
                change = store.apply_listing(uri, dataset.extra, listing, listed_at=started,
                                             max_keys=self.max_keys_in_event)
            except MlpipeError as exc:
                self._report(uri, f"cannot store its listing: {exc}")
                continue
            self._errors.pop(uri, None)
            if change is not None and change.baseline:
                log.info("dataset %s: first listing (%d objects) stored as the baseline",
                         uri, len(listing))
            elif change:
                log.info("dataset %s changed: %d added, %d changed, %d deleted", uri,
                         len(change.added), len(change.changed), len(change.deleted))
                changed[uri] = change
        return changed

    def wait_time(self, clock: float | None = None) -> float | None:
        """Seconds until the loop has polling work (None: nothing to poll)."""
        if self._pending:
            return _PENDING_CHECK_S
        if not self._targets:
            return None
        clock = time.monotonic() if clock is None else clock
        return max(0.0, min(self._next.get(u, 0.0) for u in self._targets) - clock)

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _report(self, uri: str, message: str) -> None:
        """Log a failure once until it changes or the dataset lists again."""
        if self._errors.get(uri) != message:
            log.warning("dataset %s: %s (retrying every %g s)", uri, message, self.interval)
            self._errors[uri] = message
