"""DAG files that hang, exit or crash at import are import errors, never a hung or dead reader.

Each file is tried in a forked child first (``mlpipe.runtime.dag_parsing``) with
``MLPIPE_DAG_PARSE_TIMEOUT_S``; the commands and the scheduler go on with the good files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlpipe.runtime.dagbag import load_dagbag
from mlpipe.store.metadata_store import MetadataStore

GOOD = """
from mlpipe import DAG
from mlpipe.operators import EmptyOperator

with DAG("good") as dag:
    EmptyOperator(task_id="t")
"""
BAD = {
    "sleeps.py": "import time\ntime.sleep(600)\n",
    "exits.py": "import os\nos._exit(0)\n",
    "segfaults.py": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
    "sys_exit.py": "import sys\nsys.exit(3)\n",
    "raises.py": "x = 1\nraise RuntimeError('broken on purpose')\n",
}


@pytest.fixture
def dags(tmp_path: Path) -> Path:
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "a_good.py").write_text(GOOD)
    for name, body in BAD.items():
        (folder / name).write_text(body)
    return folder


def _mlpipe(*args: str, dags: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLPIPE_DAGS_FOLDER": str(dags), "MLPIPE_DAG_PARSE_TIMEOUT_S": "1"}
    return subprocess.run([sys.executable, "-m", "mlpipe", *args], env=env, text=True,
                          capture_output=True, timeout=120)


def test_every_bad_file_is_an_import_error_and_the_good_dag_loads(dags: Path) -> None:
    bag = load_dagbag(dags, parse_timeout=1.0)

    assert sorted(bag.dags) == ["good"]
    errors = {Path(p).name: e for p, e in bag.import_errors.items()}
    assert sorted(errors) == sorted(BAD)
    assert errors["sleeps.py"] == ("timed out: importing the file took longer than 1 s "
                                   "(MLPIPE_DAG_PARSE_TIMEOUT_S)")
    assert errors["exits.py"].startswith("importing the file ended its process (exit code 0)")
    assert errors["segfaults.py"] == "the process importing the file was killed by signal 9"
    assert errors["sys_exit.py"].startswith("SystemExit: 3")
    assert errors["raises.py"] == "RuntimeError: broken on purpose (line 2)"


def test_dags_list_and_list_import_errors_through_the_cli(dags: Path,
                                                          isolated_env: Path) -> None:
    listed = _mlpipe("dags", "list", "-o", "json", dags=dags)
    assert listed.returncode == 0, listed.stderr
    assert [d["dag_id"] for d in json.loads(listed.stdout)] == ["good"]
    assert "5 DAG file(s) failed to import" in listed.stderr

    errors = _mlpipe("dags", "list-import-errors", "-o", "json", dags=dags)
    assert errors.returncode == 0, errors.stderr
    rows = json.loads(errors.stdout)
    assert sorted(Path(r["filepath"]).name for r in rows) == sorted(BAD)
    assert all(set(r) == {"filepath", "error"} and r["error"] for r in rows)


def test_reading_commands_write_nothing_to_the_database(dags: Path,
                                                         isolated_env: Path) -> None:
    for args in (("dags", "list"), ("dags", "list-import-errors"), ("dags", "show", "good")):
        done = _mlpipe(*args, dags=dags)
        assert done.returncode == 0, done.stderr

    store = MetadataStore.open(f"sqlite:///{isolated_env / 'mlpipe.db'}")
    try:
        assert store.list_dags() == []
        assert store.import_errors() == {}
    finally:
        store.dispose()
