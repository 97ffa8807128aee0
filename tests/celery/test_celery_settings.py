"""What the celery executor and ``mlpipe worker`` refuse, each in one line, creating nothing:
a SQLite metadata DB, bad worker options, a bad ``queue=``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlpipe import DAG
from mlpipe.cli.main import app
from mlpipe.errors import DagDefinitionError, SettingsError
from mlpipe.executors.celery.executor import CeleryExecutor, refuse_sqlite
from mlpipe.operators import EmptyOperator
from mlpipe.settings import load_settings

pytestmark = pytest.mark.timeout(120)

SQLITE_LINE = ("error: setting MLPIPE_EXECUTOR: the celery executor needs a database every "
               "worker can reach, not SQLite (the default $MLPIPE_HOME/mlpipe.db); set "
               "MLPIPE_DATABASE_URL=postgresql+psycopg://USER@HOST/DB")


@pytest.fixture
def fresh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "fresh_home"
    monkeypatch.setenv("MLPIPE_HOME", str(home))
    monkeypatch.setenv("MLPIPE_DAGS_FOLDER", str(tmp_path))
    return home


@pytest.mark.parametrize("command", ["scheduler", "dags trigger d --wait", "dags list"])
def test_the_celery_executor_refuses_sqlite_in_one_line(
        fresh_home: Path, monkeypatch: pytest.MonkeyPatch, command: str) -> None:
    monkeypatch.setenv("MLPIPE_EXECUTOR", "celery")
    result = subprocess.run([sys.executable, "-m", "mlpipe", *command.split()],
                            env=dict(os.environ), capture_output=True, text=True, timeout=90)
    assert result.returncode == 1
    assert (result.stdout + result.stderr).splitlines() == [SQLITE_LINE]
    assert not fresh_home.exists()  # no database, no folders


def test_a_sqlite_url_given_outright_is_refused_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPIPE_DATABASE_URL", "sqlite:////tmp/x.db")
    with pytest.raises(SettingsError, match=r"not SQLite \(sqlite:////tmp/x.db\)"):
        load_settings(executor="celery")
    with pytest.raises(SettingsError, match="MLPIPE_DATABASE_URL: the celery executor needs"):
        refuse_sqlite("sqlite:////tmp/x.db")
    settings = load_settings()  # sequential with SQLite: fine
    with pytest.raises(SettingsError, match="not SQLite"):
        CeleryExecutor.from_settings(settings)


def test_the_worker_refuses_sqlite_before_creating_anything(fresh_home: Path) -> None:
    result = CliRunner().invoke(app, ["worker"])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "error: setting MLPIPE_DATABASE_URL: the celery executor needs a database every "
        f"worker can reach, not SQLite (sqlite:///{fresh_home.resolve()}/mlpipe.db); set "
        "MLPIPE_DATABASE_URL=postgresql+psycopg://USER@HOST/DB"]
    assert not fresh_home.exists()


@pytest.mark.parametrize(("args", "line"), [
    (["--gpus", "0,x"], "error: --gpus '0,x': GPU index 'x' is not a non-negative integer "
                        "(expected a list such as '0,1')"),
    (["--gpus", "1,1"], "error: --gpus '1,1': GPU index 1 is listed twice"),
    (["-q", "gpu queue"], "error: --queues 'gpu queue': give comma-separated queue names "
                          "made of letters, digits, '_', '.', '-' (bad: ['gpu queue'])"),
    (["-q", ","], "error: --queues ',': give comma-separated queue names made of letters, "
                  "digits, '_', '.', '-' (bad: [','])"),
    (["--concurrency", "0"], "error: --concurrency 0: give a number from 1 to 1024"),
    (["--memory-gb", "-2"], "error: --memory-gb -2: give a positive number"),
])
def test_bad_worker_options_get_one_line(fresh_home: Path, args: list[str], line: str) -> None:
    result = CliRunner().invoke(app, ["worker", *args])
    assert result.exit_code == 1
    assert result.output.splitlines() == [line]
    assert not fresh_home.exists()


def test_worker_help_does_not_import_celery() -> None:
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom mlpipe.cli.main import app\n"
            "r = CliRunner().invoke(app, ['worker', '--help'])\nassert r.exit_code == 0\n"
            "assert '--gpus' in r.output\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('celery', 'kombu')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=90, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("queue", ["", "gpu queue", "gpü", "x" * 101])
def test_a_bad_queue_name_is_a_dag_definition_error(queue: str) -> None:
    with DAG("bad_queue"), pytest.raises(DagDefinitionError, match=r"queue .* must be 1-100"):
        EmptyOperator(task_id="t", queue=queue)


def test_queue_defaults_to_default() -> None:
    with DAG("queues"):
        assert EmptyOperator(task_id="t").queue == "default"
        assert EmptyOperator(task_id="u", queue="gpu").queue == "gpu"
