"""The root command's table of lazily imported subcommands (``mlpipe.cli.main.COMMANDS``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlpipe.cli.main import COMMANDS, app, load_command


def test_help_lists_every_command_with_its_one_line_help() -> None:
    done = CliRunner().invoke(app, ["--help"], terminal_width=200)
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    for name, entry in COMMANDS.items():
        assert any(name in line and entry.help in line for line in lines), (name, done.output)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_table_help_is_the_command_s_own(name: str) -> None:
    # the table must not drift from the docstrings and Typer(help=...) of the commands
    command = load_command(name, COMMANDS[name])
    assert command.name == name
    assert (command.help or "").strip().splitlines()[0] == COMMANDS[name].help


def test_a_command_loads_when_invoked() -> None:
    done = CliRunner().invoke(app, ["pools", "--help"])
    assert done.exit_code == 0, done.output
    assert "Create or resize a pool" in done.output


def test_an_unknown_command_is_one_error_and_a_non_zero_exit() -> None:
    done = CliRunner().invoke(app, ["nope"])
    assert done.exit_code == 2
    assert "No such command 'nope'" in done.output


def test_dags_list_on_a_fresh_home_leaves_no_database_behind(tmp_path: Path) -> None:
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "one.py").write_text(
        "from mlpipe import DAG\nfrom mlpipe.operators import EmptyOperator\n"
        "with DAG('fresh_one') as dag:\n    EmptyOperator(task_id='a')\n")
    home = tmp_path / "home"
    env = {"MLPIPE_HOME": str(home), "MLPIPE_DATABASE_URL": None, "COLUMNS": "200"}

    done = CliRunner().invoke(app, ["dags", "list", "-d", str(folder), "-o", "json"], env=env)

    assert done.exit_code == 0, done.output
    assert json.loads(done.output)[0]["dag_id"] == "fresh_one"
    assert not (home / "mlpipe.db").exists()
    assert not (home / "mlpipe.db.migrate.lock").exists()
    # once a command that writes made the database, the listing reads it (pause flags)
    assert CliRunner().invoke(app, ["dags", "pause", "fresh_one", "-d", str(folder)],
                              env=env).exit_code == 0
    listed = CliRunner().invoke(app, ["dags", "list", "-d", str(folder), "-o", "json"], env=env)
    assert json.loads(listed.output)[0]["is_paused"] is True
