"""``FileSensor``: waits for a file, a non-empty folder, or a glob pattern to match."""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any, ClassVar

from mlpipe.core.operator import Context
from mlpipe.errors import DagDefinitionError
from mlpipe.sensors.base import BaseSensorOperator, log


class FileSensor(BaseSensorOperator):
    """Done when ``filepath`` (a path or glob pattern, templated) matches a file, or a
    folder holding a file (anywhere below it with ``recursive=True``, which also lets
    ``**`` in the pattern cross folders).

    ``fs_conn_id``: a connection whose extra ``path`` is the folder a relative
    ``filepath`` is taken from (Airflow's ``fs`` connection); without it a relative path is
    taken from the working directory.
    """

    template_fields: ClassVar[tuple[str, ...]] = ("filepath",)

    def __init__(self, task_id: str, *, filepath: str | os.PathLike[str],
                 fs_conn_id: str | None = None, recursive: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(task_id, **kwargs)
        if not str(filepath).strip():
            raise DagDefinitionError(f"sensor {self.task_id!r}: filepath must not be empty")
        self.filepath = os.fspath(filepath)
        self.fs_conn_id = fs_conn_id
        self.recursive = recursive

    def full_path(self) -> str:
        path = os.path.expanduser(str(self.filepath))
        if self.fs_conn_id is None or os.path.isabs(path):
            return path
        from mlpipe.connections import get_connection

        base = get_connection(self.fs_conn_id).extra.get("path") or ""
        return os.path.join(str(base), path)

    def poke(self, context: Context) -> bool:
        pattern = self.full_path()
        for match in glob.iglob(pattern, recursive=self.recursive):
            if os.path.isfile(match) or _holds_a_file(Path(match), self.recursive):
                log.info("%s: found %s", self.task_id, match)
                return True
        return False


def _holds_a_file(folder: Path, recursive: bool) -> bool:
    if not folder.is_dir():
        return False
    if not recursive:
        return any(child.is_file() for child in folder.iterdir())
    return any(files for _, _, files in os.walk(folder))
