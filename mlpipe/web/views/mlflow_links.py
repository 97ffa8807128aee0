"""Links into the MLflow UI: a run, and a registered model version.

The store records a DAG run's MLflow parent run (``get_mlflow_run_id``) and, as artifacts,
what ML tasks produced (``runs:/<run_id>/...`` and ``models:/<name>/<version>``); these
build the UI's addresses for them (``#/runs/<id>`` redirects to the run in its experiment).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

_RUN_ID = re.compile(r"^[0-9a-zA-Z_-]{1,64}$")


@dataclass(frozen=True, slots=True)
class MlflowLink:
    label: str
    url: str


def run_url(ui_url: str, mlflow_run_id: str) -> str | None:
    """The MLflow UI page of a run (None for an id that does not look like one)."""
    if not _RUN_ID.match(mlflow_run_id):
        return None
    return f"{ui_url.rstrip('/')}/#/runs/{mlflow_run_id}"


def model_version_url(ui_url: str, name: str, version: str) -> str | None:
    if not version.isdigit() or not name:
        return None
    return f"{ui_url.rstrip('/')}/#/models/{quote(name, safe='')}/versions/{version}"


def link_for_uri(ui_url: str, uri: str) -> MlflowLink | None:
    """A link for a ``runs:/`` or ``models:/<name>/<version>`` artifact URI, else None."""
    if uri.startswith("runs:/"):
        run_id = uri[len("runs:/"):].split("/", 1)[0]
        url = run_url(ui_url, run_id)
        return MlflowLink(f"MLflow run {run_id}", url) if url else None
    if uri.startswith("models:/"):
        name, _, version = uri[len("models:/"):].rstrip("/").rpartition("/")
        url = model_version_url(ui_url, name, version)
        return MlflowLink(f"model {name} version {version}", url) if url else None
    return None


def links_for_uris(ui_url: str, uris: list[str]) -> list[MlflowLink]:
    """The distinct links for these artifact URIs, in order."""
    seen: dict[str, MlflowLink] = {}
    for uri in uris:
        link = link_for_uri(ui_url, uri)
        if link is not None:
            seen.setdefault(link.url, link)
    return list(seen.values())
