"""Training and evaluation transforms: uint8 CHW tensors in, normalised float32 out.

Built with ``torchvision.transforms.v2``: the augmentation of the config (training only),
then an optional resize and center crop to the model's input size (the pretrained weights'
own sizes), then ``ToDtype(float32, scale=True)`` and ``Normalize``.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlpipe.errors import did_you_mean

if TYPE_CHECKING:
    from torchvision.transforms import v2

    from mlpipe.ml.config import TrainConfig

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "Preprocessing", "build_transforms", "check_step",
           "preprocessing_for", "transform_names"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def transform_names() -> list[str]:
    """Every transform class of ``torchvision.transforms.v2``, sorted."""
    import torch
    from torchvision.transforms import v2

    return sorted(name for name, obj in vars(v2).items()
                  if inspect.isclass(obj) and issubclass(obj, torch.nn.Module)
                  and not name.startswith("_"))


def check_step(name: str, args: dict[str, Any]) -> v2.Transform:
    """Build one step; ``ValueError`` naming a close match or the bad argument otherwise."""
    from torchvision.transforms import v2

    known = transform_names()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unknown transform {name!r} (not in torchvision.transforms.v2){hint}")
    cls = getattr(v2, name)
    params = inspect.signature(cls).parameters
    for key in args:
        if key not in params:
            raise ValueError(f"{name}: unknown argument {key!r}"
                             f"{did_you_mean(key, params)}; known: {', '.join(params)}")
    try:
        inspect.signature(cls).bind(**args)
    except TypeError as exc:
        raise ValueError(f"{name}: {exc}") from None
    try:
        return cls(**args)
    except (TypeError, ValueError) as exc:
        bad = next((k for k in args if k in str(exc)), None)
        where = f" argument {bad!r}" if bad else ""
        raise ValueError(f"{name}{where}: {' '.join(str(exc).split())}") from None


@dataclass(frozen=True)
class Preprocessing:
    """How pixels reach the model: normalisation and (optional) resize/crop sizes."""

    mean: list[float]
    std: list[float]
    image_size: int
    resize: int | None = None


def preprocessing_for(cfg: TrainConfig, manifest: dict[str, Any],
                      weights_transforms: Any = None) -> Preprocessing:
    """The normalisation and input size a run uses on a data set with this manifest.

    ``weights_transforms`` (``weights.transforms()`` of pretrained weights) gives the
    resize and crop sizes; without it the data set's own size is used as is.
    """
    channels = int(manifest["channels"])
    if cfg.normalization == "imagenet":
        mean = list(getattr(weights_transforms, "mean", IMAGENET_MEAN))
        std = list(getattr(weights_transforms, "std", IMAGENET_STD))
        if channels == 1:
            mean, std = [sum(mean) / len(mean)], [sum(std) / len(std)]
    else:
        mean = [float(v) for v in manifest["mean"]]
        std = [float(v) for v in manifest["std"]]
    size = int(manifest["image_size"][-1])
    if weights_transforms is None:
        return Preprocessing(mean, std, size)
    crop = int(weights_transforms.crop_size[0])
    resize = int(weights_transforms.resize_size[0])
    return Preprocessing(mean, std, crop, None if (size, resize) == (crop, crop) else resize)


def build_transforms(cfg: TrainConfig | None, *, mean: Sequence[float], std: Sequence[float],
                     image_size: int, train: bool, resize: int | None = None,
                     channels: int = 3) -> v2.Compose:
    """A ``v2.Compose`` taking uint8 CHW tensors: augment (``train`` only), resize/crop,
    ``ToDtype(float32, scale=True)``, ``Normalize``."""
    import torch
    from torchvision.transforms import v2

    steps: list[Any] = []
    augment = cfg.augment if cfg is not None and train else None
    if augment == "standard":
        steps += [v2.RandomResizedCrop(image_size, scale=(0.8, 1.0), antialias=True),
                  v2.RandomHorizontalFlip()]
        if channels == 3:
            steps.append(v2.ColorJitter(0.2, 0.2, 0.2))
    else:
        steps += [check_step(s.name, s.args()) for s in augment or []]
        if resize is not None:
            steps += [v2.Resize(resize, antialias=True), v2.CenterCrop(image_size)]
    steps += [v2.ToDtype(torch.float32, scale=True),
              v2.Normalize([float(m) for m in mean], [float(s) if s > 0 else 1.0 for s in std])]
    return v2.Compose(steps)
