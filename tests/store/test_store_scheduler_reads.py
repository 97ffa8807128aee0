"""What the scheduler reads every tick, kept small for 1,000 DAGs (benchmarks/scheduler_scale)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from mlpipe.store.entities import DagRunRecord
from mlpipe.store.metadata_store import MetadataStore


def test_paused_dag_ids_are_only_the_paused_ones(store: MetadataStore) -> None:
    store.sync_dags({"a": "a.py", "b": "b.py", "c": "c.py"}, paused_on_creation=False)
    assert store.paused_dag_ids() == set()

    store.set_paused("b", True)
    store.set_paused("never_parsed", True)

    assert store.paused_dag_ids() == {"b", "never_parsed"}
    store.set_paused("b", False)
    assert store.paused_dag_ids() == {"never_parsed"}


def test_claim_runs_with_nothing_active_takes_nothing_then_takes_a_new_run(
        store: MetadataStore, make_run: Callable[..., DagRunRecord]) -> None:
    lease = timedelta(seconds=30)
    make_run("etl", "done", state="success")
    assert store.claim_runs("s1", lease, dag_ids=["etl"]) == []

    make_run("etl", "fresh")

    assert [r.run_id for r in store.claim_runs("s1", lease, dag_ids=["etl"])] == ["fresh"]
    assert store.claim_runs("s2", lease, dag_ids=["etl"]) == []  # s1 holds it
    assert store.claim_runs("s1", lease, dag_ids=["other"]) == []  # not one of its DAGs
