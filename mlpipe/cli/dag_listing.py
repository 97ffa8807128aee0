"""What ``mlpipe dags list`` prints: the recorded DAGs while no file changed, else a parse.

The fast path imports neither the engine nor SQLAlchemy and parses nothing: it stats the
folder's DAG files and, when every stamp (mtime, size) equals the one recorded at the last
parse (by the scheduler or a previous listing), reads the DAG rows with ``sqlite3``. A new,
removed or changed file, ``--reparse``, or a database that is not SQLite takes the engine's
path: the folder parsed (each file tried in a child process) and the listing recorded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlpipe.cli.common import fresh_home
from mlpipe.runtime.dag_files import folder_stamps
from mlpipe.settings import Settings

Row = dict[str, Any]


def list_folder(settings: Settings, *, reparse: bool = False) -> tuple[list[Row], int]:
    """The rows to print (sorted by dag_id) and how many DAG files failed to import."""
    folder = settings.dags_folder
    if fresh_home(settings):  # nothing recorded yet: parse, and leave no empty database
        return _parse(settings, record=False)
    url = settings.database
    if not reparse and url.startswith("sqlite:///"):
        from mlpipe.store.dag_listing import read_sqlite_listing

        recorded = read_sqlite_listing(Path(url.removeprefix("sqlite:///")))
        stamps = folder_stamps(folder)
        if recorded is not None and (dags := recorded.current(stamps)) is not None:
            rows = [_row(d.dag_id, d.is_paused, d.schedule, d.task_count, d.tags, d.fileloc)
                    for d in dags]
            errors = sum(1 for f in recorded.import_errors if f in stamps)
            return rows, errors
    return _parse(settings, record=True, reparse=reparse)


def _parse(settings: Settings, *, record: bool, reparse: bool = True
           ) -> tuple[list[Row], int]:
    """Parse the folder; with ``record``, read/record the listing in the metadata database."""
    from mlpipe.runtime.dagbag import DagFolderWatcher
    from mlpipe.scheduler.runs import schedule_text

    paused: dict[str, bool] = {}
    if record:
        from mlpipe.scheduler.service import Engine

        engine = Engine.from_settings(settings)
        if not reparse:  # another database than SQLite: its recorded listing, if current
            recorded = engine.store.recorded_listing()
            dags = recorded.current(folder_stamps(settings.dags_folder))
            if dags is not None:
                return ([_row(d.dag_id, d.is_paused, d.schedule, d.task_count, d.tags,
                              d.fileloc) for d in dags],
                        sum(1 for f in recorded.import_errors if f in recorded.files))
    watcher = DagFolderWatcher(settings.dags_folder,
                               parse_timeout=settings.dag_parse_timeout_s)
    watcher.refresh()
    bag = watcher.bag
    if record:
        from mlpipe.scheduler.runs import record_dags, record_listing

        record_dags(engine.store, bag.dags.values(),
                    paused_by_default=settings.dags_paused_at_creation)
        record_listing(engine.store, bag.dags.values(), watcher.stamps())
        engine.store.replace_import_errors(bag.import_errors)
        paused = {d.dag_id: d.is_paused for d in engine.store.list_dags()}
    rows = [_row(d.dag_id, paused.get(d.dag_id, False), schedule_text(d.schedule),
                 len(d.task_dict), list(d.tags), d.fileloc)
            for d in sorted(bag.dags.values(), key=lambda d: d.dag_id)]
    return rows, len(bag.import_errors)


def _row(dag_id: str, paused: bool, schedule: str | None, tasks: int | None,
         tags: list[str], fileloc: str | None) -> Row:
    return {"dag_id": dag_id, "is_paused": paused, "schedule": schedule, "tasks": tasks,
            "tags": ",".join(tags), "fileloc": fileloc}
