"""What a fresh process loads: ``import mlpipe``, a one-task ``dag.test()``, ``mlpipe --help``.

Cold start is mostly imports (docs/engine-performance.md), so the heavy modules each path
must not load are pinned here, each probe in a new interpreter: a lazy import turned eager
fails a test instead of slowing every cron job and CI run silently.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: never on any of the three paths
HEAVY = ["alembic", "boto3", "botocore", "fastapi", "mlflow", "sqlalchemy", "torch"]
#: the engine, settings, the CLI's libraries and the S3/ML operators: not for ``import mlpipe``
NOT_ON_IMPORT = [*HEAVY, "jinja2", "mlpipe.hooks", "mlpipe.operators.s3", "mlpipe.runtime",
                 "mlpipe.scheduler", "mlpipe.settings", "mlpipe.store", "pydantic", "rich",
                 "typer"]
#: ``dag.test()`` runs on the in-memory store: no database layer, no CLI, and settings
#: read by the stdlib loader (pydantic-settings was 94% of this path's import time)
NOT_ON_DAG_TEST = [*HEAVY, "mlpipe.store.database", "mlpipe.store.metadata_store",
                   "mlpipe.connections.metastore_backend", "mlpipe.operators.s3", "pydantic",
                   "pydantic_settings", "rich", "typer", "mlpipe.executors.local",
                   "mlpipe.executors.celery", "multiprocessing"]
#: ``mlpipe --help`` lists the commands from a table: no command module, no engine
NOT_ON_HELP = [*HEAVY, "mlpipe.cli.dags", "mlpipe.cli.tasks", "mlpipe.runtime",
               "mlpipe.scheduler", "mlpipe.settings", "mlpipe.store"]

ONE_TASK = """
from mlpipe import DAG, task
with DAG("cold_probe") as dag:
    @task
    def one():
        return 1
    one()
run = dag.test()
assert run.state == "success", run.state
assert run.get_task_instance("one").xcom_pull() == 1
"""


def loaded(code: str, watched: list[str], tmp_path: Path) -> list[str]:
    """Which of ``watched`` (packages or modules) a new interpreter has after ``code``."""
    probe = (f"{code}\nimport json, sys\nprint(json.dumps(sorted(w for w in {watched!r} "
             "if any(m == w or m.startswith(w + '.') for m in sys.modules))))")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLPIPE_HOME": str(tmp_path),
           "MLFLOW_DISABLE_TELEMETRY": "true"}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_mlpipe_loads_no_engine_and_no_heavy_library(tmp_path: Path) -> None:
    assert loaded("import mlpipe", NOT_ON_IMPORT, tmp_path) == []


def test_a_one_task_dag_test_loads_no_database_layer(tmp_path: Path) -> None:
    assert loaded(ONE_TASK, NOT_ON_DAG_TEST, tmp_path) == []


def test_help_imports_no_command_module(tmp_path: Path) -> None:
    code = ("import sys\nfrom mlpipe.cli.main import app\nsys.argv = ['mlpipe', '--help']\n"
            "try:\n    app()\nexcept SystemExit:\n    pass")
    assert loaded(code, NOT_ON_HELP, tmp_path) == []


@pytest.mark.parametrize("code", [
    "import mlpipe.operators; mlpipe.operators.S3DownloadOperator",
    ONE_TASK + "\nimport sqlalchemy",
])
def test_the_probe_sees_what_is_loaded(code: str, tmp_path: Path) -> None:
    # Guards the tests above: the same probe reports modules that *are* imported.
    assert loaded(code, NOT_ON_IMPORT, tmp_path) != []
