"""Listing and inspecting commands: validation, limits, order, formats."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DIAMOND = """
from datetime import datetime
from mlpipe import DAG
from mlpipe.operators import BashOperator, EmptyOperator

with DAG("diamond", schedule="@daily", start_date=datetime(2026, 1, 1), catchup=False) as dag:
    a, b, c = EmptyOperator(task_id="a"), EmptyOperator(task_id="b"), EmptyOperator(task_id="c")
    d = BashOperator(task_id="d", bash_command="echo hello from d")
    a >> [b, c]
    [b, c] >> d
"""


@pytest.fixture
def dags(tmp_path: Path) -> Path:
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "diamond.py").write_text(DIAMOND)
    return folder


def mlpipe(*args: str, dags: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLPIPE_DAGS_FOLDER": str(dags), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "mlpipe", *args], env=env, text=True,
                          capture_output=True, timeout=120)


def test_list_runs_refuses_an_unknown_state_in_one_line(dags: Path) -> None:
    done = mlpipe("dags", "list-runs", "diamond", "--state", "bogus", dags=dags)

    assert done.returncode == 1
    assert done.stderr.strip() == ("error: --state 'bogus' is not a run state; valid: "
                                   "['queued', 'running', 'success', 'failed']")


def test_list_runs_limit_keeps_the_newest(dags: Path) -> None:
    for n in range(3):
        assert mlpipe("dags", "trigger", "diamond", "--run-id", f"r{n}",
                      "--logical-date", f"2026-02-0{n + 1}", "--no-wait",
                      dags=dags).returncode == 0
    done = mlpipe("dags", "list-runs", "diamond", "--limit", "2", "-o", "json", dags=dags)

    assert done.returncode == 0, done.stderr
    assert [r["run_id"] for r in json.loads(done.stdout)] == ["r1", "r2"]
    assert mlpipe("dags", "list-runs", "diamond", "--limit", "0", dags=dags).returncode == 2


def test_show_and_tasks_list_put_the_join_after_both_branches(dags: Path) -> None:
    shown = mlpipe("dags", "show", "diamond", dags=dags)
    assert shown.returncode == 0, shown.stderr
    lines = [line for line in shown.stdout.splitlines() if "<" in line]
    order = [line.split()[1] for line in lines]
    assert order.index("d") > max(order.index("b"), order.index("c"))
    assert "after b, c" in shown.stdout

    listed = mlpipe("tasks", "list", "diamond", "-o", "json", dags=dags)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert rows[0]["task_id"] == "a" and rows[-1]["task_id"] == "d"
    assert rows[-1]["upstream"] == "b,c"


def test_dags_test_prints_each_task_log(dags: Path) -> None:
    done = mlpipe("dags", "test", "diamond", "2026-03-01", dags=dags)

    assert done.returncode == 0, done.stderr
    assert "hello from d" in done.stdout
    assert "hello from d" not in mlpipe("dags", "test", "diamond", "2026-03-01",
                                        "--no-show-logs", dags=dags).stdout


def test_next_execution_lists_the_next_logical_dates(dags: Path) -> None:
    assert mlpipe("dags", "trigger", "diamond", "--no-wait", dags=dags).returncode == 0
    done = mlpipe("dags", "next-execution", "diamond", "-n", "3", dags=dags)

    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2026-01-01T00:00:00+00:00", "2026-01-02T00:00:00+00:00",
                                   "2026-01-03T00:00:00+00:00"]


def test_lineage_takes_output_json_like_the_other_listings(dags: Path) -> None:
    done = mlpipe("lineage", "file:///nowhere/x", "-o", "json", dags=dags)

    assert done.returncode == 1
    assert done.stderr.startswith("error: ") and len(done.stderr.strip().splitlines()) == 1


def test_dags_delete_removes_runs_after_confirmation(dags: Path) -> None:
    assert mlpipe("dags", "test", "diamond", dags=dags).returncode == 0
    assert mlpipe("dags", "trigger", "diamond", "--run-id", "r1", dags=dags).returncode == 0

    refused = subprocess.run([sys.executable, "-m", "mlpipe", "dags", "delete", "diamond"],
                             env={**os.environ, "MLPIPE_DAGS_FOLDER": str(dags)}, text=True,
                             capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
    assert refused.returncode == 1
    assert refused.stderr.strip() == ("error: deleting DAG 'diamond' removes all its runs: "
                                      "pass --yes to confirm")

    done = mlpipe("dags", "delete", "diamond", "--yes", dags=dags)
    assert done.returncode == 0, done.stderr
    assert "deleted DAG diamond and its 1 run(s)" in done.stdout
    assert json.loads(mlpipe("dags", "list-runs", "diamond", "-o", "json", dags=dags).stdout
                      ) == []
    assert (dags / "diamond.py").exists()


def test_help_shows_no_type_beside_flags(dags: Path) -> None:
    for args in (("dags", "trigger"), ("tasks", "clear"), ("dags", "test")):
        done = mlpipe(*args, "--help", dags=dags)
        assert done.returncode == 0
        assert "<bool>" not in done.stdout, done.stdout
    assert "<int range>" in mlpipe("dags", "list-runs", "--help", dags=dags).stdout  # values
