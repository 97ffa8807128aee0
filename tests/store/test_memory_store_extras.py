"""``MemoryStore`` beyond the adopted SQL suites: its signatures, undo, queueing gates."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime

import pytest

from mlpipe.errors import StoreError
from mlpipe.store import protocols
from mlpipe.store.entities import DagRunRecord, TIKey
from mlpipe.store.memory import MemoryStore

WHEN = datetime(2024, 1, 1, tzinfo=UTC)


def _members(proto: type) -> dict[str, object]:
    return {name: value for name, value in vars(proto).items()
            if callable(value) and not name.startswith("_")}


@pytest.mark.parametrize("proto", [protocols.TryStore, protocols.DriverStore],
                         ids=lambda p: p.__name__)
def test_every_driver_protocol_method_exists_with_the_same_parameters(proto: type) -> None:
    for name, declared in _members(proto).items():
        implemented = getattr(MemoryStore, name, None)
        assert implemented is not None, f"MemoryStore lacks {proto.__name__}.{name}"
        want = [(p.name, p.kind, p.default)
                for p in inspect.signature(declared).parameters.values()]  # type: ignore[arg-type]
        have = [(p.name, p.kind, p.default)
                for p in inspect.signature(implemented).parameters.values()]
        assert have == want, f"{name}: {have} != {want}"


@pytest.fixture
def store() -> MemoryStore:
    store = MemoryStore()
    record = DagRunRecord("etl", "r1", "manual", WHEN, WHEN, WHEN, {}, "queued", WHEN, None,
                          None)
    store.create_run(record, [("a", -1, "PythonOperator", 0, "small"), ("b", -1, "X", 0),
                              ("c", -1, "X", 0)])
    return store


def key(task_id: str) -> TIKey:
    return TIKey("etl", "r1", task_id, -1)


def test_a_transaction_that_raises_leaves_every_write_undone(store: MemoryStore) -> None:
    with pytest.raises(RuntimeError, match="boom"), store.transaction():
        assert store.transition(key("b"), ["none"], "queued")
        assert store.claim(key("b"), pid=7)
        store.push_xcoms(key("b"), {"return_value": "1"})
        store.end_run("etl", "r1", "failed", WHEN)
        raise RuntimeError("boom")

    ti = store.get_ti(key("b"))
    assert ti is not None and (ti.state, ti.try_number, ti.pid) == ("none", 0, None)
    assert store.get_xcoms("etl", "r1", "b", "return_value") == {}
    assert store.transitions("etl", "r1") == []
    assert store.get_run("etl", "r1").state == "queued"


def test_queue_answers_for_pools_and_the_dag_limit(store: MemoryStore) -> None:
    assert store.queue(key("a"), ["none"], pool="small") == "no_pool"
    store._pools["small"] = 1  # dag.test() has no pools; the gate still answers as in SQL
    assert store.queue(key("a"), ["none"], pool="small") == "queued"
    assert store.queue(key("b"), ["none"], pool="small") == "pool_full"
    assert store.queue(key("b"), ["none"], dag_limit=1) == "dag_full"
    assert store.queue(key("b"), ["none"], dag_limit=2) == "queued"
    assert store.queue(key("b"), ["none"]) == "moved"


def test_an_xcom_that_is_not_text_is_refused_naming_it(store: MemoryStore) -> None:
    with pytest.raises(StoreError, match="XCom 'bad' of etl/r1/b is int"):
        store.push_xcoms(key("b"), {"bad": 1})  # type: ignore[dict-item]
    assert store.get_xcoms("etl", "r1", "b", "bad") == {}
