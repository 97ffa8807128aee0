"""``mlpipe datasets list`` and bad dataset definitions, through the real command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PIPES = '''
from mlpipe import DAG, Dataset
from mlpipe.operators import EmptyOperator

RAW = Dataset("s3://lake/raw/")
with DAG("ingest") as ingest:
    EmptyOperator(task_id="land", outlets=[RAW])
with DAG("train", schedule=[RAW, Dataset("file:///labels.csv")]) as train:
    EmptyOperator(task_id="fit")
'''

BAD = '''
from mlpipe import DAG, Dataset
with DAG("bad", schedule=[Dataset("s3://lake/my images/")]) as dag:
    pass
'''


def mlpipe(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLPIPE_HOME": str(tmp_path / "home"),
           "MLPIPE_DAGS_FOLDER": str(tmp_path / "dags"), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "mlpipe", *args], env=env, text=True,
                          capture_output=True, timeout=120)


def test_list_shows_producers_consumers_and_no_update_yet(tmp_path: Path) -> None:
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "pipes.py").write_text(PIPES)
    done = mlpipe(tmp_path, "datasets", "list", "-o", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [
        {"uri": "file:///labels.csv", "last_update": None, "events": 0,
         "producing_tasks": [], "consuming_dags": ["train"]},
        {"uri": "s3://lake/raw/", "last_update": None, "events": 0,
         "producing_tasks": ["ingest.land"], "consuming_dags": ["train"]},
    ]
    table = mlpipe(tmp_path, "datasets", "list")
    assert table.returncode == 0 and "ingest.land" in table.stdout


def test_a_bad_dataset_is_an_import_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "bad.py").write_text(BAD)
    done = mlpipe(tmp_path, "dags", "list-import-errors", "-o", "json")
    assert done.returncode == 0, done.stderr
    [error] = json.loads(done.stdout)
    assert "dataset 's3://lake/my images/': the URI contains whitespace" in error["error"]


def test_a_missing_dags_folder_is_one_line_and_exit_1(tmp_path: Path) -> None:
    done = mlpipe(tmp_path, "datasets", "list")
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "does not exist" in done.stderr


def test_dags_list_shows_a_dataset_schedule_by_its_uris(tmp_path: Path) -> None:
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "pipes.py").write_text(PIPES)
    done = mlpipe(tmp_path, "dags", "list", "-o", "json")
    assert done.returncode == 0, done.stderr
    schedules = {d["dag_id"]: d["schedule"] for d in json.loads(done.stdout)}
    assert schedules == {"ingest": None,
                         "train": "datasets: s3://lake/raw/ and file:///labels.csv"}
