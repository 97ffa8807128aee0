"""Pools: ``mlpipe pools set|list|delete`` and the slot limit, as the store records it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

import pytest
from scheduler_procs import DAGS
from typer.testing import CliRunner

from mlpipe.cli.main import app
from mlpipe.scheduler.scheduler_job import Scheduler
from mlpipe.scheduler.service import Engine
from mlpipe.settings import load_settings
from mlpipe.store.entities import TIKey


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def engine() -> Iterator[Engine]:
    """LocalExecutor with room for all four pooled tasks at once: only the pool limits."""
    engine = Engine.from_settings(load_settings(
        dags_folder=DAGS / "pools", executor="local", parallelism=4, task_lease_s=5))
    yield engine
    engine.store.dispose()


def cli(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def pools_json(runner: CliRunner) -> list[dict[str, object]]:
    return json.loads(cli(runner, "pools", "list", "-o", "json"))


def max_open(spans: list[tuple[datetime | None, datetime | None]]) -> int:
    """The most spans open at one instant (an end at t comes before a start at t)."""
    assert all(s is not None and e is not None for s, e in spans), spans
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    open_now = peak = 0
    for _, step in edges:
        open_now += step
        peak = max(peak, open_now)
    return peak


@pytest.mark.timeout(60)
def test_one_slot_pool_runs_its_tasks_one_at_a_time(runner: CliRunner, engine: Engine
                                                    ) -> None:
    cli(runner, "pools", "set", "train", "1")
    dag = engine.get_dag("pooled")
    engine.trigger(dag, run_id="r1")

    run = engine.run(dag, "r1")

    assert run.state == "success"
    tis = engine.store.list_tis("pooled", "r1")
    assert [(t.task_id, t.state, t.try_number) for t in tis] == [
        (f"train_{i}", "success", 1) for i in range(4)]
    assert max_open([(t.start_date, t.end_date) for t in tis]) == 1
    assert pools_json(runner) == [{"pool": "train", "slots": 1, "used": 0, "description": ""}]


@pytest.mark.timeout(60)
def test_two_slot_pool_runs_two_at_a_time(runner: CliRunner, engine: Engine) -> None:
    cli(runner, "pools", "set", "train", "2")
    dag = engine.get_dag("pooled")
    engine.trigger(dag, run_id="r1")

    assert engine.run(dag, "r1").state == "success"

    spans = [(t.start_date, t.end_date) for t in engine.store.list_tis("pooled", "r1")]
    assert max_open(spans) == 2


def test_task_in_a_missing_pool_fails_naming_the_pool_and_the_fix(engine: Engine) -> None:
    dag = engine.get_dag("missing_pool")
    engine.trigger(dag, run_id="r1")

    run = engine.run(dag, "r1", executor=engine.make_executor("sequential"))

    assert run.state == "failed"
    (ti,) = engine.store.list_tis("missing_pool", "r1")
    assert ti.state == "failed"
    assert ti.error is not None
    assert "'nowhere'" in ti.error
    assert "mlpipe pools set nowhere" in ti.error


def test_pools_list_json_shows_slots_and_used(runner: CliRunner, engine: Engine) -> None:
    cli(runner, "pools", "set", "train", "2", "--description", "GPU box")
    cli(runner, "pools", "set", "etl", "5")
    engine.trigger(engine.get_dag("pooled"), run_id="r1")
    first = TIKey("pooled", "r1", "train_0")
    assert engine.store.queue(first, ["none"], pool="train") == "queued"

    assert pools_json(runner) == [
        {"pool": "etl", "slots": 5, "used": 0, "description": ""},
        {"pool": "train", "slots": 2, "used": 1, "description": "GPU box"},
    ]
    # the table names the same columns
    table = cli(runner, "pools", "list")
    for word in ("pool", "slots", "used", "train", "GPU box"):
        assert word in table


def test_full_pool_refuses_to_queue_more(runner: CliRunner, engine: Engine) -> None:
    cli(runner, "pools", "set", "train", "1")
    engine.trigger(engine.get_dag("pooled"), run_id="r1")
    keys = [TIKey("pooled", "r1", f"train_{i}") for i in range(2)]

    assert engine.store.queue(keys[0], ["none"], pool="train") == "queued"
    assert engine.store.queue(keys[1], ["none"], pool="train") == "pool_full"
    cli(runner, "pools", "set", "train", "2")  # resizing makes room at once
    assert engine.store.queue(keys[1], ["none"], pool="train") == "queued"
    assert pools_json(runner)[0]["used"] == 2


def test_pools_delete(runner: CliRunner) -> None:
    cli(runner, "pools", "set", "train", "1")
    cli(runner, "pools", "set", "etl", "1")

    assert "pool train deleted" in cli(runner, "pools", "delete", "train")

    assert [p["pool"] for p in pools_json(runner)] == ["etl"]


def test_pools_delete_unknown_is_one_line_error(runner: CliRunner) -> None:
    cli(runner, "pools", "set", "etl", "1")

    result = runner.invoke(app, ["pools", "delete", "ghost"])

    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "'ghost'" in lines[0] and "etl" in lines[0]
    assert "Traceback" not in result.output


def test_pools_set_negative_slots_is_one_line_error(runner: CliRunner) -> None:
    result = runner.invoke(app, ["pools", "set", "train", "--", "-1"])

    assert result.exit_code == 1, result.output
    assert result.stderr.strip().startswith("error: ")
    assert "slots" in result.stderr
    assert pools_json(runner) == []


@pytest.mark.timeout(60)
def test_pool_limit_holds_across_runs_driven_by_the_scheduler(runner: CliRunner,
                                                              engine: Engine) -> None:
    cli(runner, "pools", "set", "train", "2")
    dag = engine.get_dag("pooled")
    for run_id in ("r1", "r2"):
        engine.trigger(dag, run_id=run_id)

    Scheduler(engine, scan_interval=0.2).run(until=lambda job: all(
        r.state in ("success", "failed") for r in engine.store.list_runs("pooled")))

    assert [r.state for r in engine.store.list_runs("pooled")] == ["success", "success"]
    tis = [t for r in ("r1", "r2") for t in engine.store.list_tis("pooled", r)]
    assert len(tis) == 8
    assert max_open([(t.start_date, t.end_date) for t in tis]) == 2
