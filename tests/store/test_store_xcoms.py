"""The store's contract for XComs and for recording the end of a try, on every backend."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import IntegrityError

from mlpipe.errors import StoreError
from mlpipe.store.entities import DagRunRecord, TIKey
from mlpipe.store.metadata_store import MetadataStore

Move = Callable[..., None]
ENDED = datetime(2024, 6, 1, 12, 0, 1, 999999, tzinfo=UTC)


def key(task_id: str, map_index: int = -1) -> TIKey:
    return TIKey("etl", "manual__1", task_id, map_index)


def state_of(store: MetadataStore, ti: TIKey) -> str:
    record = store.get_ti(ti)
    assert record is not None, f"no task instance {ti}"
    return record.state


def xcoms(store: MetadataStore, task_id: str, name: str = "return_value") -> dict[int, str]:
    return store.get_xcoms("etl", "manual__1", task_id, name)


@pytest.fixture
def running(store: MetadataStore, run: DagRunRecord, move: Move) -> TIKey:
    """``extract``, claimed for its first try."""
    move(key("extract"), "queued")
    assert store.claim(key("extract"), pid=1)
    return key("extract")


# -- push, get, clear --------------------------------------------------------------------------


def test_push_xcoms_then_get_them_by_map_index(store: MetadataStore, run: DagRunRecord) -> None:
    store.push_xcoms(key("extract"), {"return_value": '{"rows": 3}', "path": '"/tmp/x"'})
    for i in (2, 0, 1):
        store.push_xcoms(key("fan", i), {"return_value": str(i * 10)})

    assert xcoms(store, "extract") == {-1: '{"rows": 3}'}
    assert xcoms(store, "extract", "path") == {-1: '"/tmp/x"'}
    assert xcoms(store, "fan") == {0: "0", 1: "10", 2: "20"}
    assert store.get_xcoms("etl", "manual__1", "fan", "return_value", [2, 0, 7]) == {
        0: "0", 2: "20"}
    assert store.get_xcoms("etl", "manual__1", "fan", "return_value", []) == {}
    assert xcoms(store, "fan", "missing") == {}
    assert xcoms(store, "load") == {}


def test_push_xcoms_replaces_the_keys_it_names_only(store: MetadataStore,
                                                    run: DagRunRecord) -> None:
    store.push_xcoms(key("extract"), {"a": "1", "b": "2"})

    store.push_xcoms(key("extract"), {"a": "10", "c": "3"})
    store.push_xcoms(key("extract"), {})

    assert [xcoms(store, "extract", k) for k in "abc"] == [{-1: "10"}, {-1: "2"}, {-1: "3"}]


def test_xcom_values_round_trip_unchanged(store: MetadataStore, run: DagRunRecord) -> None:
    value = '{"text": "naïve ✓ \\u0000", "big": ' + "9" * 5000 + "}\n\t"

    store.push_xcoms(key("extract"), {"return_value": value, "": "empty key", "k": ""})

    assert xcoms(store, "extract") == {-1: value}
    assert xcoms(store, "extract", "") == {-1: "empty key"}
    assert xcoms(store, "extract", "k") == {-1: ""}


def test_clear_xcoms_clears_one_instance_only(store: MetadataStore, run: DagRunRecord,
                                              make_run: Callable[..., DagRunRecord]) -> None:
    make_run("etl", "other")
    for ti in (key("fan", 0), key("fan", 1), TIKey("etl", "other", "fan", 0)):
        store.push_xcoms(ti, {"return_value": "v", "extra": "e"})

    store.clear_xcoms(key("fan", 0))

    assert xcoms(store, "fan") == {1: "v"}
    assert xcoms(store, "fan", "extra") == {1: "e"}
    assert store.get_xcoms("etl", "other", "fan", "return_value") == {0: "v"}


# -- finish_try --------------------------------------------------------------------------------


def test_finish_try_records_the_state_the_values_and_the_xcoms(store: MetadataStore,
                                                               running: TIKey) -> None:
    assert store.finish_try(running, to_state="success",
                            xcoms={"return_value": "42", "rows": "3"},
                            end_date=ENDED, duration=1.25, next_retry_at=None, error=None)

    ti = store.get_ti(running)
    assert ti is not None
    assert (ti.state, ti.end_date, ti.duration, ti.try_number) == ("success", ENDED, 1.25, 1)
    assert (xcoms(store, "extract"), xcoms(store, "extract", "rows")) == ({-1: "42"}, {-1: "3"})
    last = store.transitions("etl", "manual__1")[-1]
    assert (last.from_state, last.to_state, last.try_number) == ("running", "success", 1)


def test_finish_try_of_a_failure_stores_the_error(store: MetadataStore, running: TIKey) -> None:
    assert store.finish_try(running, to_state="failed", xcoms={}, error="ValueError: bad")

    ti = store.get_ti(running)
    assert ti is not None and (ti.state, ti.error) == ("failed", "ValueError: bad")
    assert xcoms(store, "extract") == {}


@pytest.mark.parametrize("state", ["none", "queued", "success", "failed"])
def test_finish_try_refuses_an_instance_that_is_not_running(store: MetadataStore,
                                                            run: DagRunRecord, move: Move,
                                                            state: str) -> None:
    if state != "none":
        move(key("extract"), state)
    before = store.transitions("etl", "manual__1")

    assert not store.finish_try(key("extract"), to_state="success",
                                xcoms={"return_value": "1"}, end_date=ENDED)

    assert state_of(store, key("extract")) == state
    assert xcoms(store, "extract") == {}
    assert store.transitions("etl", "manual__1") == before


def test_finish_try_after_the_instance_was_taken_away_records_nothing(
        store: MetadataStore, running: TIKey, move: Move) -> None:
    move(running, "up_for_retry")  # e.g. the scheduler found its heartbeat stale

    assert not store.finish_try(running, to_state="success", xcoms={"return_value": "late"})

    assert xcoms(store, "extract") == {}


def test_finish_try_is_all_or_nothing(store: MetadataStore, running: TIKey) -> None:
    # A NULL value violates NOT NULL on the last statement of the transaction.
    with pytest.raises((StoreError, IntegrityError)):
        store.finish_try(running, to_state="success",
                         xcoms={"return_value": "1", "bad": None},  # type: ignore[dict-item]
                         end_date=ENDED)

    ti = store.get_ti(running)
    assert ti is not None and (ti.state, ti.end_date) == ("running", None)
    assert xcoms(store, "extract") == {}
    assert store.transitions("etl", "manual__1")[-1].to_state == "running"


def test_finish_try_keeps_the_returned_value_over_one_pushed_during_the_try(
        store: MetadataStore, running: TIKey) -> None:
    # A task may call ti.xcom_push("metrics", ...) and also return {"metrics": ...} with
    # multiple_outputs: the push goes through push_xcoms while the instance runs.
    store.push_xcoms(running, {"metrics": "pushed", "other": "kept"})

    assert store.finish_try(running, to_state="success",
                            xcoms={"metrics": "returned", "return_value": "{}"})

    assert xcoms(store, "extract", "metrics") == {-1: "returned"}
    assert xcoms(store, "extract", "other") == {-1: "kept"}
    assert state_of(store, running) == "success"
