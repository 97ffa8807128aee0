"""Run ids become path segments: ``--run-id ../../x`` is refused before anything is written,
and no log or artifact path can leave its root."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlpipe import DAG
from mlpipe.core.ids import validate_run_id
from mlpipe.errors import InvalidTaskIdError
from mlpipe.runtime.log_paths import log_dir, log_folder
from mlpipe.store.entities import TIKey

pytestmark = pytest.mark.timeout(120)

DAGS = Path(__file__).resolve().parents[1] / "dags" / "engine"


def files_under(root: Path, skip: Path) -> set[Path]:
    return {p for p in root.rglob("*") if not p.is_relative_to(skip)}


@pytest.mark.parametrize("run_id", ["../../x", "..", "a/b", "%2e%2e", "x" * 251, ""])
@pytest.mark.parametrize("wait", ["--wait", "--no-wait"])
def test_trigger_refuses_a_bad_run_id_and_writes_nothing_outside_home(
        tmp_path: Path, run_id: str, wait: str) -> None:
    home = tmp_path / "a" / "b" / "home"
    home.mkdir(parents=True)
    before = files_under(tmp_path, home)
    env = {**os.environ, "MLPIPE_HOME": str(home), "MLPIPE_DAGS_FOLDER": str(DAGS),
           "MLPIPE_EXECUTOR": "sequential"}
    result = subprocess.run([sys.executable, "-m", "mlpipe", "dags", "trigger", "cli_demo",
                             "--run-id", run_id, wait], env=env, capture_output=True,
                            text=True, timeout=90, check=False)
    output = (result.stdout + result.stderr).splitlines()
    assert result.returncode == 1, output
    assert output == [f"error: invalid run_id {run_id!r}: use only ASCII letters, digits and "
                      "'_', '.', '~', ':', '+', '-', at most 250 characters, no '..'"]
    assert files_under(tmp_path, home) == before
    assert not (home / "logs").exists()


@pytest.mark.parametrize("run_id", ["manual__2024-01-31T02:00:00+00:00",
                                    "scheduled__2024-01-01T00:00:00.123456+00:00",
                                    "my.run~1", "backfill__x-y_z"])
def test_airflow_style_run_ids_are_accepted(run_id: str) -> None:
    assert validate_run_id(run_id) == run_id


@pytest.mark.parametrize("dag_id", [".", "..", "..."])
def test_ids_made_only_of_dots_are_refused(dag_id: str) -> None:
    with pytest.raises(InvalidTaskIdError, match=r"invalid dag_id .*not only dots"):
        DAG(dag_id)


def test_a_stored_run_id_with_a_separator_never_becomes_a_log_path(tmp_path: Path) -> None:
    # Run ids stored before they were checked may hold '/': refused, not followed.
    key = TIKey("cli_demo", "../../../../escaped", "hello", -1)
    with pytest.raises(InvalidTaskIdError, match=r"invalid run_id '\.\./\.\./\.\./\.\./escaped'"):
        log_folder(str(tmp_path / "logs"), key)
    with pytest.raises(InvalidTaskIdError, match=r"invalid run_id '\.\./\.\./\.\./\.\./escaped'"):
        log_dir(tmp_path / "logs", key)


def test_a_log_folder_behind_a_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    logs, elsewhere = tmp_path / "logs", tmp_path / "elsewhere"
    elsewhere.mkdir()
    logs.mkdir()
    (logs / "dag_id=cli_demo").symlink_to(elsewhere, target_is_directory=True)
    key = TIKey("cli_demo", "r1", "hello", -1)
    with pytest.raises(InvalidTaskIdError, match="outside the logs root"):
        log_dir(logs, key)
    assert log_dir(logs, TIKey("other", "r1", "hello", 2)) == (
        logs / "dag_id=other" / "run_id=r1" / "task_id=hello" / "map_index=2")
