"""Pretrained weights: torchvision weights enums read from ``TORCH_HOME``, a file, or an
artifact URI (``s3://``, ``runs:/``: a weights file fetched through the artifact store).

Nothing is downloaded unless ``allow_download`` is set: a torchvision weights name is
looked up as ``<torch.hub.get_dir()>/checkpoints/<file name of its URL>``, where
``torch.hub`` itself would have cached it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from mlpipe.errors import WeightsError

__all__ = ["Pretrained", "WeightsError", "load_weights", "weights_file"]


@dataclass
class Pretrained:
    """A state dict and, for torchvision weights, the enum member (for its transforms)."""

    state_dict: dict[str, Any]
    enum: Any = None
    source: str = ""


def _is_file_ref(spec: str) -> bool:
    return spec.startswith("file://") or os.sep in spec or spec.endswith((".pt", ".pth"))


def _resolve_enum(model: str, spec: str) -> Any:
    """The torchvision weights enum member ``spec`` names for ``model``."""
    import torchvision

    try:
        enum = torchvision.models.get_model_weights(model)
    except (ValueError, KeyError):
        raise WeightsError(f"weights {spec!r}: model {model!r} has no torchvision pretrained "
                           "weights; give a file path instead") from None
    member = spec.split(".", 1)[1] if spec.startswith(enum.__name__ + ".") else spec
    if "." in member:
        raise WeightsError(f"weights {spec!r} are not weights of {model!r} "
                           f"({enum.__name__}); valid: {_names(enum)}")
    try:
        return enum.DEFAULT if member == "DEFAULT" else enum[member]
    except KeyError:
        raise WeightsError(f"unknown weights {spec!r} for {model!r}; valid: "
                           f"{_names(enum)}") from None


def _names(enum: Any) -> list[str]:
    return ["DEFAULT", *(f"{enum.__name__}.{m.name}" for m in enum)]


def weights_file(weights: Any) -> Path:
    """Where ``torch.hub`` caches the file of a torchvision weights enum member."""
    import torch.hub

    name = Path(unquote(urlparse(weights.url).path)).name
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def load_weights(model: str, spec: str, *, allow_download: bool = False) -> Pretrained:
    """The state dict ``spec`` names for ``model`` (a weights name, a path or a file:// URI)."""
    import torch

    if ":/" in spec and not spec.startswith("file://"):
        return _fetch(spec)
    if _is_file_ref(spec):
        path = Path(unquote(urlparse(spec).path)) if spec.startswith("file://") else Path(spec)
        if not path.is_file():
            raise WeightsError(f"weights file {str(path)!r} does not exist")
        return Pretrained(_read(path), None, str(path))
    weights = _resolve_enum(model, spec)
    path = weights_file(weights)
    if not path.is_file():
        if not allow_download:
            raise WeightsError(
                f"pretrained weights {weights} not found: {path.name} is not in {path.parent}; "
                f"set allow_download: true to fetch it once, or place the file there "
                f"(from {weights.url})")
        torch.hub.load_state_dict_from_url(weights.url, progress=False, check_hash=True)
    return Pretrained(_read(path), weights, str(weights))


def _fetch(uri: str) -> Pretrained:
    """A weights file from an artifact store (``s3://``, ``runs:/``...), via a temp copy."""
    import tempfile

    from mlpipe.artifacts import open_store
    from mlpipe.errors import ArtifactError

    with tempfile.TemporaryDirectory(prefix="mlpipe-weights-") as tmp:
        local = Path(tmp) / (Path(urlparse(uri).path).name or "weights.pt")
        try:
            # MLflow URIs: the configured store (an env setting wins over mlflow's
            # process-wide default, which an earlier model load in this process may have set)
            tracking = os.environ.get("MLFLOW_TRACKING_URI")
            options = {"tracking_uri": tracking} if tracking else None
            open_store(uri, mlflow_options=options).get_file(uri, local)
        except ArtifactError as exc:
            raise WeightsError(f"weights {uri!r} cannot be fetched: {exc}") from None
        return Pretrained(_read(local), None, uri)


def _read(path: Path) -> dict[str, Any]:
    import torch

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unreadable file is the same user error
        detail = " ".join(str(exc).split())[:200]
        raise WeightsError(f"weights file {str(path)!r} cannot be read: {detail}") from None
    if isinstance(data, dict) and isinstance(data.get("model"), dict):
        data = data["model"]  # a training checkpoint (last.pt)
    if not isinstance(data, dict):
        raise WeightsError(f"weights file {str(path)!r} does not hold a state dict")
    return data
