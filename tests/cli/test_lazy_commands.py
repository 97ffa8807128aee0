"""The root command's table of lazily imported subcommands (``mlpipe.cli.main.COMMANDS``)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from mlpipe.cli.main import COMMANDS, app, load_command


def test_help_lists_every_command_with_its_one_line_help() -> None:
    done = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
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
