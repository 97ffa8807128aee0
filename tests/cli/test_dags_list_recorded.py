"""``mlpipe dags list`` answers from the DAGs recorded at the last parse while no DAG file
changed (no engine, no SQLAlchemy, no DAG file imported), and parses again when a file was
added, removed or changed, or with ``--reparse``. Each DAG file here counts its imports in
a marker file, so "parsed or not" is observed, not assumed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
DAG_FILE = """
from pathlib import Path
with open({marker!r}, "a") as marker:
    marker.write("x")
from mlpipe import DAG, task
with DAG({dag_id!r}, schedule={schedule!r}, tags={tags!r}) as dag:
    @task
    def one():
        return 1
    one()
"""


#: more variables for one test's home (its PostgreSQL URL)
EXTRA: dict[Path, dict[str, str]] = {}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "dags").mkdir()
    return tmp_path


def env(home: Path) -> dict[str, str]:
    return {**os.environ, **EXTRA.get(home, {}), "PYTHONPATH": str(ROOT),
            "MLPIPE_HOME": str(home / "h"), "MLPIPE_DAGS_FOLDER": str(home / "dags"),
            "MLFLOW_DISABLE_TELEMETRY": "true"}


def write_dag(home: Path, name: str, dag_id: str, *, schedule: str = "@daily",
              tags: tuple[str, ...] = ("t",)) -> Path:
    path = home / "dags" / name
    path.write_text(DAG_FILE.format(marker=str(home / "imports"), dag_id=dag_id,
                                    schedule=schedule, tags=list(tags)))
    return path


def imports(home: Path) -> int:
    marker = home / "imports"
    return len(marker.read_text()) if marker.exists() else 0


def mlpipe(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlpipe", *args], env=env(home), cwd=home,
                          capture_output=True, text=True, timeout=120)


def listed(home: Path, *args: str) -> list[dict[str, object]]:
    done = mlpipe(home, "dags", "list", "-o", "json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_fresh_home_parses_and_leaves_no_database(home: Path) -> None:
    write_dag(home, "a.py", "a")
    assert [r["dag_id"] for r in listed(home)] == ["a"]
    assert imports(home) > 0
    assert not (home / "h").exists()


def test_unchanged_files_are_listed_from_the_records_without_importing_them(
        home: Path) -> None:
    write_dag(home, "a.py", "a", tags=("x", "y"))
    write_dag(home, "b.py", "b", schedule="@hourly")
    assert mlpipe(home, "db", "migrate").returncode == 0
    first = listed(home)  # parses, and records the listing
    parsed = imports(home)
    assert parsed > 0
    assert listed(home) == first  # the same rows, nothing imported
    assert imports(home) == parsed
    assert first == [
        {"dag_id": "a", "is_paused": False, "schedule": "@daily", "tasks": 1, "tags": "x,y",
         "fileloc": str(home / "dags" / "a.py")},
        {"dag_id": "b", "is_paused": False, "schedule": "@hourly", "tasks": 1, "tags": "t",
         "fileloc": str(home / "dags" / "b.py")}]
    assert mlpipe(home, "dags", "pause", "b").returncode == 0
    parsed = imports(home)
    assert [r["is_paused"] for r in listed(home)] == [False, True]  # the pause flag is live
    assert imports(home) == parsed
    table = mlpipe(home, "dags", "list").stdout  # the table path too
    assert "@hourly" in table and "True" in table
    assert imports(home) == parsed


def test_the_fast_path_loads_no_engine_sqlalchemy_or_pydantic(home: Path) -> None:
    write_dag(home, "a.py", "a")
    assert mlpipe(home, "db", "migrate").returncode == 0
    listed(home)
    watched = ["sqlalchemy", "alembic", "pydantic", "mlpipe.runtime.dagbag",
               "mlpipe.scheduler", "mlpipe.store.database"]
    probe = ("import sys, json\nfrom mlpipe.cli.main import fast_dags_list\n"
             "code = fast_dags_list(['dags', 'list', '-o', 'json'])\n"
             f"print(json.dumps([code, sorted(w for w in {watched!r} if any("
             "m == w or m.startswith(w + '.') for m in sys.modules))]))")
    done = subprocess.run([sys.executable, "-c", probe], env=env(home), cwd=home,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [0, []]


@pytest.mark.slow
def test_a_changed_added_or_removed_file_is_parsed_again(home: Path) -> None:
    write_dag(home, "a.py", "a")
    b = write_dag(home, "b.py", "b")
    assert mlpipe(home, "db", "migrate").returncode == 0
    assert [r["dag_id"] for r in listed(home)] == ["a", "b"]
    write_dag(home, "a.py", "a_renamed", tags=("longer", "tags"))  # changed: size differs
    before = imports(home)
    assert [r["dag_id"] for r in listed(home)] == ["a_renamed", "b"]
    assert imports(home) > before
    write_dag(home, "c.py", "c")  # added
    assert [r["dag_id"] for r in listed(home)] == ["a_renamed", "b", "c"]
    b.unlink()  # removed
    assert [r["dag_id"] for r in listed(home)] == ["a_renamed", "c"]
    before = imports(home)
    assert [r["dag_id"] for r in listed(home)] == ["a_renamed", "c"]
    assert imports(home) == before  # recorded again: no parse


def test_reparse_parses_even_when_nothing_changed(home: Path) -> None:
    write_dag(home, "a.py", "a")
    assert mlpipe(home, "db", "migrate").returncode == 0
    listed(home)
    before = imports(home)
    assert [r["dag_id"] for r in listed(home, "--reparse")] == ["a"]
    assert imports(home) > before


def test_a_broken_file_is_still_reported_from_the_records(home: Path) -> None:
    write_dag(home, "a.py", "a")
    (home / "dags" / "broken.py").write_text("raise RuntimeError('nope')\n")
    assert mlpipe(home, "db", "migrate").returncode == 0
    for _ in range(2):  # parsed, then from the records
        done = mlpipe(home, "dags", "list")
        assert done.returncode == 0, done.stderr
        assert "1 DAG file(s) failed to import" in done.stderr


@pytest.mark.slow
def test_on_postgresql_the_recorded_listing_is_read_through_the_store(
        home: Path, postgres_databases: Callable[[], str]) -> None:
    EXTRA[home] = {"MLPIPE_DATABASE_URL": postgres_databases()}
    try:
        write_dag(home, "a.py", "a")
        assert mlpipe(home, "db", "migrate").returncode == 0
        assert [r["dag_id"] for r in listed(home)] == ["a"]
        parsed = imports(home)
        assert [r["tags"] for r in listed(home)] == ["t"]
        assert imports(home) == parsed  # answered from the records
        write_dag(home, "a.py", "a", tags=("changed",))
        assert [r["tags"] for r in listed(home)] == ["changed"]
        assert imports(home) > parsed
    finally:
        del EXTRA[home]


def test_what_the_scheduler_parsed_is_listed_without_parsing(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlpipe.scheduler.scheduler_job import Scheduler
    from mlpipe.scheduler.service import Engine
    from mlpipe.settings import load_settings

    write_dag(home, "a.py", "a", tags=("sched",))
    for name, value in env(home).items():
        if name.startswith("MLPIPE_"):
            monkeypatch.setenv(name, value)
    engine = Engine.from_settings(load_settings())
    Scheduler(engine, executor=engine.make_executor("sequential")).run(max_loops=1)
    parsed = imports(home)
    assert parsed > 0
    assert listed(home) == [{"dag_id": "a", "is_paused": False, "schedule": "@daily",
                             "tasks": 1, "tags": "sched",
                             "fileloc": str(home / "dags" / "a.py")}]
    assert imports(home) == parsed
