"""Entry point of the ``mlpipe`` command.

Subcommands are registered by name in ``COMMANDS`` and imported only when invoked: ``mlpipe
--help`` lists them from the table (no command module, no runtime, no SQLAlchemy imported)
and ``mlpipe dags list`` imports ``mlpipe.cli.dags`` alone. To add a command, add one line:
``"name": Lazy("mlpipe.cli.module:attribute", "One-line help.")``, where the attribute is a
``typer.Typer`` (a command group) or a function (one command).
"""

from __future__ import annotations

import importlib
import sys
from typing import Annotated, Any, NamedTuple

import typer
from typer.core import TyperCommand, TyperGroup

from mlpipe import __version__


class Lazy(NamedTuple):
    """A subcommand imported on first use: ``module:attribute`` and its one-line help."""

    target: str
    help: str


#: every subcommand, in the order ``mlpipe --help`` lists them (one line each)
COMMANDS: dict[str, Lazy] = {
    "dags": Lazy("mlpipe.cli.dags:app", "List, inspect and run DAGs."),
    "tasks": Lazy("mlpipe.cli.tasks:app", "Run and inspect task instances."),
    "scheduler": Lazy("mlpipe.cli.scheduling:scheduler",
                      "Run the scheduler: create due runs, run their tasks, until SIGTERM or "
                      "Ctrl-C."),
    "db": Lazy("mlpipe.cli.db:app", "Manage the metadata database."),
    "pools": Lazy("mlpipe.cli.scheduling:pools_app",
                  "Limit how many task instances run at once per pool."),
    "connections": Lazy("mlpipe.cli.connections:app",
                        "Manage connections to external systems (S3, databases...)."),
    "variables": Lazy("mlpipe.cli.variables:app",
                      "Manage variables (var.value.NAME / var.json.NAME in templates)."),
    "lineage": Lazy("mlpipe.cli.lineage:lineage",
                    "Print the chain from an artifact back to its sources (S3 objects with "
                    "ETags)."),
    "serve": Lazy("mlpipe.cli.serve:serve",
                  "Serve a model over HTTP: POST /predict, GET /health, GET /metadata, "
                  "POST /reload."),
    "ui": Lazy("mlpipe.cli.ui:ui",
               "Start the MLflow UI on the configured store (MLFLOW_TRACKING_URI or "
               "$MLPIPE_HOME)."),
    "demo": Lazy("mlpipe.cli.demo:demo",
                 "Run image_classifier end to end on a local S3-compatible server seeded "
                 "with digits."),
    "datasets": Lazy("mlpipe.cli.datasets:app", "Datasets (data-aware scheduling)."),
    "worker": Lazy("mlpipe.cli.worker:worker",
                   "Run a Celery worker for the celery executor until SIGTERM (running tries "
                   "finish)."),
    "webserver": Lazy("mlpipe.cli.web:webserver",
                      "Serve the web UI and the REST API (/api/v1) until SIGTERM or Ctrl-C."),
    "standalone": Lazy("mlpipe.cli.web:standalone",
                       "Scheduler (local executor), web server and MLflow UI together, until "
                       "Ctrl-C."),
    "users": Lazy("mlpipe.cli.users:app",
                  "Users of the web UI and REST API (roles viewer, op, admin)."),
}


def load_command(name: str, entry: Lazy) -> Any:
    """The click command of ``entry``: its module imported now (the one import by name)."""
    module, _, attribute = entry.target.partition(":")
    target = getattr(importlib.import_module(module), attribute)
    if isinstance(target, typer.Typer):
        target.info.name = name
        return typer.main.get_group(target)
    single = typer.Typer(add_completion=False)
    single.command(name, help=entry.help if not target.__doc__ else None)(target)
    return typer.main.get_command(single)


class LazyGroup(TyperGroup):
    """The root group: commands from ``COMMANDS``, each imported when it is invoked.

    While help is being written, ``get_command`` answers with a stand-in carrying only the
    name and help from the table, so listing the commands imports none of them.
    """

    listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return [*COMMANDS, *(n for n in self.commands if n not in COMMANDS)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        if self.listing:
            return TyperCommand(name=cmd_name, help=entry.help)
        command = self.commands[cmd_name] = load_command(cmd_name, entry)
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        # Plain text here: Typer's rich help imports rich, markdown-it and pygments, half of
        # what `mlpipe --help` cost; each command's own --help keeps the rich layout
        self.listing, markup = True, self.rich_markup_mode
        self.rich_markup_mode = None
        try:
            super().format_help(ctx, formatter)
        finally:
            self.listing, self.rich_markup_mode = False, markup


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
    cls=LazyGroup,
    help="ML training pipelines as Airflow-style DAGs, tracked in MLflow.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"max_content_width": 120},  # the plain root help: one line a command
)


def _version(value: bool) -> None:
    if value:
        print(f"mlpipe {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit")] = False,
) -> None:
    """mlpipe: Airflow's DAG semantics for ML training pipelines."""
    from mlpipe.cli.output import State

    State.verbose = verbose


def main() -> None:
    code = fast_dags_list(sys.argv[1:])
    if code is not None:
        raise SystemExit(code)
    app()


def fast_dags_list(argv: list[str]) -> int | None:
    """Run ``mlpipe [-v] dags list [-d DIR] [-o table|json] [--reparse]`` without Typer's
    parameter machinery and return its exit code; None for any other command line (Typer
    then parses it, with its help and its usage errors).

    Typer 0.29 coerces every parameter through a pydantic ``TypeAdapter``: importing pydantic
    and building them cost ``dags list`` more than the listing itself (0.15 to 0.45 s).
    """
    verbose = False
    while argv[:1] in (["-v"], ["--verbose"]):
        verbose, argv = True, argv[1:]
    if argv[:2] != ["dags", "list"]:
        return None
    values: dict[str, str] = {}
    reparse = False
    rest = argv[2:]
    while rest:
        arg, rest = rest[0], rest[1:]
        if arg == "--reparse":
            reparse = True
            continue
        name, equals, value = arg.partition("=")
        key = {"-d": "dags_folder", "--dags-folder": "dags_folder", "-o": "output",
               "--output": "output"}.get(name)
        if key is None or key in values or (equals and not name.startswith("--")):
            return None
        if not equals:
            if not rest:
                return None
            value, rest = rest[0], rest[1:]
        if not value or value.startswith("-"):
            return None
        values[key] = value
    if values.get("output", "table") not in ("table", "json"):
        return None
    from pathlib import Path

    from mlpipe.cli.dags import list_dags
    from mlpipe.cli.output import OutputFormat, State

    State.verbose = verbose
    folder = values.get("dags_folder")
    try:
        list_dags(dags_folder=Path(folder) if folder else None,
                  output=OutputFormat(values.get("output", "table")), reparse=reparse)
    except typer.Exit as exc:
        return exc.exit_code
    return 0
