"""``DatasetPoller`` against a real S3 endpoint: listings off the loop, applied on it,
failures logged once and retried, never raised into the scheduler."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from mlpipe import Dataset
from mlpipe.scheduler.dataset_polling import DatasetPoller
from mlpipe.store.metadata_store import MetadataStore


def _drain(poller: DatasetPoller, store: MetadataStore) -> dict[str, Any]:
    """Start the due listings and apply them once they finish (bounded wait)."""
    poller.start_due(clock=float("inf"))
    deadline = time.monotonic() + 20
    changed: dict[str, Any] = {}
    while poller._pending:
        assert time.monotonic() < deadline, "listing did not finish"
        changed.update(poller.apply_finished(store))
        time.sleep(0.01)
    return changed


@pytest.fixture
def sqlite_store(tmp_path: Any) -> Any:
    opened = MetadataStore.open(f"sqlite:///{tmp_path / 'm.db'}")
    yield opened
    opened.dispose()


def test_a_prefix_is_a_baseline_then_changes_make_events(
        monkeypatch: pytest.MonkeyPatch, aws_conn_uri: str, bucket: str, s3_client: Any,
        sqlite_store: MetadataStore) -> None:
    monkeypatch.setenv("MLPIPE_CONN_MINIO", aws_conn_uri)
    uri = f"s3://{bucket}/images/"
    s3_client.put_object(Bucket=bucket, Key="images/old.png", Body=b"1")
    s3_client.put_object(Bucket=bucket, Key="elsewhere/x.png", Body=b"1")
    poller = DatasetPoller(60)
    poller.set_targets({uri: Dataset(uri, extra={"aws_conn_id": "minio"}),
                        "file:///x": Dataset("file:///x")})  # only s3:// is polled
    assert _drain(poller, sqlite_store) == {}  # the baseline
    assert sqlite_store.stored_listing(uri).keys() == {"images/old.png"}
    assert poller.wait_time(clock=time.monotonic()) > 50  # next poll in a minute

    s3_client.put_object(Bucket=bucket, Key="images/new.png", Body=b"2")
    s3_client.put_object(Bucket=bucket, Key="images/old.png", Body=b"changed")
    change = _drain(poller, sqlite_store)[uri]
    assert (change.added, change.changed, change.deleted) == (["images/new.png"],
                                                              ["images/old.png"], [])
    assert _drain(poller, sqlite_store) == {}  # nothing new: no event
    assert len(sqlite_store.dataset_events(uri)) == 1
    poller.shutdown()


def test_a_listing_failure_is_logged_once_and_retried(
        monkeypatch: pytest.MonkeyPatch, aws_conn_uri: str, sqlite_store: MetadataStore,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("MLPIPE_CONN_AWS_DEFAULT", aws_conn_uri)
    uri = "s3://no-such-bucket-here/images/"
    poller = DatasetPoller(60)
    poller.set_targets({uri: Dataset(uri)})
    with caplog.at_level(logging.WARNING, logger="mlpipe.scheduler"):
        assert _drain(poller, sqlite_store) == {}
        assert _drain(poller, sqlite_store) == {}
    warnings = [r.getMessage() for r in caplog.records if "cannot list it" in r.getMessage()]
    assert len(warnings) == 1 and "NoSuchBucket" in warnings[0] and uri in warnings[0]
    assert sqlite_store.stored_listing(uri) == {}


def test_an_unknown_connection_is_a_logged_failure_not_a_crash(
        sqlite_store: MetadataStore, caplog: pytest.LogCaptureFixture) -> None:
    uri = "s3://bucket/images/"
    poller = DatasetPoller(60)
    poller.set_targets({uri: Dataset(uri, extra={"aws_conn_id": "nope"})})
    with caplog.at_level(logging.WARNING, logger="mlpipe.scheduler"):
        _drain(poller, sqlite_store)
    assert any("'nope'" in r.getMessage() for r in caplog.records)
    poller.shutdown()
