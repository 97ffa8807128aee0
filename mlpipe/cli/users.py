"""``mlpipe users create|list|delete|token``: who may use the web UI and REST API.

Passwords come from ``--password-stdin`` or a prompt that does not echo; they are stored
only as argon2 hashes and never printed or logged. A token is printed once, at creation.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from mlpipe.cli.common import Output, open_engine
from mlpipe.cli.output import OutputFormat, console, guarded, print_rows
from mlpipe.errors import UserError

app = typer.Typer(help="Users of the web UI and REST API (roles viewer, op, admin).",
                  no_args_is_help=True)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline(4096)
        password = line.rstrip("\r\n")
        if not password:
            raise UserError("--password-stdin: standard input held no password")
        return password
    if not sys.stdin.isatty():
        raise UserError("no terminal to prompt for the password: pass --password-stdin and "
                        "pipe it in")
    first = typer.prompt("Password", hide_input=True)
    if typer.prompt("Repeat the password", hide_input=True) != first:
        raise UserError("the two passwords differ; nothing was created")
    return str(first)


@app.command("create")
@guarded
def create(
    name: str,
    role: Annotated[str, typer.Option("--role", "-r", help="viewer, op or admin")] = "viewer",
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from the first line of stdin")] = False,
) -> None:
    """Create a user (the password is prompted for, or read with --password-stdin)."""
    from mlpipe.web.accounts import create_user
    from mlpipe.web.passwords import check_name, check_password, role_rank

    check_name(name)
    role_rank(role)
    password = check_password(_read_password(password_stdin))
    engine = open_engine(None, check_folder=False)
    create_user(engine.store, name, role, password)
    console.print(f"user {name} created with role {role}", markup=False)


@app.command("list")
@guarded
def list_users(output: Output = OutputFormat.table) -> None:
    """Users and their roles (never a password or hash)."""
    engine = open_engine(None, check_folder=False)
    rows = [{"name": u.name, "role": u.role,
             "created_at": u.created_at.isoformat(timespec="seconds")}
            for u in engine.store.list_users()]
    print_rows(rows, ["name", "role", "created_at"], output)


@app.command("delete")
@guarded
def delete(name: str) -> None:
    """Delete a user and its API tokens."""
    from mlpipe.web.accounts import delete_user

    engine = open_engine(None, check_folder=False)
    delete_user(engine.store, name)
    console.print(f"user {name} deleted", markup=False)


@app.command("token")
@guarded
def token(name: str) -> None:
    """Print a new API token for NAME (send it as 'Authorization: Bearer TOKEN')."""
    from mlpipe.web.accounts import issue_token

    engine = open_engine(None, check_folder=False)
    typer.echo(issue_token(engine.store, name))
