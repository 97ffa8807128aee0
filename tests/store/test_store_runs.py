"""The store's contract for DAGs, import errors and DAG runs, on every backend."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from mlpipe import DAG
from mlpipe.errors import RunExistsError, RunNotFoundError
from mlpipe.operators import EmptyOperator
from mlpipe.scheduler.runs import create_dag_run
from mlpipe.store.entities import DagRunRecord, TIKey
from mlpipe.store.metadata_store import MetadataStore

MakeRun = Callable[..., DagRunRecord]

LOGICAL_DATE = datetime(2024, 1, 31, 2, 0, 0, 123456, tzinfo=UTC)


def assert_utc(value: datetime | None, expected: datetime) -> None:
    """``value`` is aware, in UTC itself (not just any zone) and the same instant."""
    assert value is not None
    assert value.utcoffset() == timedelta(0)
    assert value == expected  # the same instant, to the microsecond


# -- DAGs and import errors ----------------------------------------------------------------


def test_sync_dags_adds_new_dags_sorted_by_id(store: MetadataStore) -> None:
    store.sync_dags({"train": "dags/train.py", "etl": "dags/etl.py"}, paused_on_creation=True)

    dags = store.list_dags()

    assert [(d.dag_id, d.fileloc, d.is_paused) for d in dags] == [
        ("etl", "dags/etl.py", True), ("train", "dags/train.py", True)]
    assert all(d.last_parsed_at is not None and d.last_parsed_at.utcoffset() == timedelta(0)
               for d in dags)


def test_sync_dags_updates_the_file_but_keeps_the_pause_flag(store: MetadataStore) -> None:
    store.sync_dags({"etl": "old.py"})
    store.set_paused("etl", True)
    first = store.get_dag("etl")

    store.sync_dags({"etl": "new.py"}, paused_on_creation=False)

    dag = store.get_dag("etl")
    assert dag is not None and first is not None
    assert (dag.fileloc, dag.is_paused) == ("new.py", True)
    assert first.last_parsed_at is not None and dag.last_parsed_at is not None
    assert dag.last_parsed_at >= first.last_parsed_at


def test_set_paused_toggles_and_creates_unknown_dags(store: MetadataStore) -> None:
    store.set_paused("never_parsed", True)
    store.sync_dags({"etl": "etl.py"})
    store.set_paused("etl", True)
    store.set_paused("etl", False)

    assert [(d.dag_id, d.is_paused, d.fileloc) for d in store.list_dags()] == [
        ("etl", False, "etl.py"), ("never_parsed", True, None)]


def test_get_dag_of_an_unknown_id_is_none(store: MetadataStore) -> None:
    assert store.get_dag("nope") is None


def test_replace_import_errors_replaces_the_whole_set(store: MetadataStore) -> None:
    store.replace_import_errors({"a.py": "SyntaxError: a", "b.py": "ImportError: b"})
    store.replace_import_errors({"b.py": "NameError: b", "c.py": "boom ü"})

    assert store.import_errors() == {"b.py": "NameError: b", "c.py": "boom ü"}

    store.replace_import_errors({})
    assert store.import_errors() == {}


# -- creating and reading runs ---------------------------------------------------------------


def test_create_run_stores_the_run_and_one_instance_per_task(store: MetadataStore,
                                                              make_run: MakeRun) -> None:
    created = make_run("etl", "manual__1", conf={"lr": 0.1})

    assert store.get_run("etl", "manual__1") == created
    tis = store.list_tis("etl", "manual__1")
    assert [(ti.task_id, ti.map_index) for ti in tis] == [
        ("extract", -1), ("fan", -1), ("load", -1), ("transform", -1)]
    assert {(ti.state, ti.try_number, ti.max_tries, ti.operator) for ti in tis} == {
        ("none", 0, 1, "PythonOperator")}


def test_create_run_without_task_instances(store: MetadataStore, make_run: MakeRun) -> None:
    make_run("etl", "empty", tasks=())

    assert store.get_run("etl", "empty").run_id == "empty"
    assert store.list_tis("etl", "empty") == []


def test_list_runs_orders_by_logical_date_and_filters(store: MetadataStore,
                                                      make_run: MakeRun) -> None:
    day = timedelta(days=1)
    make_run("etl", "r3", logical_date=LOGICAL_DATE + 2 * day, state="running")
    make_run("etl", "r1", logical_date=LOGICAL_DATE, state="success")
    make_run("etl", "r2", logical_date=LOGICAL_DATE + day, state="failed")
    make_run("train", "t1", logical_date=LOGICAL_DATE - day)

    assert [r.run_id for r in store.list_runs("etl")] == ["r1", "r2", "r3"]
    assert [r.run_id for r in store.list_runs()] == ["t1", "r1", "r2", "r3"]
    assert [r.run_id for r in store.list_runs("etl", states=["failed", "running"])] == [
        "r2", "r3"]
    assert [r.run_id for r in store.list_runs("etl", limit=2)] == ["r1", "r2"]
    assert store.list_runs("nope") == []


def test_latest_run_is_the_last_created(store: MetadataStore, make_run: MakeRun) -> None:
    assert store.latest_run("etl") is None
    make_run("etl", "later", logical_date=LOGICAL_DATE + timedelta(days=1))
    make_run("etl", "backfill", logical_date=LOGICAL_DATE - timedelta(days=30))
    make_run("train", "other")

    latest = store.latest_run("etl")

    assert latest is not None and latest.run_id == "backfill"


def test_a_duplicate_run_id_is_refused_and_changes_nothing(store: MetadataStore,
                                                           make_run: MakeRun) -> None:
    make_run("etl", "manual__1", tasks=[("extract", -1)])

    with pytest.raises(RunExistsError, match=r"DAG 'etl' already has a run 'manual__1'") as info:
        make_run("etl", "manual__1", tasks=[("other", -1)], state="running")

    assert (info.value.dag_id, info.value.run_id) == ("etl", "manual__1")
    assert store.get_run("etl", "manual__1").state == "queued"
    assert [ti.task_id for ti in store.list_tis("etl", "manual__1")] == ["extract"]


def test_the_same_run_id_may_exist_in_two_dags(store: MetadataStore, make_run: MakeRun) -> None:
    make_run("etl", "manual__1")
    make_run("train", "manual__1")

    assert {r.dag_id for r in store.list_runs()} == {"etl", "train"}


def test_get_run_of_an_unknown_run_names_the_recent_runs(store: MetadataStore,
                                                         make_run: MakeRun) -> None:
    make_run("etl", "manual__a", tasks=())
    make_run("etl", "manual__b", tasks=())

    with pytest.raises(RunNotFoundError,
                       match=r"DAG 'etl' has no run 'nope'; recent runs: "
                             r"\['manual__a', 'manual__b'\]") as info:
        store.get_run("etl", "nope")
    assert (info.value.dag_id, info.value.run_id) == ("etl", "nope")

    with pytest.raises(RunNotFoundError, match=r"DAG 'train' has no run 'x'; it has no runs yet"):
        store.get_run("train", "x")


def test_get_run_of_an_unknown_run_names_the_five_most_recent(store: MetadataStore,
                                                              make_run: MakeRun) -> None:
    # Scheduled runs first, then newer manual ones: by logical date the manual ones are the
    # recent ones, though 'manual__' sorts before 'scheduled__'.
    for day in range(1, 6):
        make_run("etl", f"scheduled__2024-01-0{day}", tasks=(),
                 logical_date=datetime(2024, 1, day, tzinfo=UTC))
    for day in range(6, 9):
        make_run("etl", f"manual__2024-01-0{day}", tasks=(),
                 logical_date=datetime(2024, 1, day, tzinfo=UTC))

    with pytest.raises(RunNotFoundError) as info:
        store.get_run("etl", "nope")

    for day in range(6, 9):
        assert f"manual__2024-01-0{day}" in str(info.value)


def test_set_run_state_changes_only_that_run(store: MetadataStore, make_run: MakeRun) -> None:
    make_run("etl", "r1")
    make_run("etl", "r2")
    ended = datetime(2024, 2, 1, 12, 30, 0, 654321, tzinfo=UTC)

    store.set_run_state("etl", "r1", "success", start_date=LOGICAL_DATE, end_date=ended)

    done = store.get_run("etl", "r1")
    assert done.state == "success"
    assert_utc(done.start_date, LOGICAL_DATE)
    assert_utc(done.end_date, ended)
    assert store.get_run("etl", "r2").state == "queued"

    store.set_run_state("etl", "r1", "queued", end_date=None)
    assert store.get_run("etl", "r1").end_date is None


def test_end_run_records_the_final_state_and_keeps_the_mlflow_parent(
        store: MetadataStore, make_run: MakeRun) -> None:
    make_run("etl", "r1")
    make_run("etl", "r2")
    ended = datetime(2024, 2, 1, 12, 30, 0, 654321, tzinfo=UTC)
    assert store.set_mlflow_run_id("etl", "r2", "abc123") == "abc123"

    store.end_run("etl", "r1", "failed", ended)
    store.end_run("etl", "r2", "success", ended)
    assert store.get_mlflow_run_id("etl", "r1") is None
    assert store.get_mlflow_run_id("etl", "r2") == "abc123"

    done = store.get_run("etl", "r1")
    assert done.state == "failed"
    assert_utc(done.end_date, ended)
    assert store.get_run("etl", "r2").state == "success"
    with pytest.raises(RunNotFoundError, match="r3"):
        store.end_run("etl", "r3", "success", ended)


# -- values round-trip ------------------------------------------------------------------------


@pytest.mark.parametrize("written", [
    datetime(2024, 1, 31, 2, 0, 0, 123456, tzinfo=UTC),
    datetime(2024, 7, 1, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(1999, 12, 31, 23, 0, 0, 1, tzinfo=timezone(timedelta(hours=-8))),
], ids=["utc", "plus-0530", "minus-08"])
def test_run_datetimes_come_back_aware_utc_and_equal(store: MetadataStore, make_run: MakeRun,
                                                     written: datetime) -> None:
    make_run("etl", "r", logical_date=written, data_interval_start=written - timedelta(hours=1),
             data_interval_end=written, created_at=written, start_date=written,
             end_date=written + timedelta(microseconds=1))

    read = store.get_run("etl", "r")

    assert_utc(read.logical_date, written)
    assert_utc(read.data_interval_start, written - timedelta(hours=1))
    assert_utc(read.data_interval_end, written)
    assert_utc(read.created_at, written)
    assert_utc(read.start_date, written)
    assert_utc(read.end_date, written + timedelta(microseconds=1))


def test_a_naive_datetime_is_taken_as_utc(store: MetadataStore, make_run: MakeRun) -> None:
    make_run("etl", "r", logical_date=datetime(2024, 3, 1, 8, 0, 0, 42))

    assert_utc(store.get_run("etl", "r").logical_date,
               datetime(2024, 3, 1, 8, 0, 0, 42, tzinfo=UTC))


def test_task_instance_datetimes_come_back_aware_utc(store: MetadataStore, run: DagRunRecord,
                                                    move: Callable[..., None]) -> None:
    key = TIKey("etl", run.run_id, "extract")
    queued_at = datetime(2024, 5, 5, 5, 5, 5, 500005, tzinfo=timezone(timedelta(hours=2)))
    retry_at = datetime(2024, 5, 5, 4, 0, 0, 7, tzinfo=UTC)

    move(key, "queued", queued_at=queued_at, next_retry_at=retry_at)

    ti = store.get_ti(key)
    assert ti is not None
    assert_utc(ti.queued_at, queued_at)
    assert_utc(ti.next_retry_at, retry_at)


def test_conf_json_round_trips(store: MetadataStore, make_run: MakeRun) -> None:
    conf = {"lr": 0.001, "epochs": 3, "big": 2**53, "name": "résumé ✓", "none": None,
            "flag": False, "nested": {"layers": [64, 32, {"drop": 0.5}], "empty": {}},
            "list": [], "quote": "it's \"fine\"\n"}

    make_run("etl", "r", conf=conf)

    assert store.get_run("etl", "r").conf == conf
    assert store.list_runs("etl")[0].conf == conf


# -- deleting a run --------------------------------------------------------------------------


def test_deleting_a_run_deletes_its_task_instances_and_xcoms(store: MetadataStore,
                                                            make_run: MakeRun) -> None:
    make_run("etl", "gone")
    make_run("etl", "kept")
    for run_id in ("gone", "kept"):
        store.push_xcoms(TIKey("etl", run_id, "extract"), {"return_value": "1"})

    with store.writer.begin() as conn:
        conn.execute(text("DELETE FROM dag_run WHERE run_id = 'gone'"))

    assert store.list_tis("etl", "gone") == []
    assert store.get_xcoms("etl", "gone", "extract", "return_value") == {}
    assert len(store.list_tis("etl", "kept")) == 4
    assert store.get_xcoms("etl", "kept", "extract", "return_value") == {-1: "1"}


# -- creating runs of a DAG (mlpipe.scheduler.runs) ------------------------------------------


def test_create_dag_run_queues_one_instance_per_task(store: MetadataStore) -> None:
    with DAG("pipeline") as dag:
        EmptyOperator(task_id="start") >> EmptyOperator(task_id="end", retries=2)

    created = create_dag_run(store, dag, logical_date="2024-01-31T02:00:00",
                             conf={"size": 3})

    assert created.run_id == "manual__2024-01-31T02:00:00+00:00"
    read = store.get_run("pipeline", created.run_id)
    assert read == created
    assert (read.state, read.run_type, read.conf) == ("queued", "manual", {"size": 3})
    assert_utc(read.logical_date, datetime(2024, 1, 31, 2, tzinfo=UTC))
    assert [(ti.task_id, ti.map_index, ti.state, ti.operator, ti.max_tries)
            for ti in store.list_tis("pipeline", created.run_id)] == [
        ("end", -1, "none", "EmptyOperator", 2), ("start", -1, "none", "EmptyOperator", 0)]
