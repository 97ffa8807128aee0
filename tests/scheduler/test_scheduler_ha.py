"""Several ``mlpipe scheduler`` processes on one database.

PostgreSQL: two schedulers at once (LocalExecutor each) on a scratch database; the one due
run of ``wide`` (200 tiny tasks, 10 chains of 20) is created once and every task instance
runs exactly once. A scheduler that stalls past its lease while another takes its run over
runs nothing twice. Two schedulers scanning the same new DAG files at once both survive.
SQLite: a second scheduler is refused with one clear line.

PostgreSQL is the server at ``MLPIPE_TEST_POSTGRES_URL`` (default: the local ``test``
database, trust auth); the test works in a database of its own, dropped at the end. Without a
reachable server the PostgreSQL tests are skipped, except on CI, where that is a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from scheduler_procs import (
    DAGS,
    SchedulerLauncher,
    journal,
    scheduler_env,
    stop,
    wait_until,
)

from mlpipe.scheduler.scheduler_job import Scheduler, SchedulerLock
from mlpipe.scheduler.service import Engine
from mlpipe.settings import load_settings
from mlpipe.store.metadata_store import MetadataStore

WIDE_RUN = f"scheduled__{datetime(2024, 1, 1, tzinfo=UTC).isoformat()}"


@pytest.fixture
def postgres_url(postgres_databases: Callable[[], str]) -> str:
    """The URL of a fresh scratch database (dropped at the end of the session)."""
    return postgres_databases()


@pytest.fixture
def launchers(tmp_path: Path) -> Iterator[list[SchedulerLauncher]]:
    """Launchers made by the test; every scheduler they started is killed at the end."""
    made: list[SchedulerLauncher] = []
    try:
        yield made
    finally:
        for launcher in made:
            launcher.cleanup()


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_two_schedulers_on_postgres_run_each_task_instance_once(
        postgres_url: str, launchers: list[SchedulerLauncher], tmp_path: Path) -> None:
    engine = Engine.from_settings(load_settings(dags_folder=DAGS / "ha",
                                                database_url=postgres_url))
    # Record the DAG before the schedulers start: two schedulers that discover the same new
    # DAG at once can crash (see test_schedulers_discovering_the_same_new_dags_at_once).
    engine.dagbag()
    try:
        launcher = SchedulerLauncher(tmp_path, **scheduler_env(
            DAGS / "ha", MLPIPE_DATABASE_URL=postgres_url, MLPIPE_PARALLELISM=4))
        launchers.append(launcher)
        first, second = launcher.start(), launcher.start()  # both race to create the run

        def run_finished() -> bool:
            for proc in (first, second):
                if not proc.alive():
                    raise AssertionError(f"a scheduler exited:\n{proc.describe()}")
            runs = engine.store.list_runs("wide")
            return bool(runs) and all(r.state in ("success", "failed") for r in runs)

        wait_until(run_finished, timeout=150, what="the run of 'wide' to finish",
                   interval=0.25)

        runs = engine.store.list_runs("wide")
        assert [(r.run_id, r.run_type, r.state) for r in runs] == [
            (WIDE_RUN, "scheduled", "success")]
        tis = engine.store.list_tis("wide", WIDE_RUN)
        assert len(tis) == 200
        assert Counter(t.state for t in tis) == {"success": 200}
        assert Counter(t.try_number for t in tis) == {1: 200}
        starts = Counter(s.task_id for s in engine.store.transitions("wide", WIDE_RUN)
                         if (s.from_state, s.to_state) == ("queued", "running"))
        assert starts == Counter({t.task_id: 1 for t in tis})
        # both schedulers keep going after the run, and stop cleanly
        for proc in (first, second):
            assert stop(proc) == 0, proc.describe()
            assert "Traceback" not in proc.stderr(), proc.describe()
    finally:
        engine.store.dispose()


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_second_scheduler_on_sqlite_exits_with_one_line_about_the_lock(
        launchers: list[SchedulerLauncher], tmp_path: Path) -> None:
    Engine.from_settings(load_settings()).store.dispose()  # migrate before either starts
    launcher = SchedulerLauncher(tmp_path, **scheduler_env(DAGS / "sigterm"))
    launchers.append(launcher)
    first = launcher.start()
    launcher.wait_started(first)

    second = subprocess.run(
        [sys.executable, "-m", "mlpipe", "scheduler"], cwd=tmp_path, capture_output=True,
        text=True, timeout=45, env={**os.environ, **scheduler_env(DAGS / "sigterm")})

    assert second.returncode == 1, second
    errors = [line for line in second.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, second.stderr
    assert errors[0].startswith("error: another scheduler is running on this SQLite database")
    assert "PostgreSQL" in errors[0]
    assert "Traceback" not in second.stderr
    assert first.alive()  # the first one is untouched
    assert stop(first) == 0


@pytest.mark.timeout(60)
def test_refused_scheduler_prints_nothing_but_the_error(tmp_path: Path) -> None:
    """A user starting a second scheduler sees one line saying why it cannot start, not
    log noise around it, and no banner claiming it started."""
    engine = Engine.from_settings(load_settings())
    lock = SchedulerLock(engine.settings.database, engine.settings.home)
    lock.acquire()  # as a running scheduler holds it
    try:
        second = subprocess.run(
            [sys.executable, "-m", "mlpipe", "scheduler"], cwd=tmp_path, capture_output=True,
            text=True, timeout=45, env={**os.environ, **scheduler_env(DAGS / "sigterm")})
    finally:
        lock.release()
        engine.store.dispose()

    assert second.returncode == 1
    lines = [line for line in second.stderr.splitlines() if line.strip()]
    assert lines == [lines[-1]], "stderr is more than the error line:\n" + second.stderr
    assert lines[-1].startswith("error: another scheduler is running")
    assert second.stdout.strip() == "", second.stdout



def _sync_dags(store: MetadataStore, attempt: int) -> None:
    store.sync_dags({f"new_{attempt}_{i}": f"/dags/new_{i}.py" for i in range(100)})


def _import_errors(store: MetadataStore, attempt: int) -> None:
    store.replace_import_errors({f"/dags/broken_{i}.py": f"boom {attempt}"
                                 for i in range(100)})


@pytest.mark.timeout(60)
@pytest.mark.parametrize("scan_step", [_sync_dags, _import_errors],
                         ids=["sync_dags", "replace_import_errors"])
def test_schedulers_discovering_the_same_new_dags_at_once(
        postgres_url: str, scan_step: Callable[[MetadataStore, int], None]) -> None:
    """What two schedulers' folder scans write when both find the same new DAG files (or the
    same broken ones), on a fresh database or when a file lands in a shared folder: the same
    store call from two processes at once. Neither may fail; the rows end up as one scan
    would leave them."""
    stores = [MetadataStore.open(postgres_url) for _ in range(2)]
    try:
        for attempt in range(5):
            barrier = threading.Barrier(2)
            errors: list[BaseException] = []

            def scan(store: MetadataStore, attempt: int = attempt,
                     barrier: threading.Barrier = barrier,
                     errors: list[BaseException] = errors) -> None:
                barrier.wait()
                try:
                    scan_step(store, attempt)
                except Exception as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=scan, args=(s,)) for s in stores]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
            assert not errors, (f"attempt {attempt}: {type(errors[0]).__name__}: "
                                + " / ".join(str(errors[0]).splitlines()[:2]))
        dags = {d.dag_id for d in stores[0].list_dags()}
        import_errors = stores[0].import_errors()
        if scan_step is _sync_dags:
            assert dags == {f"new_{a}_{i}" for a in range(5) for i in range(100)}
        else:
            assert import_errors == {f"/dags/broken_{i}.py": "boom 4" for i in range(100)}
    finally:
        for store in stores:
            store.dispose()


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_stalled_scheduler_whose_lease_expired_runs_nothing_twice(
        postgres_url: str, isolated_env: Path) -> None:
    """Scheduler A drives a run, then stalls (a long GC pause, a stopped VM) past its lease;
    B takes the run over; A wakes up still driving it. Both now drive one run: each task
    must still run once, and the run must end successful."""
    engines = [Engine.from_settings(load_settings(
        dags_folder=DAGS / "crash", database_url=postgres_url, executor="local",
        parallelism=2, task_lease_s=2)) for _ in range(2)]
    lease = timedelta(seconds=1)
    a = Scheduler(engines[0], scheduler_id="A", lease=lease, scan_interval=0.1)
    b = Scheduler(engines[1], scheduler_id="B", lease=lease, scan_interval=0.1)
    store = engines[0].store
    try:
        engines[0].trigger(engines[0].get_dag("journal_chain"), run_id="r1")

        def t3_started() -> bool:
            a.loop_once()
            return any(line[:2] == ["start", "t3"] for line in journal(isolated_env))

        wait_until(t3_started, timeout=30, what="t3 to start under A", interval=0)
        # A stalls: it stops looping (and renewing) until its lease has run out
        wait_until(lambda: store.claim_runs("probe", timedelta(0), dag_ids=["journal_chain"],
                                            limit=1),
                   timeout=10, what="A's lease to expire")
        store.release_runs("probe")
        b.loop_once()
        assert ("journal_chain", "r1") in b.drivers  # B took the run over
        assert ("journal_chain", "r1") in a.drivers  # and A never noticed

        def finished() -> bool:
            b.loop_once()
            a.loop_once()  # A wakes up and carries on as if nothing happened
            return store.get_run("journal_chain", "r1").state in ("success", "failed") \
                and not a.drivers and not b.drivers

        wait_until(finished, timeout=60, what="the run to finish", interval=0)

        assert store.get_run("journal_chain", "r1").state == "success"
        tis = store.list_tis("journal_chain", "r1")
        assert {(t.task_id, t.state, t.try_number) for t in tis} == {
            (f"t{i}", "success", 1) for i in range(1, 7)}
        starts = Counter(line[1] for line in journal(isolated_env) if line[0] == "start")
        assert starts == Counter({f"t{i}": 1 for i in range(1, 7)})
        claims = Counter(s.task_id for s in store.transitions("journal_chain", "r1")
                         if (s.from_state, s.to_state) == ("queued", "running"))
        assert claims == starts
        run_states = [s for s in store.transitions("journal_chain", "r1")
                      if s.task_id == "t3"]
        assert all(s.to_state != "failed" for s in run_states)
    finally:
        for job in (a, b):
            job.executor.shutdown()
        for engine in engines:
            engine.store.dispose()
