"""Task ``sla`` and DAG ``deadline`` under the real scheduler loop: each miss recorded
once, ``on_sla_miss_callback`` fired once per miss (a webhook to a real local HTTP server
and a function), listed by ``mlpipe dags list-sla-misses``."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from notifications.conftest import webhook_server  # noqa: F401 (fixture)
from typer.testing import CliRunner

from mlpipe.cli.main import app
from mlpipe.scheduler.scheduler_job import Scheduler
from mlpipe.scheduler.service import Engine
from mlpipe.settings import load_settings
from mlpipe.store.metadata_store import MetadataStore


def _mlpipe(*args: str) -> Result:
    """The command line in this process (MLPIPE_HOME is the test's own)."""
    return CliRunner().invoke(app, list(args))


@pytest.mark.timeout(90)
def test_a_slow_task_and_a_late_run_are_each_recorded_and_notified_once(
        make_engine: Callable[..., Engine], webhook_server: tuple[str, Any],  # noqa: F811
        monkeypatch: pytest.MonkeyPatch, isolated_env: Path) -> None:
    base, received = webhook_server
    monkeypatch.setenv("SENSOR_TEST_WEBHOOK", f"{base}/sla")
    engine = make_engine("sla", parallelism=2)
    run = engine.trigger(engine.get_dag("late_tasks"))

    def finished(_: Scheduler) -> bool:
        state = engine.store.get_run("late_tasks", run.run_id).state
        return state in ("success", "failed") and len(received.posts) >= 2

    Scheduler(engine, scan_interval=0.2).run(until=finished)

    assert engine.store.get_run("late_tasks", run.run_id).state == "success"
    misses = engine.store.list_sla_misses("late_tasks")
    assert sorted((m.kind, m.task_id) for m in misses) == [("dag_deadline", None),
                                                          ("task_sla", "slow")]
    record = engine.store.get_run("late_tasks", run.run_id)
    by_kind = {m.kind: m for m in misses}
    assert by_kind["task_sla"].deadline_at == record.data_interval_end + timedelta(seconds=0.5)
    assert record.start_date is not None
    assert by_kind["dag_deadline"].deadline_at == record.start_date + timedelta(seconds=1)
    assert all(m.recorded_at >= m.deadline_at for m in misses)

    bodies = sorted((b["task_id"] or "", b["state"], b["reason"], b["dag_id"], b["run_id"])
                    for _, _, b in received.wait_for(2))
    assert bodies == [("", "sla_miss", "dag_deadline", "late_tasks", run.run_id),
                      ("slow", "sla_miss", "task_sla", "late_tasks", run.run_id)]
    journal = (isolated_env / "misses.txt").read_text().splitlines()
    assert sorted(journal) == ["dag_deadline None", "task_sla slow"]

    # a second scheduler over the same database finds them recorded: no second notice
    assert not engine.store.record_sla_miss("late_tasks", run.run_id, "slow", kind="task_sla",
                                            deadline_at=datetime.now(UTC),
                                            recorded_at=datetime.now(UTC))
    assert len(engine.store.list_sla_misses()) == 2

    listed = _mlpipe("dags", "list-sla-misses", "late_tasks", "-o", "json", "--dags-folder",
                     str(engine.settings.dags_folder))
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert sorted((r["kind"], r["task_id"], r["run_id"]) for r in rows) == [
        ("dag_deadline", None, run.run_id), ("task_sla", "slow", run.run_id)]
    assert set(rows[0]) == {"dag_id", "run_id", "task_id", "kind", "deadline_at",
                            "recorded_at"}


def test_list_sla_misses_of_an_unknown_dag_is_one_line(isolated_env: Path) -> None:
    empty = isolated_env / "dags"
    empty.mkdir()
    done = _mlpipe("dags", "list-sla-misses", "nope", "--dags-folder", str(empty))
    assert done.exit_code == 1
    assert done.output.count("\n") == 1 and "nope" in done.output
    assert "Traceback" not in done.output


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_recording_a_miss_is_insert_once_and_listing_filters_by_dag(
        database: str, request: pytest.FixtureRequest) -> None:
    settings = load_settings(**({"database_url": request.getfixturevalue("postgres_databases")()}
                                if database == "postgres" else {}))
    store = MetadataStore.open(settings.database)
    engine = Engine.from_settings(settings)
    try:
        from mlpipe import DAG

        with DAG("d1") as d1:
            pass
        first = engine.trigger(d1)
        at = datetime(2026, 1, 1, tzinfo=UTC)
        assert store.record_sla_miss("d1", first.run_id, None, kind="dag_deadline",
                                     deadline_at=at, recorded_at=at)
        assert not store.record_sla_miss("d1", first.run_id, None, kind="dag_deadline",
                                         deadline_at=at, recorded_at=at)
        assert store.record_sla_miss("d1", first.run_id, "t", kind="task_sla",
                                     deadline_at=at, recorded_at=at)
        assert [m.task_id for m in store.list_sla_misses("d1")] == [None, "t"]
        assert store.list_sla_misses("other") == []
    finally:
        store.dispose()
        engine.store.dispose()
