"""Sensors in real runs (``dag.test()``: a real store, the engine's try runner): poke and
reschedule modes, timeouts, soft_fail, XComs, real files."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mlpipe import DAG, task
from mlpipe.operators import PythonOperator
from mlpipe.sensors import FileSensor, PokeReturnValue, PythonSensor, TimeDeltaSensor


def _later(seconds: float, action: Any) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


def test_file_sensor_in_poke_mode_waits_for_a_glob_match(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    with DAG("files", start_date=datetime(2026, 1, 1, tzinfo=UTC)) as dag:
        FileSensor("wait", filepath=str(landing / "*.csv"), poke_interval=0.1, timeout=20)
    (landing / "notes.txt").write_text("not it")
    timer = _later(1.2, lambda: (landing / "batch-1.csv").write_text("a,b\n"))
    run = dag.test()
    timer.join()

    ti = run.get_task_instance("wait")
    assert run.state == "success" and ti.try_number == 1
    assert "not yet; poking again in 0:00:00.100000" in ti.log
    assert f"found {landing / 'batch-1.csv'}" in ti.log


def test_file_sensor_finds_files_below_a_folder_only_when_recursive(tmp_path: Path) -> None:
    (tmp_path / "outer" / "inner").mkdir(parents=True)
    (tmp_path / "outer" / "inner" / "deep.bin").write_bytes(b"x")
    with DAG("folders", start_date=datetime(2026, 1, 1, tzinfo=UTC)) as dag:
        FileSensor("flat", filepath=str(tmp_path / "outer"), poke_interval=0.05, timeout=0.2,
                   soft_fail=True)
        FileSensor("deep", filepath=str(tmp_path / "outer"), recursive=True,
                   poke_interval=0.05, timeout=5)
        FileSensor("stars", filepath=str(tmp_path / "**" / "*.bin"), recursive=True,
                   poke_interval=0.05, timeout=5)
    run = dag.test()
    states = {t.task_id: t.state for t in run.task_instances}
    assert states == {"flat": "skipped", "deep": "success", "stars": "success"}


def test_file_sensor_takes_a_relative_path_from_its_fs_connection(
        tmp_path: Path, monkeypatch: Any) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "ready.flag").write_text("1")
    monkeypatch.setenv("MLPIPE_CONN_FS_TEST",
                       f'{{"conn_type": "fs", "extra": {{"path": "{tmp_path / "base"}"}}}}')
    with DAG("fsconn", start_date=datetime(2026, 1, 1, tzinfo=UTC)) as dag:
        FileSensor("wait", filepath="ready.flag", fs_conn_id="fs_test", poke_interval=0.05,
                   timeout=2)
    assert dag.test().state == "success"


def test_poke_mode_timeout_fails_at_once_without_retries_in_one_line() -> None:
    with DAG("timeouts", start_date=datetime(2026, 1, 1, tzinfo=UTC)) as dag:
        PythonSensor("never", python_callable=lambda: False, poke_interval=0.1, timeout=0.35,
                     retries=3, retry_delay=0)
        PythonSensor("soft", python_callable=lambda: False, poke_interval=0.1, timeout=0.2,
                     soft_fail=True)
    started = time.monotonic()
    run = dag.test()
    never, soft = run.get_task_instance("never"), run.get_task_instance("soft")

    assert never.state == "failed" and never.try_number == 1  # a timeout is not retried
    assert "Task failed: SensorTimeoutError: sensor 'never' timed out after 0.3" in never.log
    assert "(timeout 0.35 s)" in never.log
    assert soft.state == "skipped"
    assert "soft_fail: skipped" in soft.log
    assert time.monotonic() - started < 10


def test_reschedule_mode_keeps_the_try_and_times_out_from_the_first_poke() -> None:
    calls: list[float] = []

    def never() -> bool:
        calls.append(time.monotonic())
        return False

    with DAG("resched_timeout", start_date=datetime(2026, 1, 1, tzinfo=UTC)) as dag:
        PythonSensor("wait", python_callable=never, poke_interval=0.2, timeout=0.9,
                     mode="reschedule", retries=2, retry_delay=0)
    run = dag.test()
    ti = run.get_task_instance("wait")

    assert ti.state == "failed" and ti.try_number == 1
    assert "SensorTimeoutError: sensor 'wait' timed out after" in ti.log
    assert ti.log.count("Marking task as UP_FOR_RESCHEDULE") == len(calls) - 1
    # counted from the first poke across reschedules: about timeout / poke_interval pokes
    assert 4 <= len(calls) <= 7
    assert calls[-1] - calls[0] >= 0.85


def test_reschedule_mode_pushes_the_poke_return_value_and_backs_off() -> None:
    calls: list[float] = []

    def ready() -> PokeReturnValue:
        calls.append(time.monotonic())
        return PokeReturnValue(len(calls) >= 4, {"files": len(calls)})

    with DAG("resched_xcom", start_date=datetime(2026, 1, 1, tzinfo=UTC)) as dag:
        waiting = PythonSensor("wait", python_callable=ready, poke_interval=0.1,
                               exponential_backoff=True, max_wait=0.3, mode="reschedule")

        @task
        def consume(found: dict[str, int]) -> int:
            return found["files"]

        consume(waiting.output)
    run = dag.test()

    assert run.state == "success"
    assert run.get_task_instance("wait").try_number == 1
    assert run.get_task_instance("consume").xcom_pull() == 4
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert gaps[0] >= 0.09 and gaps[1] >= 0.19 and gaps[2] >= 0.29  # 0.1, 0.2, then capped
    assert gaps[2] < 0.3 + 2.0


def test_task_sensor_decorator_and_python_sensor_arguments() -> None:
    seen: list[Any] = []
    dates: list[str] = []

    with DAG("decorated", start_date=datetime(2026, 1, 1, tzinfo=UTC),
             params={"want": 2}) as dag:

        @task.sensor(poke_interval=0.05, timeout=5, mode="reschedule")
        def enough_rows(minimum: int, params: dict[str, Any]) -> PokeReturnValue:
            seen.append(minimum)
            return PokeReturnValue(len(seen) >= params["want"], xcom_value=len(seen) * minimum)

        def check(limit: int, ds: str) -> bool:
            dates.append(ds)
            return limit == 1

        counted = enough_rows(10)
        plain = PythonSensor("plain", python_callable=check, op_kwargs={"limit": 1},
                             poke_interval=0.05)
        after = PythonOperator("after", python_callable=lambda v: v, op_args=[counted])
        plain >> after
    run = dag.test(logical_date=datetime(2026, 3, 4, tzinfo=UTC))

    assert run.state == "success"
    assert run.get_task_instance("enough_rows").xcom_pull() == 20
    assert run.get_task_instance("after").xcom_pull() == 20
    assert dates == ["2026-03-04"] and seen == [10, 10]


def test_time_delta_sensor_waits_for_the_interval_end_plus_delta() -> None:
    now = datetime.now(UTC)
    with DAG("timed", start_date=datetime(2026, 1, 1, tzinfo=UTC)) as dag:
        TimeDeltaSensor("past", delta=timedelta(seconds=-3600), poke_interval=0.05, timeout=1)
        TimeDeltaSensor("soon", delta=timedelta(seconds=0.5), poke_interval=0.1, timeout=10)
        TimeDeltaSensor("far", delta=timedelta(days=1), poke_interval=0.05, timeout=0.2,
                        soft_fail=True)
    run = dag.test(logical_date=now)
    states = {t.task_id: t.state for t in run.task_instances}
    assert states == {"past": "success", "soon": "success", "far": "skipped"}
    soon = run.get_task_instance("soon")
    assert soon.end_date is not None and soon.end_date >= now + timedelta(seconds=0.5)
