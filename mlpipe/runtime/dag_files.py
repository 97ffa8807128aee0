"""The files of a DAGs folder and their stamps, with the standard library alone: what
``mlpipe dags list`` compares with the recorded parse before deciding to import anything."""

from __future__ import annotations

import os
from pathlib import Path

#: a file's stamp: (mtime in ns, size in bytes); a changed stamp means "parse it again"
Stamp = tuple[int, int]


def dag_file_names(folder: Path) -> list[str]:
    """Python files under ``folder`` that may define DAGs (not private, not caches), as
    strings, unsorted: ``os.walk`` costs a fraction of ``Path.rglob`` (the scheduler lists
    the folder every scan: 1,000 files took ~60% of a tick)."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        found += [os.path.join(root, f) for f in files
                  if f.endswith(".py") and not f.startswith((".", "_"))]
    return found


def by_parts(name: str) -> list[str]:
    """Sort key: the order of the names' ``Path``s (by component), without making them."""
    return name.split(os.sep)


def folder_stamps(folder: Path) -> dict[str, Stamp]:
    """Each DAG file of ``folder`` (as ``dag_file_names`` names it) and its stamp now."""
    stamps: dict[str, Stamp] = {}
    for name in dag_file_names(folder) if folder.is_dir() else []:
        try:
            stat = os.stat(name)
        except FileNotFoundError:
            continue
        stamps[name] = (stat.st_mtime_ns, stat.st_size)
    return stamps
