"""``mlpipe dags list`` and ``mlpipe dags test`` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlpipe import __version__
from mlpipe.cli.main import app

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def dags_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "pipelines"
    folder.mkdir()
    (folder / "good.py").write_text(textwrap.dedent("""
        from mlpipe import DAG, task
        from mlpipe.operators import BashOperator

        with DAG("good", tags=["demo"]) as dag:
            @task
            def one():
                return 1

            @task
            def fail_if(x, params=None):
                if params.get("fail"):
                    raise ValueError("asked to fail")
                return x

            fail_if(one()) >> BashOperator(task_id="echo", bash_command="echo {{ ds }}")
    """))
    (folder / "broken.py").write_text("import mlpipe\n\nx = 1 / 0\n")
    return folder


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"mlpipe {__version__}"


def test_dags_list_shows_dags_and_import_errors(runner: CliRunner, dags_folder: Path) -> None:
    result = runner.invoke(app, ["dags", "list", "--dags-folder", str(dags_folder)])
    assert result.exit_code == 0, result.output
    assert "good" in result.output
    assert "1 DAG file(s) failed to import: see 'mlpipe dags list-import-errors'" in \
        result.output
    errors = runner.invoke(app, ["dags", "list-import-errors", "-d", str(dags_folder),
                                 "-o", "json"])
    assert errors.exit_code == 0, errors.output
    [row] = json.loads(errors.stdout)
    assert Path(row["filepath"]).name == "broken.py"
    assert row["error"] == "ZeroDivisionError: division by zero (line 3)"


def test_dags_list_json(runner: CliRunner, dags_folder: Path) -> None:
    result = runner.invoke(app, ["dags", "list", "-d", str(dags_folder), "-o", "json"])
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert [r["dag_id"] for r in rows] == ["good"]
    assert rows[0]["tasks"] == 3
    assert rows[0]["tags"] == "demo"


def test_dags_folder_from_environment(runner: CliRunner, dags_folder: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPIPE_DAGS_FOLDER", str(dags_folder))
    result = runner.invoke(app, ["dags", "list", "-o", "json"])
    assert [r["dag_id"] for r in json.loads(result.stdout)] == ["good"]


def test_dags_test_success_prints_states(runner: CliRunner, dags_folder: Path) -> None:
    result = runner.invoke(app, ["dags", "test", "good", "2024-03-05", "-d", str(dags_folder)])
    assert result.exit_code == 0, result.output
    rows = [[cell.strip() for cell in line.split("│")[1:-1]]
            for line in result.output.splitlines() if line.startswith("│ ")]
    assert {row[0]: row[2] for row in rows} == {  # one row per task (the header uses ┃)
        "one": "success", "fail_if": "success", "echo": "success"}
    assert result.output.splitlines()[-1] == "DAG run manual__2024-03-05T00:00:00+00:00: success"
    assert "manual__2024-03-05T00:00:00+00:00" in result.output


def test_dags_test_failure_exits_non_zero(runner: CliRunner, dags_folder: Path) -> None:
    result = runner.invoke(app, ["dags", "test", "good", "--conf", '{"fail": true}',
                                 "-d", str(dags_folder)])
    assert result.exit_code == 1
    assert "ValueError: asked to fail" in result.output
    assert "upstream_failed" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["dags", "test", "nope"], "DAG 'nope' not found; known: ['good']"),
        (["dags", "test", "goood"], "did you mean 'good'?"),
        (["dags", "test", "good", "--conf", "{bad"], "--conf is not valid JSON"),
        (["dags", "test", "good", "--conf", "[1]"], "--conf must be a JSON object, got list"),
        (["dags", "test", "good", "31/12/2024"], "logical date '31/12/2024' is not an ISO"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(runner: CliRunner, dags_folder: Path,
                                          args: list[str], message: str) -> None:
    result = runner.invoke(app, [*args, "-d", str(dags_folder)])
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_missing_dags_folder(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["dags", "list", "-d", str(tmp_path / "missing")])
    assert result.exit_code == 1
    assert "does not exist" in result.output


def test_verbose_shows_traceback(runner: CliRunner, dags_folder: Path) -> None:
    result = runner.invoke(app, ["--verbose", "dags", "test", "nope", "-d", str(dags_folder)])
    assert result.exit_code == 1
    assert "Traceback" in result.output


def test_console_script_runs_the_readme_example() -> None:
    """The README's documented command, through the installed ``mlpipe`` script."""
    script = Path(sys.executable).parent / "mlpipe"
    result = subprocess.run(
        [str(script), "dags", "test", "example_etl", "2024-01-01",
         "--dags-folder", str(REPO / "examples")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = {line.split("│")[1].strip(): line for line in result.stdout.splitlines()
             if line.count("│") > 3}
    assert "skipped" in lines["alert"]
    assert "success" in lines["report"]
    assert "success" in result.stdout.splitlines()[-1]
