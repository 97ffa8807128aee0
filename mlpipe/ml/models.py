"""Model construction: ``simple_cnn`` or any torchvision classifier, fitted to the data's shape.

torchvision models are always built with ``weights=None`` (nothing is downloaded here); the
first ``Conv2d`` is replaced to take ``in_channels`` and the last ``Linear`` (or the
``num_classes`` argument of the builder) gives ``num_classes`` outputs. Pretrained weights
(``mlpipe.ml.weights``) are then loaded into everything but a head of another size; an RGB
first convolution is summed over its input channels for grayscale input.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from mlpipe.ml.config import SIMPLE_CNN, ConfigError, known_model_names

if TYPE_CHECKING:
    import torch
    from torch import nn

    from mlpipe.ml.weights import Pretrained

__all__ = ["build_model", "pick_device"]


def build_model(name: str, *, in_channels: int, num_classes: int, image_size: int,
                pretrained: Pretrained | None = None, freeze_backbone: bool = False
                ) -> nn.Module:
    """Build a classifier for ``in_channels`` x ``image_size``² images.

    Untrained, or starting from ``pretrained`` (its head replaced when the class count
    differs); ``freeze_backbone`` leaves only the head (last ``Linear``) trainable.
    Raises ``ConfigError`` for an unknown name or a model that cannot take that image size,
    ``WeightsError`` for weights that do not fit the architecture.
    """
    if in_channels < 1 or num_classes < 1 or image_size < 1:
        raise ConfigError([("", (
            f"build_model({name!r}) needs positive in_channels, num_classes and image_size; "
            f"got {in_channels}, {num_classes}, {image_size}"
        ))])
    if name == SIMPLE_CNN:
        model = _simple_cnn(in_channels, num_classes)
    else:
        model = _torchvision_model(name, in_channels, num_classes, image_size)
    if pretrained is not None:
        _load_pretrained(model, pretrained)
    if freeze_backbone:
        head = _last_linear_path(model)
        for path, param in model.named_parameters():
            param.requires_grad = path.startswith(head + ".")
    _check_forward(model, name, in_channels, num_classes, image_size)
    return model


def _simple_cnn(in_channels: int, num_classes: int) -> nn.Module:
    """Three conv blocks and global pooling: works for any input from 8x8 to 64x64 and more."""
    from torch import nn

    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    return nn.Sequential(
        *block(in_channels, 16),
        *block(16, 32),
        nn.MaxPool2d(2),
        *block(32, 64),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, num_classes),
    )


def _torchvision_model(name: str, in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    import torchvision

    known = known_model_names()
    if name not in known:
        raise ConfigError([("train.model", f"unknown model {name!r}; known: {known}")])
    kwargs: dict[str, object] = {"weights": None, "num_classes": num_classes}
    if name.startswith("vit_"):
        kwargs["image_size"] = image_size  # ViT's position embeddings are sized by it
    if name in ("googlenet", "inception_v3"):
        kwargs["aux_logits"] = False
        kwargs["init_weights"] = True
    try:
        model = torchvision.models.get_model(name, **kwargs)
    except TypeError:  # a builder without num_classes: replace the head below instead
        model = torchvision.models.get_model(name, weights=None)
    _replace_first_conv(model, in_channels)
    _replace_last_linear(model, num_classes)
    return cast("nn.Module", model)


def _set_submodule(root: nn.Module, path: str, module: nn.Module) -> None:
    parent_path, _, attr = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    setattr(parent, attr, module)


def _replace_first_conv(model: nn.Module, in_channels: int) -> None:
    from torch import nn

    for path, conv in model.named_modules():
        if isinstance(conv, nn.Conv2d):
            if conv.in_channels == in_channels:
                return
            new = nn.Conv2d(
                in_channels, conv.out_channels, conv.kernel_size,  # type: ignore[arg-type]
                stride=conv.stride, padding=conv.padding,  # type: ignore[arg-type]
                dilation=conv.dilation, bias=conv.bias is not None,  # type: ignore[arg-type]
                padding_mode=conv.padding_mode,
            )
            _set_submodule(model, path, new)
            return


def _replace_last_linear(model: nn.Module, num_classes: int) -> None:
    from torch import nn

    linears = [(p, m) for p, m in model.named_modules() if isinstance(m, nn.Linear)]
    if linears and linears[-1][1].out_features != num_classes:
        path, old = linears[-1]
        _set_submodule(model, path, nn.Linear(old.in_features, num_classes))


def _last_linear_path(model: nn.Module) -> str:
    from torch import nn

    return str([p for p, m in model.named_modules() if isinstance(m, nn.Linear)][-1])


def _load_pretrained(model: nn.Module, pretrained: Pretrained) -> None:
    """Load ``pretrained`` into ``model``, adapting the first conv and skipping a new head."""
    from torch import nn

    from mlpipe.ml.weights import WeightsError

    own = model.state_dict()
    head = _last_linear_path(model) + "."
    first = next(p for p, m in model.named_modules() if isinstance(m, nn.Conv2d)) + ".weight"
    state = {}
    for key, value in pretrained.state_dict.items():
        if key in own and own[key].shape != value.shape:
            if key == first and own[key].shape[1] == 1:
                value = value.sum(dim=1, keepdim=True)  # RGB filters seen through gray input
            elif key.startswith(head):
                continue  # a head for another number of classes: keep the new one
            else:
                raise WeightsError(f"weights {pretrained.source} do not fit {key}: "
                                   f"{tuple(value.shape)} vs {tuple(own[key].shape)}")
        state[key] = value
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith(head)]
    unexpected = [k for k in result.unexpected_keys if not k.lower().startswith("aux")]
    if missing or unexpected:
        raise WeightsError(f"weights {pretrained.source} do not match the model: missing "
                           f"{missing[:3]}, unexpected {unexpected[:3]}")


def _check_forward(
    model: nn.Module, name: str, in_channels: int, num_classes: int, image_size: int
) -> None:
    """One dry forward pass in eval mode, so a wrong size fails here and not mid-training."""
    import torch

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(1, in_channels, image_size, image_size))
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())[:200]
        raise ConfigError([("train.model", (
            f"model {name!r} cannot take {in_channels}x{image_size}x{image_size} images "
            f"({detail}); use a larger image_size or 'simple_cnn'"
        ))]) from exc
    finally:
        model.train(was_training)
    if tuple(out.shape) != (1, num_classes):
        raise ConfigError([("train.model", (
            f"model {name!r} produced logits of shape {tuple(out.shape)}, "
            f"expected (1, {num_classes}); this model family is not supported"
        ))])


def pick_device(pref: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; an explicit device must be available."""
    import torch

    mps = getattr(torch.backends, "mps", None)
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": bool(mps is not None and mps.is_available()),
    }
    if pref == "auto":
        return torch.device(next(d for d in ("cuda", "mps", "cpu") if available[d]))
    if pref not in available:
        raise ConfigError([("train.device", (
            f"unknown device {pref!r}; valid: ['auto', 'cpu', 'cuda', 'mps']"
        ))])
    if not available[pref]:
        usable = sorted(d for d, ok in available.items() if ok)
        raise ConfigError([("train.device", (
            f"device {pref!r} is not available on this machine; available: {usable}; "
            "use device: auto to pick the best one"
        ))])
    return torch.device(pref)
