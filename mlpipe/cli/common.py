"""Shared command-line plumbing: building the engine, parsing options."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mlpipe.cli.output import OutputFormat
from mlpipe.errors import DagDefinitionError
from mlpipe.settings import Settings, load_settings

if TYPE_CHECKING:  # the engine is imported by the commands that open it, not by `dags list`
    from mlpipe.scheduler.service import Engine

DagsFolder = Annotated[
    Path | None,
    typer.Option("--dags-folder", "-d", help="Folder of DAG files [env: MLPIPE_DAGS_FOLDER]"),
]
Output = Annotated[OutputFormat, typer.Option("--output", "-o", help="table or json")]


def open_engine(dags_folder: Path | None = None, *, check_folder: bool = True,
                **overrides: Any) -> Engine:
    """Settings from env / mlpipe.toml, the store migrated, the DAGs folder checked."""
    from mlpipe.scheduler.service import Engine

    return Engine.from_settings(folder_settings(dags_folder, check_folder=check_folder,
                                                **overrides))


def folder_settings(dags_folder: Path | None = None, *, check_folder: bool = True,
                    **overrides: Any) -> Settings:
    """Settings from env / mlpipe.toml (``--dags-folder`` winning), the DAGs folder checked."""
    if dags_folder is not None:
        overrides["dags_folder"] = dags_folder
    settings = load_settings(**overrides)
    if check_folder and not settings.dags_folder.is_dir():
        raise DagDefinitionError(
            f"dags folder {str(settings.dags_folder)!r} does not exist; pass --dags-folder or "
            "set MLPIPE_DAGS_FOLDER"
        )
    return settings


def fresh_home(settings: Settings) -> bool:
    """Whether the metadata database is a SQLite file not created yet: a reading command
    then has nothing recorded to read and must not create one (no empty DB left behind)."""
    url = settings.database
    return url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists()


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


def fmt_time(value: Any) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None
