"""Entry point of the ``mlpipe`` command."""

from __future__ import annotations

from typing import Annotated

import typer

from mlpipe import __version__
from mlpipe.cli import (
    connections,
    dags,
    datasets,
    db,
    demo,
    lineage,
    scheduling,
    serve,
    tasks,
    ui,
    users,
    variables,
    web,
    worker,
)
from mlpipe.cli.output import State, console


def _hide_flag_types() -> None:
    """Typer 0.29's rich help shows ``<bool>`` beside every flag (``--wait``, ``--help``):
    a flag takes no value, so show none, as click's plain help does."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: typer.Context) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_hide_flag_types()

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
app.add_typer(users.app, name="users")
app.add_typer(datasets.app, name="datasets")
app.command("scheduler")(scheduling.scheduler)
app.command("ui")(ui.ui)
app.command("lineage")(lineage.lineage)
app.command("demo")(demo.demo)
app.command("serve")(serve.serve)
app.command("webserver")(web.webserver)
app.command("standalone")(web.standalone)
app.command("worker")(worker.worker)


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
