"""Finding DAGs: import every ``.py`` file of the dags folder and collect its DAG objects."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from mlpipe.core.authoring_context import collecting_dags
from mlpipe.core.dag import DAG
from mlpipe.errors import DagImportError, DagNotFoundError
from mlpipe.runtime.dag_files import Stamp
from mlpipe.runtime.dag_files import by_parts as _by_parts
from mlpipe.runtime.dag_files import dag_file_names as _dag_file_names
from mlpipe.runtime.dag_parsing import check_files


@dataclass
class DagBag:
    """The DAGs of a folder by id, and the files that failed to import with their error."""

    folder: Path
    dags: dict[str, DAG] = field(default_factory=dict)
    import_errors: dict[str, str] = field(default_factory=dict)

    def get_dag(self, dag_id: str) -> DAG:
        """The DAG with ``dag_id``; an unknown id names the known ones (and import errors)."""
        try:
            return self.dags[dag_id]
        except KeyError:
            error = DagNotFoundError(dag_id, self.dags)
            if self.import_errors:
                files = ", ".join(sorted(self.import_errors))
                error.args = (f"{error.args[0]} (files that failed to import: {files})",)
            raise error from None


def dag_files(folder: Path) -> list[Path]:
    """Python files under ``folder`` that may define DAGs (not private, not caches)."""
    return [Path(name) for name in sorted(_dag_file_names(folder), key=_by_parts)]


def load_file(path: Path) -> list[DAG]:
    """Import one DAG file under a private module name and return the DAGs it defines."""
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    module_name = f"mlpipe_dagfile_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise DagImportError(str(path), "not a loadable Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        with collecting_dags() as found:
            spec.loader.exec_module(module)
    except BaseException as exc:
        sys.modules.pop(module_name, None)
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise DagImportError(str(path), _last_line(exc, path)) from exc
    dags = list(found)
    for value in vars(module).values():
        if isinstance(value, DAG) and all(d is not value for d in dags):
            dags.append(value)
    return dags


def _last_line(exc: BaseException, path: Path) -> str:
    """``Type: message (line N)``, N being the line of the DAG file that raised."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if Path(f.filename).resolve() == path.resolve()]
    where = f" (line {frames[-1].lineno})" if frames else ""
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} (line {exc.lineno})"
    return f"{type(exc).__name__}: {exc}{where}"


def load_dagbag(folder: Path, *, parse_timeout: float | None = None) -> DagBag:
    """Import every DAG file of ``folder``; a broken file is recorded and the rest still load.

    With ``parse_timeout`` each file is first tried in a child process (``dag_parsing``): a
    file that hangs or ends the process is an import error, not a hung or dead caller.
    """
    watcher = DagFolderWatcher(folder, parse_timeout=parse_timeout)
    watcher.refresh()
    return watcher.bag


def load_one(folder: Path, path: Path, dag_id: str, *,
             parse_timeout: float | None = None) -> DAG | None:
    """The DAG ``dag_id`` from the one file ``path`` of ``folder``, or None if it is not there.

    What a command that needs one DAG uses when the store knows its file: importing the whole
    folder would cost every other file's import. A file outside the folder, missing, broken
    or not defining ``dag_id`` gives None (the caller then parses the folder, which reports
    the problem as usual).
    """
    try:
        if not path.is_file() or not path.resolve().is_relative_to(folder.resolve()):
            return None
    except OSError:
        return None
    if parse_timeout is not None and check_files([path], load_file, timeout=parse_timeout):
        return None
    try:
        dags = [d for d in load_file(path) if d.dag_id == dag_id]
    except DagImportError:
        return None
    if len(dags) != 1:
        return None
    try:
        dags[0].validate()
    except Exception:
        return None
    return dags[0]


class DagFolderWatcher:
    """A DAGs folder kept parsed: each refresh re-imports only files that changed."""

    def __init__(self, folder: Path, *, parse_timeout: float | None = None) -> None:
        self.folder = folder
        self.parse_timeout = parse_timeout
        #: by file name (a string: the scan compares 1,000 of them every few seconds)
        self._files: dict[str, tuple[int, int, list[DAG] | str]] = {}
        self.bag = DagBag(folder)
        self.parses = 0  # files imported so far (for benchmarks and tests)

    def stamps(self) -> dict[str, Stamp]:
        """Each file parsed (with or without DAGs) and its stamp when it was parsed."""
        return {name: (mtime, size) for name, (mtime, size, _) in self._files.items()}

    def refresh(self) -> bool:
        """Re-import new and modified files, forget deleted ones; True if anything changed."""
        names = sorted(_dag_file_names(self.folder), key=_by_parts) if self.folder.is_dir() \
            else []
        seen = set()
        stale: dict[Path, tuple[int, int]] = {}
        for name in names:
            try:
                stat = os.stat(name)
            except FileNotFoundError:
                continue
            seen.add(name)
            stamp = (stat.st_mtime_ns, stat.st_size)
            cached = self._files.get(name)
            if cached is None or cached[:2] != stamp:
                stale[Path(name)] = stamp
        failed: dict[Path, str] = {}
        if stale and self.parse_timeout is not None:
            failed = check_files(list(stale), load_file, timeout=self.parse_timeout)
        for path, stamp in stale.items():
            self.parses += 1
            result: list[DAG] | str
            if path in failed:
                result = failed[path]
            else:
                try:
                    result = load_file(path)
                except DagImportError as exc:
                    result = exc.message
            self._files[str(path)] = (*stamp, result)
        changed = bool(stale)
        for path in set(self._files) - seen:
            del self._files[path]
            changed = True
        if changed:
            self.bag = self._assemble()
        return changed

    def _assemble(self) -> DagBag:
        bag = DagBag(self.folder)
        for path in sorted(self._files, key=_by_parts):
            result = self._files[path][2]
            if isinstance(result, str):
                bag.import_errors[path] = result
                continue
            for dag in result:
                previous = bag.dags.get(dag.dag_id)
                if previous is not None and previous is not dag:
                    bag.import_errors[str(path)] = (
                        f"dag_id {dag.dag_id!r} is already defined in {previous.fileloc}")
                    continue
                try:
                    dag.validate()
                except Exception as exc:
                    bag.import_errors[str(path)] = f"{type(exc).__name__}: {exc}"
                    continue
                bag.dags[dag.dag_id] = dag
        return bag
