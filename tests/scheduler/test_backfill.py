"""``mlpipe dags backfill`` as a user runs it: which runs exist afterwards, which tasks ran
(the journal the tasks append to), and the errors for ranges that make no sense.

``daily_etl`` is ``@daily`` through January 2024 with ``catchup=False`` (a backfill ignores
it); its ``load`` fails for the dates listed in ``$MLPIPE_HOME/fail_dates.txt``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from scheduler_procs import DAGS, SchedulerLauncher, journal, scheduler_env, stop
from typer.testing import CliRunner, Result

from mlpipe.cli.main import app
from mlpipe.scheduler.backfill import backfill_intervals
from mlpipe.scheduler.scheduler_job import Scheduler
from mlpipe.scheduler.service import Engine
from mlpipe.settings import load_settings


def day(n: int, month: int = 1) -> datetime:
    return datetime(2024, month, n, tzinfo=UTC)


def run_id(d: datetime) -> str:
    return f"backfill__{d.isoformat()}"


@pytest.fixture(autouse=True)
def dags_folder(monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = DAGS / "backfill"
    monkeypatch.setenv("MLPIPE_DAGS_FOLDER", str(folder))
    return folder


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = Engine.from_settings(load_settings())
    yield engine
    engine.store.dispose()


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def backfill(runner: CliRunner, *args: str, dag_id: str = "daily_etl") -> Result:
    return runner.invoke(app, ["dags", "backfill", dag_id, *args])


def states(engine: Engine) -> dict[str, str]:
    return {r.run_id: r.state for r in engine.store.list_runs("daily_etl")}


def tries(engine: Engine) -> dict[tuple[str, str], int]:
    return {(r.run_id, t.task_id): t.try_number
            for r in engine.store.list_runs("daily_etl")
            for t in engine.store.list_tis("daily_etl", r.run_id)}


def executions(home: Path) -> Counter[tuple[str, str]]:
    """How often each (task_id, ds) ran."""
    return Counter((task_id, ds) for _, task_id, _, _, ds in journal(home))


def test_backfill_runs_every_interval_in_range_despite_catchup_false(
        runner: CliRunner, engine: Engine, isolated_env: Path) -> None:
    result = backfill(runner, "-s", "2024-01-01", "-e", "2024-01-03")

    assert result.exit_code == 0, result.output
    records = engine.store.list_runs("daily_etl")
    assert [(r.run_id, r.run_type, r.logical_date, r.data_interval_start, r.data_interval_end,
             r.state) for r in records] == [
        (run_id(day(n)), "backfill", day(n), day(n), day(n) + timedelta(days=1), "success")
        for n in (1, 2, 3)]
    assert set(tries(engine).values()) == {1}
    assert executions(isolated_env) == Counter(
        {(t, f"2024-01-0{n}"): 1 for t in ("extract", "load") for n in (1, 2, 3)})


def test_backfill_twice_creates_nothing_and_reruns_nothing(runner: CliRunner, engine: Engine,
                                                           isolated_env: Path) -> None:
    assert backfill(runner, "-s", "2024-01-01", "-e", "2024-01-03").exit_code == 0
    first_runs, first_tries = states(engine), tries(engine)
    first_journal = journal(isolated_env)

    again = backfill(runner, "-s", "2024-01-01", "-e", "2024-01-03")

    assert again.exit_code == 0, again.output
    assert "already success" in again.stdout
    assert states(engine) == first_runs
    assert len(engine.store.list_runs()) == 3
    assert tries(engine) == first_tries  # every try_number still 1
    assert journal(isolated_env) == first_journal


def test_overlapping_backfill_runs_only_the_new_intervals(runner: CliRunner, engine: Engine,
                                                          isolated_env: Path) -> None:
    assert backfill(runner, "-s", "2024-01-01", "-e", "2024-01-02").exit_code == 0

    assert backfill(runner, "-s", "2024-01-02", "-e", "2024-01-04").exit_code == 0

    assert states(engine) == {run_id(day(n)): "success" for n in (1, 2, 3, 4)}
    assert set(executions(isolated_env).values()) == {1}


def test_reset_dagruns_reruns_every_run_in_range(runner: CliRunner, engine: Engine,
                                                 isolated_env: Path) -> None:
    assert backfill(runner, "-s", "2024-01-01", "-e", "2024-01-03").exit_code == 0

    result = backfill(runner, "-s", "2024-01-01", "-e", "2024-01-02", "--reset-dagruns")

    assert result.exit_code == 0, result.output
    assert states(engine) == {run_id(day(n)): "success" for n in (1, 2, 3)}
    assert tries(engine) == {
        (run_id(day(n)), t): 2 if n < 3 else 1 for n in (1, 2, 3) for t in ("extract", "load")}
    done = executions(isolated_env)
    assert done[("extract", "2024-01-01")] == done[("load", "2024-01-02")] == 2
    assert done[("load", "2024-01-03")] == 1


def test_rerun_failed_reruns_only_the_failed_tasks(runner: CliRunner, engine: Engine,
                                                   isolated_env: Path) -> None:
    (isolated_env / "fail_dates.txt").write_text("2024-01-02\n")
    failed = backfill(runner, "-s", "2024-01-01", "-e", "2024-01-03")
    assert failed.exit_code == 1
    assert states(engine) == {run_id(day(1)): "success", run_id(day(2)): "failed",
                              run_id(day(3)): "success"}
    (isolated_env / "fail_dates.txt").unlink()

    plain = backfill(runner, "-s", "2024-01-01", "-e", "2024-01-03")  # failed runs stay failed
    assert plain.exit_code == 0, plain.output
    assert "already failed" in plain.stdout
    assert states(engine)[run_id(day(2))] == "failed"

    result = backfill(runner, "-s", "2024-01-01", "-e", "2024-01-03", "--rerun-failed")

    assert result.exit_code == 0, result.output
    assert set(states(engine).values()) == {"success"}
    assert tries(engine) == {
        **{(run_id(day(n)), t): 1 for n in (1, 2, 3) for t in ("extract", "load")},
        (run_id(day(2)), "load"): 2,
    }
    done = executions(isolated_env)
    assert done[("load", "2024-01-02")] == 2
    assert done[("extract", "2024-01-02")] == 1
    assert done[("load", "2024-01-01")] == done[("load", "2024-01-03")] == 1


def test_dry_run_creates_nothing(runner: CliRunner, engine: Engine, isolated_env: Path
                                 ) -> None:
    result = backfill(runner, "-s", "2024-01-01", "-e", "2024-01-03", "--dry-run")

    assert result.exit_code == 0, result.output
    for n in (1, 2, 3):
        assert day(n).isoformat() in result.stdout
    assert "3 run(s) to do" in result.stdout
    assert engine.store.list_runs() == []
    assert journal(isolated_env) == []


def test_dry_run_after_a_backfill_changes_nothing(runner: CliRunner, engine: Engine,
                                                  isolated_env: Path) -> None:
    (isolated_env / "fail_dates.txt").write_text("2024-01-01\n")
    backfill(runner, "-s", "2024-01-01", "-e", "2024-01-02")
    before_states, before_tries = states(engine), tries(engine)

    for flag in ("--reset-dagruns", "--rerun-failed"):
        result = backfill(runner, "-s", "2024-01-01", "-e", "2024-01-03", "--dry-run", flag)
        assert result.exit_code == 0, result.output

    assert states(engine) == before_states
    assert tries(engine) == before_tries
    assert len(journal(isolated_env)) == 4


def test_range_past_the_dags_end_date_stops_at_it(runner: CliRunner, engine: Engine) -> None:
    result = backfill(runner, "-s", "2024-01-30", "-e", "2024-02-05")

    assert result.exit_code == 0, result.output
    assert list(states(engine)) == [run_id(day(30)), run_id(day(31))]


def test_max_active_runs_option_runs_them_all(runner: CliRunner, engine: Engine) -> None:
    result = backfill(runner, "-s", "2024-01-01", "-e", "2024-01-04", "--max-active-runs", "2")

    assert result.exit_code == 0, result.output
    assert states(engine) == {run_id(day(n)): "success" for n in (1, 2, 3, 4)}


@pytest.mark.parametrize(("args", "dag_id", "needle"), [
    pytest.param(["-s", "2023-06-01", "-e", "2023-06-30"], "daily_etl", "before DAG",
                 id="before-start-date"),
    pytest.param(["-s", "2024-03-01", "-e", "2024-03-05"], "daily_etl", "after DAG",
                 id="after-end-date"),
    pytest.param(["-s", "2024-01-05", "-e", "2024-01-01"], "daily_etl", "before its start",
                 id="end-before-start"),
    pytest.param(["-s", "2024-01-01", "-e", "2024-01-02"], "no_such_dag", "no_such_dag",
                 id="unknown-dag"),
    pytest.param(["-s", "2024-01-01", "-e", "2024-01-02"], "unscheduled", "trigger it",
                 id="no-schedule"),
    pytest.param(["-s", "January 1st", "-e", "2024-01-02"], "daily_etl", "ISO 8601",
                 id="bad-date"),
])
def test_bad_backfill_is_one_line_error_and_exit_1(runner: CliRunner, engine: Engine,
                                                   args: list[str], dag_id: str, needle: str
                                                   ) -> None:
    result = backfill(runner, *args, dag_id=dag_id)

    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert needle in lines[0]
    assert "Traceback" not in result.output
    assert engine.store.list_runs() == []


def test_backfill_intervals_are_logical_dates_inclusive(engine: Engine) -> None:
    dag = engine.get_dag("daily_etl")

    intervals = backfill_intervals(dag, "2024-01-02T00:00:00+00:00", day(4))

    assert [(i.start, i.end) for i in intervals] == [
        (day(n), day(n + 1)) for n in (2, 3, 4)]
    assert [i.start for i in backfill_intervals(dag, "2023-12-01", "2024-01-01")] == [day(1)]


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_backfill_while_a_scheduler_runs_runs_each_task_once(
        runner: CliRunner, engine: Engine, isolated_env: Path, tmp_path: Path,
        dags_folder: Path) -> None:
    launcher = SchedulerLauncher(tmp_path, **scheduler_env(dags_folder))
    try:
        scheduler = launcher.start()
        launcher.wait_started(scheduler)

        result = backfill(runner, "-s", "2024-01-01", "-e", "2024-01-10")

        assert result.exit_code == 0, result.output
        assert states(engine) == {run_id(day(n)): "success" for n in range(1, 11)}
        assert set(tries(engine).values()) == {1}
        assert set(executions(isolated_env).values()) == {1}
        assert len(executions(isolated_env)) == 20
        assert scheduler.alive(), scheduler.describe()
        assert stop(scheduler) == 0
    finally:
        launcher.cleanup()


def test_backfill_leaves_alone_intervals_the_scheduler_already_ran(
        runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    """One run per logical date, as in Airflow: a backfill over intervals the scheduler
    already ran successfully creates no second run for them."""
    folder = DAGS / "clocked"
    monkeypatch.setenv("MLPIPE_DAGS_FOLDER", str(folder))
    engine = Engine.from_settings(load_settings(dags_folder=folder))
    job = Scheduler(engine, now=lambda: datetime(2024, 1, 1, 20, 30, tzinfo=UTC),
                    scan_interval=0.0)
    try:
        job.run(until=lambda _: bool(engine.store.list_runs("six_hourly_catchup")) and all(
            r.state == "success" for r in engine.store.list_runs("six_hourly_catchup")),
            max_loops=100)
        scheduled = [(r.logical_date, r.state)
                     for r in engine.store.list_runs("six_hourly_catchup")]
        assert len(scheduled) == 3

        result = backfill(runner, "-s", "2024-01-01T00:00:00", "-e", "2024-01-01T12:00:00",
                          dag_id="six_hourly_catchup")

        assert result.exit_code == 0, result.output
        after = [(r.logical_date, r.state) for r in engine.store.list_runs("six_hourly_catchup")]
        assert after == scheduled, "the backfill made second runs of the same logical dates"
        assert result.stdout.count("already success") == 3, result.stdout
        assert "0 run(s) to do, 3 left alone" in result.stdout
    finally:
        engine.store.dispose()


def test_scheduler_does_not_duplicate_backfilled_intervals(
        runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    """One run per logical date: catchup after a backfill of the same intervals creates runs
    only for the intervals nobody ran."""
    folder = DAGS / "clocked"
    monkeypatch.setenv("MLPIPE_DAGS_FOLDER", str(folder))
    result = backfill(runner, "-s", "2024-01-01T00:00:00", "-e", "2024-01-01T06:00:00",
                      dag_id="six_hourly_catchup")
    assert result.exit_code == 0, result.output
    engine = Engine.from_settings(load_settings(dags_folder=folder))
    job = Scheduler(engine, now=lambda: datetime(2024, 1, 1, 20, 30, tzinfo=UTC),
                    scan_interval=0.0)
    try:
        for _ in range(3):
            job.loop_once()

        dates = [r.logical_date for r in engine.store.list_runs("six_hourly_catchup")]
        assert dates == [datetime(2024, 1, 1, h, tzinfo=UTC) for h in (0, 6, 12)], \
            "the scheduler made second runs of backfilled logical dates"
    finally:
        job.executor.shutdown()
        engine.store.dispose()
