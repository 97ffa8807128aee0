"""Predictions from a trained image classifier: on encoded image files or on a data set split.

A :class:`ModelSpec` is what serving needs besides the weights: the class names and the
exact preprocessing of training (size, colour mode, train-split mean and std). It travels
inside the logged model's metadata, so a model found by alias serves itself correctly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["ModelSpec", "Prediction", "accuracy", "predict_bytes", "predict_labels",
           "predict_pixels"]


@dataclass(frozen=True)
class ModelSpec:
    """Class names and preprocessing a model was trained with."""

    classes: list[str]
    image_size: tuple[int, int]
    grayscale: bool
    mean: list[float]
    std: list[float]
    #: "shorter_side" or "stretch" (models trained before the field existed: stretch)
    resize: str = "stretch"

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> ModelSpec:
        """The spec of a model trained on the data set with this manifest."""
        return cls(classes=[str(c) for c in manifest["classes"]],
                   image_size=(int(manifest["image_size"][0]), int(manifest["image_size"][1])),
                   grayscale=int(manifest["channels"]) == 1,
                   mean=[float(v) for v in manifest["mean"]],
                   std=[float(v) for v in manifest["std"]],
                   resize=str(manifest.get("resize", "stretch")))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        """The spec as stored in the model's metadata (see :meth:`to_dict`)."""
        return cls(classes=[str(c) for c in data["classes"]],
                   image_size=(int(data["image_size"][0]), int(data["image_size"][1])),
                   grayscale=bool(data["grayscale"]), mean=[float(v) for v in data["mean"]],
                   std=[float(v) for v in data["std"]],
                   resize=str(data.get("resize", "stretch")))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored with the model)."""
        data = asdict(self)
        data["image_size"] = list(self.image_size)
        return data


@dataclass(frozen=True)
class Prediction:
    """The predicted class of one image and the probability of every class."""

    label: str
    probability: float
    probabilities: dict[str, float]


def predict_labels(model: Any, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Predicted class indices for normalised NCHW inputs, in batches, without gradients."""
    import torch

    if len(x) == 0:
        return torch.empty(0, dtype=torch.long)
    with torch.no_grad():
        return torch.cat([model(x[i:i + batch_size]).argmax(dim=1)
                          for i in range(0, len(x), batch_size)])


def accuracy(model: Any, x: torch.Tensor, y: torch.Tensor) -> float:
    """Share of correctly classified examples (0.0 for an empty split)."""
    if len(y) == 0:
        return 0.0
    return float((predict_labels(model, x) == y).float().mean())


def predict_bytes(model: Any, spec: ModelSpec, images: Sequence[bytes]) -> list[Prediction]:
    """Decode, preprocess and classify encoded images (PNG, JPEG, WebP...).

    Raises:
        CorruptImageError: one of the payloads is not a decodable image; its ``path`` is
            ``"<bytes>"``, the caller names the file.
    """
    from mlpipe.ml.preprocess import decode_bytes

    return predict_pixels(model, spec,
                          [decode_bytes(data, spec.image_size, spec.grayscale, spec.resize)
                           for data in images])


def predict_pixels(model: Any, spec: ModelSpec, pixels: Sequence[Any]) -> list[Prediction]:
    """Classify images already decoded by ``decode_bytes`` (uint8 CHW arrays)."""
    import numpy as np
    import torch

    from mlpipe.ml.preprocess import normalise

    x = normalise(torch.from_numpy(np.stack(pixels)), spec.mean, spec.std)
    with torch.no_grad():
        probs = torch.softmax(model(x), dim=1)
    out = []
    for row in probs.tolist():
        best = max(range(len(row)), key=row.__getitem__)
        out.append(Prediction(label=spec.classes[best], probability=row[best],
                              probabilities=dict(zip(spec.classes, row, strict=True))))
    return out
