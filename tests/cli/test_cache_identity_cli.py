"""The step cache through the real CLI: a key belongs to one task and one function body.

Each run is ``mlpipe dags trigger DAG --wait`` in a subprocess against a persistent
MLPIPE_HOME, so a later run can hit what an earlier one recorded.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(180)

DAG_FILE = '''
from pathlib import Path
from mlpipe import DAG, task
from mlpipe.artifacts import open_store

JOURNAL = Path({journal!r})


def write(prefix, name, text):
    with JOURNAL.open("a") as fh:
        fh.write(name + "\\n")
    store = open_store(prefix)
    uri = prefix + name + ".txt"
    store.write_bytes(uri, text.encode())
    return store.describe(uri, "dataset")


with DAG("cache_identity", schedule=None) as dag:
    @task(cache=True)
    def make_a(n, artifact_prefix=None):
        return write(artifact_prefix, "a", "{body_a}" * n)

    @task(cache=True)
    def make_b(n, artifact_prefix=None):
        return write(artifact_prefix, "b", "B" * n)

    @task(cache=True)
    def double(n, artifact_prefix=None):
        return write(artifact_prefix, "d" + str(n), "D" * n)

    make_a(3)
    make_b(3)
    double.expand(n=[4, 4])
'''


def write_dag(folder: Path, journal: Path, body_a: str) -> None:
    (folder / "cache_identity.py").write_text(DAG_FILE.format(journal=str(journal),
                                                              body_a=body_a))


def mlpipe(home: Path, dags: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLPIPE_HOME": str(home), "MLPIPE_DAGS_FOLDER": str(dags),
           "MLPIPE_EXECUTOR": "sequential"}
    return subprocess.run([sys.executable, "-m", "mlpipe", *args], env=env, text=True,
                          capture_output=True, timeout=150, check=False)


def task_log(home: Path, run_id: str, task_id: str, map_index: int = -1) -> str:
    folder = home / "logs" / "dag_id=cache_identity" / f"run_id={run_id}" / f"task_id={task_id}"
    if map_index >= 0:
        folder = folder / f"map_index={map_index}"
    return "".join(p.read_text() for p in sorted(folder.glob("attempt=*.log")))


def trigger(home: Path, dags: Path, run_id: str) -> None:
    result = mlpipe(home, dags, "dags", "trigger", "cache_identity", "--wait",
                    "--run-id", run_id)
    assert result.returncode == 0, result.stdout + result.stderr


def journal_lines(journal: Path) -> list[str]:
    lines = journal.read_text().split() if journal.exists() else []
    journal.unlink(missing_ok=True)
    return sorted(lines)


def test_cache_keys_hold_the_task_and_its_function_body(tmp_path: Path,
                                                        isolated_env: Path) -> None:
    home, dags, journal = isolated_env, tmp_path / "dags", tmp_path / "journal"
    dags.mkdir()
    write_dag(dags, journal, "A")

    trigger(home, dags, "first")
    # make_b(3) has the same arguments as make_a(3) but is another function: it runs.
    # The two mapped instances of `double` (equal arguments) share a key: one ran, one hit.
    lines = journal_lines(journal)
    assert lines == ["a", "b", "d4"]
    assert "Cache hit" not in task_log(home, "first", "make_b")
    b_uri = f"{home}/artifacts/cache_identity/first/make_b/b.txt"
    assert Path(b_uri).read_text() == "BBB"

    trigger(home, dags, "second")  # nothing changed: every task is a hit
    assert journal_lines(journal) == []
    for task_id in ("make_a", "make_b"):
        assert "Cache hit" in task_log(home, "second", task_id)
    assert "make_b/b.txt" in task_log(home, "second", "make_b")
    assert "make_a/a.txt" not in task_log(home, "second", "make_b")
    assert "Cache hit" in task_log(home, "second", "double", 0)

    write_dag(dags, journal, "Z")  # make_a's body changed: a miss for make_a only
    trigger(home, dags, "third")
    assert journal_lines(journal) == ["a"]
    assert "Cache hit" not in task_log(home, "third", "make_a")
    assert "Cache hit" in task_log(home, "third", "make_b")
    assert (home / "artifacts/cache_identity/third/make_a/a.txt").read_text() == "ZZZ"
