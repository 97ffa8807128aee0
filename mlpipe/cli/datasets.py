"""``mlpipe datasets list``: datasets, their last update, producing tasks and consuming DAGs."""

from __future__ import annotations

import typer

from mlpipe.cli.common import DagsFolder, Output, fmt_time, open_engine
from mlpipe.cli.output import OutputFormat, guarded, print_rows

app = typer.Typer(help="Datasets (data-aware scheduling).", no_args_is_help=True)


@app.command("list")
@guarded
def list_datasets(dags_folder: DagsFolder = None,
                  output: Output = OutputFormat.table) -> None:
    """Every dataset the DAGs in the folder produce or consume, with its last update."""
    from mlpipe.scheduler.dataset_triggers import record_dataset_references

    engine = open_engine(dags_folder)
    record_dataset_references(engine.store, engine.dagbag().dags.values())
    rows = [{"uri": d.uri, "last_update": fmt_time(d.last_update), "events": d.events,
             "producing_tasks": d.producing_tasks if output is OutputFormat.json
             else ", ".join(d.producing_tasks),
             "consuming_dags": d.consuming_dags if output is OutputFormat.json
             else ", ".join(d.consuming_dags)}
            for d in engine.store.list_datasets()]
    print_rows(rows, ["uri", "last_update", "events", "producing_tasks", "consuming_dags"],
               output)
