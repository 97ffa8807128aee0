"""Entry point of the ``mlpipe`` command."""

from __future__ import annotations

from typing import Annotated

import typer

from mlpipe import __version__
from mlpipe.cli import (
    connections,
    dags,
    db,
    demo,
    lineage,
    scheduling,
    serve,
    tasks,
    ui,
    variables,
)
from mlpipe.cli.output import State, console

app = typer.Typer(
    name="mlpipe",
    help="ML training pipelines as Airflow-style DAGs, tracked in MLflow.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(dags.app, name="dags")
app.add_typer(tasks.app, name="tasks")
app.add_typer(db.app, name="db")
app.add_typer(scheduling.pools_app, name="pools")
app.add_typer(connections.app, name="connections")
app.add_typer(variables.app, name="variables")
app.command("scheduler")(scheduling.scheduler)
app.command("ui")(ui.ui)
app.command("lineage")(lineage.lineage)
app.command("demo")(demo.demo)
app.command("serve")(serve.serve)


def _version(value: bool) -> None:
    if value:
        console.print(f"mlpipe {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit")] = False,
) -> None:
    """mlpipe: Airflow's DAG semantics for ML training pipelines."""
    State.verbose = verbose


def main() -> None:
    app()
