"""``mlpipe db ...``: create, upgrade or reset the metadata database."""

from __future__ import annotations

from typing import Annotated

import typer

from mlpipe.cli.output import console, guarded
from mlpipe.connections.keyfile import ensure_private_dir
from mlpipe.errors import StoreError
from mlpipe.settings import load_settings
from mlpipe.store import database

app = typer.Typer(help="Manage the metadata database.", no_args_is_help=True)


@app.command("migrate")
@guarded
def migrate() -> None:
    """Create the schema, or upgrade it to the newest revision."""
    settings = load_settings()
    ensure_private_dir(settings.home)
    engine = database.make_engine(settings.database)
    before = database.current_revision(engine)
    after = database.migrate(engine)
    state = "already at" if before == after else f"migrated from {before or 'empty'} to"
    console.print(f"{engine.url.render_as_string(hide_password=True)}: {state} revision {after}")


@app.command("reset")
@guarded
def reset(yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask")] = False) -> None:
    """Drop every table and recreate the schema (all runs and history are lost)."""
    settings = load_settings()
    if not yes:
        raise StoreError("'db reset' deletes every run and task instance; add --yes to confirm")
    ensure_private_dir(settings.home)
    engine = database.make_engine(settings.database)
    database.reset(engine)
    console.print(f"{engine.url.render_as_string(hide_password=True)}: reset to revision "
                  f"{database.head_revision()}")
