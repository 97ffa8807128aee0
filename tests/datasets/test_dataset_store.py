"""The dataset tables on SQLite and PostgreSQL: events, references, the trigger decision
and S3 listings, including two schedulers deciding at once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from mlpipe import DAG, Dataset
from mlpipe.operators import EmptyOperator
from mlpipe.scheduler.dataset_triggers import (
    create_dataset_runs,
    record_dataset_references,
    triggering_conf,
)
from mlpipe.store.metadata_store import MetadataStore

A = "s3://bucket/a/"
B = "s3://bucket/b/"


def _consumer(dag_id: str = "consumer", schedule: Any = None) -> DAG:
    with DAG(dag_id, schedule=schedule or [Dataset(A), Dataset(B)]) as dag:
        EmptyOperator(task_id="t")
    return dag


def _producer() -> DAG:
    with DAG("producer") as dag:
        EmptyOperator(task_id="write_a", outlets=[Dataset(A)])
    return dag


def test_references_are_listed_with_producers_consumers_and_last_update(
        store: MetadataStore) -> None:
    record_dataset_references(store, [_consumer(), _producer()])
    store.record_dataset_events({A: {}}, source=("producer", "write_a", "r1", -1))

    listed = {d.uri: d for d in store.list_datasets()}
    assert set(listed) == {A, B}
    assert listed[A].producing_tasks == ["producer.write_a"]
    assert listed[A].consuming_dags == ["consumer"] == listed[B].consuming_dags
    assert listed[A].events == 1 and listed[A].last_update is not None
    assert listed[A].last_update.tzinfo is not None
    assert listed[B].events == 0 and listed[B].last_update is None


def test_all_datasets_must_be_updated_and_each_change_set_makes_one_run(
        store: MetadataStore) -> None:
    dag = _consumer()
    record_dataset_references(store, [dag])
    store.record_dataset_events({A: {}})
    assert create_dataset_runs(store, [dag], set()) == []  # B not yet
    store.record_dataset_events({B: {}})
    [run] = create_dataset_runs(store, [dag], set())
    assert run.run_type == "dataset_triggered"
    assert [e["uri"] for e in run.conf["triggering_dataset_events"]] == [A, B]
    assert create_dataset_runs(store, [dag], set()) == []  # the same events: no second run
    assert [r.run_id for r in store.list_runs("consumer")] == [run.run_id]


def test_any_needs_one_and_a_paused_dag_keeps_its_events(store: MetadataStore) -> None:
    dag = _consumer("either", Dataset(A) | Dataset(B))
    record_dataset_references(store, [dag])
    store.record_dataset_events({B: {}})
    assert create_dataset_runs(store, [dag], {"either"}) == []
    [run] = create_dataset_runs(store, [dag], set())
    assert [e["uri"] for e in run.conf["triggering_dataset_events"]] == [B]


def test_events_from_before_a_consumer_existed_do_not_trigger_it(
        store: MetadataStore) -> None:
    store.record_dataset_events({A: {}, B: {}})
    dag = _consumer()
    record_dataset_references(store, [dag])
    assert create_dataset_runs(store, [dag], set()) == []


def test_two_schedulers_deciding_at_once_create_one_run(store_url: str,
                                                        store: MetadataStore) -> None:
    dag = _consumer()
    record_dataset_references(store, [dag])
    store.record_dataset_events({A: {}, B: {}})
    others = [MetadataStore.open(store_url) for _ in range(4)]
    start = threading.Barrier(len(others))
    made: list[int] = []

    def decide(own: MetadataStore, n: int) -> None:
        start.wait()
        when = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=n)  # distinct run ids
        made.append(len(create_dataset_runs(own, [dag], set(), now=when)))

    threads = [threading.Thread(target=decide, args=(s, i)) for i, s in enumerate(others)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for other in others:
        other.dispose()
    assert sorted(made) == [0, 0, 0, 1]
    assert len(store.list_runs("consumer")) == 1


def test_a_listing_is_a_baseline_first_then_one_event_per_change(
        store: MetadataStore) -> None:
    t0 = datetime.now(UTC)
    first = store.apply_listing(A, {}, {"a/1.png": ("e1", 10)}, listed_at=t0)
    assert first is not None and first.baseline and store.dataset_events(A) == []
    same = store.apply_listing(A, {}, {"a/1.png": ("e1", 10)}, listed_at=t0 + timedelta(1))
    assert same is not None and not same and store.dataset_events(A) == []
    change = store.apply_listing(
        A, {}, {"a/1.png": ("e9", 10), "a/2.png": ("e2", 5), "a/3.png": ("e3", 5)},
        listed_at=t0 + timedelta(2), max_keys=1)
    assert change is not None and change.added == ["a/2.png", "a/3.png"]
    [event] = store.dataset_events(A)
    assert event.extra["keys_added"] == ["a/2.png"]  # bounded: the counts say the rest
    assert event.extra["keys_changed"] == ["a/1.png"]
    assert event.extra["counts"] == {"added": 2, "changed": 1, "deleted": 0}
    assert event.extra["truncated"] is True
    gone = store.apply_listing(A, {}, {"a/2.png": ("e2", 5)}, listed_at=t0 + timedelta(3))
    assert gone is not None and gone.deleted == ["a/1.png", "a/3.png"]
    assert store.stored_listing(A) == {"a/2.png": ("e2", 5)}
    assert len(store.dataset_events(A)) == 2


def test_a_stale_listing_is_dropped(store: MetadataStore) -> None:
    t0 = datetime.now(UTC)
    store.apply_listing(A, {}, {}, listed_at=t0)
    store.apply_listing(A, {}, {"a/new.png": ("e", 1)}, listed_at=t0 + timedelta(seconds=2))
    # a slower scheduler's listing begun before the new object landed
    assert store.apply_listing(A, {}, {}, listed_at=t0 + timedelta(seconds=1)) is None
    assert store.stored_listing(A) == {"a/new.png": ("e", 1)}
    assert len(store.dataset_events(A)) == 1


def test_the_conf_lists_each_event_with_its_keys() -> None:
    from mlpipe.store.entities import DatasetEventRecord

    at = datetime(2026, 1, 1, tzinfo=UTC)
    events = [DatasetEventRecord(i, A, {"keys_added": [f"a/{i}"], "counts": {
        "added": 1, "changed": 0, "deleted": 0}}, None, None, None, -1, at)
        for i in range(1, 103)]
    conf = triggering_conf(events)
    assert len(conf["triggering_dataset_events"]) == 100
    assert conf["triggering_dataset_event_count"] == 102
    first = conf["triggering_dataset_events"][0]
    assert first == {"uri": A, "event_id": 3, "timestamp": at.isoformat(),
                     "source_dag_id": None, "source_task_id": None, "source_run_id": None,
                     "keys_added": ["a/3"], "keys_changed": [], "keys_deleted": [],
                     "counts": {"added": 1, "changed": 0, "deleted": 0}, "truncated": False}


def test_two_schedulers_applying_the_same_change_record_one_event(
        store_url: str, store: MetadataStore) -> None:
    t0 = datetime.now(UTC)
    store.apply_listing(A, {}, {}, listed_at=t0)
    others = [MetadataStore.open(store_url) for _ in range(4)]
    start = threading.Barrier(len(others))
    listing = {"a/new.png": ("e", 1)}

    def apply(own: MetadataStore, n: int) -> None:
        start.wait()
        own.apply_listing(A, {}, listing, listed_at=t0 + timedelta(seconds=1 + n))

    threads = [threading.Thread(target=apply, args=(s, i)) for i, s in enumerate(others)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for other in others:
        other.dispose()
    assert len(store.dataset_events(A)) == 1
    assert store.stored_listing(A) == listing


def test_a_removed_dag_loses_its_references(store: MetadataStore) -> None:
    record_dataset_references(store, [_consumer(), _producer()])
    record_dataset_references(store, [_producer()], removed=["consumer"])
    listed = {d.uri: d for d in store.list_datasets()}
    assert listed[A].consuming_dags == [] and listed[A].producing_tasks == ["producer.write_a"]
