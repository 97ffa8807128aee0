"""``mlpipe dags ...``: list and test DAGs of the dags folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from mlpipe.cli.output import OutputFormat, console, err_console, guarded, print_rows
from mlpipe.errors import DagDefinitionError
from mlpipe.runtime.dagbag import DagBag, load_dagbag
from mlpipe.settings import load_settings

app = typer.Typer(help="List, inspect and run DAGs.", no_args_is_help=True)

DagsFolder = Annotated[
    Path | None,
    typer.Option("--dags-folder", "-d", help="Folder of DAG files [env: MLPIPE_DAGS_FOLDER]"),
]
Output = Annotated[OutputFormat, typer.Option("--output", "-o", help="table or json")]


def open_dagbag(dags_folder: Path | None) -> DagBag:
    folder = dags_folder or load_settings().dags_folder
    if not folder.is_dir():
        raise DagDefinitionError(
            f"dags folder {str(folder)!r} does not exist; pass --dags-folder or set "
            "MLPIPE_DAGS_FOLDER"
        )
    return load_dagbag(folder)


def _schedule_text(schedule: Any) -> str | None:
    return None if schedule is None else str(schedule)


@app.command("list")
@guarded
def list_dags(dags_folder: DagsFolder = None, output: Output = OutputFormat.table) -> None:
    """List the DAGs in the dags folder, and files that failed to import."""
    bag = open_dagbag(dags_folder)
    rows = [
        {"dag_id": d.dag_id, "fileloc": d.fileloc, "schedule": _schedule_text(d.schedule),
         "tasks": len(d.task_dict), "tags": ",".join(d.tags)}
        for d in sorted(bag.dags.values(), key=lambda d: d.dag_id)
    ]
    print_rows(rows, ["dag_id", "schedule", "tasks", "tags", "fileloc"], output)
    for path, error in sorted(bag.import_errors.items()):
        err_console.print(f"[yellow]import error[/] {path}: {error}", markup=True)


@app.command("test")
@guarded
def test_dag(
    dag_id: Annotated[str, typer.Argument(help="The DAG to run")],
    logical_date: Annotated[str | None, typer.Argument(help="ISO date; default now")] = None,
    conf: Annotated[str | None, typer.Option("--conf", "-c", help="JSON object")] = None,
    dags_folder: DagsFolder = None,
) -> None:
    """Run every task of a DAG in this process and print each task instance's state."""
    run_conf = parse_conf(conf)
    bag = open_dagbag(dags_folder)
    dag = bag.get_dag(dag_id)
    run = dag.test(logical_date=logical_date, conf=run_conf)
    rows = [
        {"task_id": ti.task_id, "map_index": ti.map_index, "state": ti.state.value,
         "try_number": ti.try_number,
         "duration": f"{ti.duration.total_seconds():.3f}s" if ti.duration else None,
         "error": ti.error}
        for ti in run.task_instances
    ]
    print_rows(rows, ["task_id", "map_index", "state", "try_number", "duration", "error"],
               OutputFormat.table, title=f"{dag_id} {run.run_id}")
    for ti in run.task_instances:
        if ti.error:
            index = f"[{ti.map_index}]" if ti.map_index >= 0 else ""
            err_console.print(f"{ti.task_id}{index} failed: {ti.error}", markup=False)
    style = "green" if run.state.value == "success" else "red"
    console.print(f"DAG run {run.run_id}: [{style}]{run.state.value}[/]", markup=True)
    if run.state.value != "success":
        raise typer.Exit(1)


def parse_conf(conf: str | None) -> dict[str, Any] | None:
    """``--conf`` as a dict; malformed JSON or a non-object is one clear error."""
    if conf is None:
        return None
    try:
        value = json.loads(conf)
    except json.JSONDecodeError as exc:
        raise DagDefinitionError(f"--conf is not valid JSON: {exc.msg} at position {exc.pos}"
                                 ) from None
    if not isinstance(value, dict):
        raise DagDefinitionError(f"--conf must be a JSON object, got {type(value).__name__}")
    return value
