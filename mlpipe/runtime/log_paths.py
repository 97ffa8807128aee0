"""Where each try's log lives: ``<root>/dag_id=../run_id=../task_id=..[/map_index=N]``.

Every id is one path segment behind its ``name=`` prefix, so no id can lead out of the root.
"""

from __future__ import annotations

from pathlib import Path

from mlpipe.core.ids import validate_run_id
from mlpipe.errors import InvalidTaskIdError
from mlpipe.store.entities import TIKey

__all__ = ["log_dir", "log_folder"]


def log_dir(logs_root: Path, key: TIKey) -> Path:
    """``<root>/dag_id=../run_id=../task_id=..[/map_index=N]`` (one ``attempt=N.log`` a try).

    Raises ``InvalidTaskIdError`` if the folder (symlinks resolved) is not inside the root.
    """
    folder = Path(log_folder(str(logs_root), key))
    root = Path(logs_root).resolve()
    if not folder.resolve().is_relative_to(root):
        raise InvalidTaskIdError("run_id", key.run_id,
                                 f"its log folder would be outside the logs root {str(root)!r}")
    return folder


def log_folder(logs_root: str, key: TIKey) -> str:
    """``log_dir`` as a string (built once per try: no ``Path`` objects on the hot path).

    Ids with a ``/`` (a run id stored before run ids were checked) are refused: every id is
    one path segment behind its ``name=`` prefix, so no id can lead out of the root.
    """
    if "/" in key.run_id or "/" in key.dag_id or "/" in key.task_id:
        validate_run_id(key.run_id)
        raise InvalidTaskIdError("dag_id/task_id", f"{key.dag_id}/{key.task_id}",
                                 "a path separator is not allowed in an id")
    path = (f"{logs_root}/dag_id={key.dag_id}/run_id={key.run_id}/task_id={key.task_id}")
    return f"{path}/map_index={key.map_index}" if key.map_index >= 0 else path
