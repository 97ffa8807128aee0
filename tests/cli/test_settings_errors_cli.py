"""An unknown ``MLPIPE_EXECUTOR`` (``dask``) stops every command that loads settings: one
line naming the variable, the bad value and the known names, exit 1, no traceback, nothing
created (it used to be accepted and runs stayed queued forever)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlpipe.cli.main import app
from mlpipe.settings import KNOWN_EXECUTORS

pytestmark = pytest.mark.timeout(120)

LINE = (f"error: setting MLPIPE_EXECUTOR: unknown executor 'dask'; "
        f"valid: {list(KNOWN_EXECUTORS)}")

COMMANDS = [
    "scheduler", "ui", "demo", "lineage file:///x", "serve models:/m/1",
    "dags list", "dags show d", "dags test d", "dags trigger d", "dags trigger d --wait",
    "dags list-runs d", "dags pause d", "dags unpause d",
    "dags backfill d -s 2024-01-01 -e 2024-01-02",
    "tasks run d t r", "tasks test d t", "tasks states d r", "tasks logs d r t",
    "tasks clear d", "db migrate", "db reset --yes", "pools set p 1", "pools list",
    "pools delete p", "connections add c --conn-uri sqlite:///x", "connections get c",
    "connections list", "connections delete c", "connections test c", "variables set k v",
    "variables get k", "variables list", "variables delete k",
]


@pytest.fixture
def bad_executor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "fresh_home"
    monkeypatch.setenv("MLPIPE_HOME", str(home))
    monkeypatch.setenv("MLPIPE_DAGS_FOLDER", str(tmp_path))
    monkeypatch.setenv("MLPIPE_EXECUTOR", "dask")
    return home


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_refuses_an_unknown_executor(bad_executor: Path, command: str) -> None:
    result = CliRunner().invoke(app, command.split())
    assert result.exit_code == 1, result.output
    assert result.output.splitlines() == [LINE]
    assert not bad_executor.exists()  # nothing created: no database, no folders


@pytest.mark.parametrize("command", ["dags trigger d --wait", "scheduler"])
def test_the_installed_cli_says_it_in_one_line(bad_executor: Path, command: str) -> None:
    result = subprocess.run([sys.executable, "-m", "mlpipe", *command.split()],
                            env=dict(os.environ), capture_output=True, text=True,
                            timeout=90, check=False)
    assert result.returncode == 1
    assert (result.stdout + result.stderr).splitlines() == [LINE]
    assert "Traceback" not in result.stderr
    assert not bad_executor.exists()
