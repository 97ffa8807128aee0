"""``TrainConfig``: what ``TorchTrainOperator`` trains, checked before any work starts.

Loaded from a ``TrainConfig``, a dict or a YAML file (either the fields at the top level or
under a ``train:`` key). Every problem is reported in one line naming the field path and the
file, e.g. ``configs/x.yaml: train.lr: Input should be greater than 0``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mlpipe.errors import ConfigError, did_you_mean

__all__ = ["ConfigError", "DistributedConfig", "TrainConfig", "TransformStep",
           "known_model_names", "load_train_config"]

SIMPLE_CNN = "simple_cnn"
SECTION = "train"


def known_model_names() -> list[str]:
    """``simple_cnn`` and every torchvision classification model, sorted."""
    import torchvision  # lazy: heavy, and only needed once a model name is checked

    return sorted([SIMPLE_CNN, *torchvision.models.list_models(module=torchvision.models)])


class TransformStep(BaseModel):
    """One augmentation step: a ``torchvision.transforms.v2`` class name and its arguments."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str

    @model_validator(mode="after")
    def _buildable(self) -> TransformStep:
        from mlpipe.ml.transforms import check_step  # lazy: imports torchvision

        check_step(self.name, dict(self.model_extra or {}))
        return self

    def args(self) -> dict[str, Any]:
        """The keyword arguments of the transform."""
        return dict(self.model_extra or {})


class DistributedConfig(BaseModel):
    """DistributedDataParallel through torchrun: ``nproc`` processes on this machine.

    ``batch_size`` is per process: a step sees ``nproc * batch_size`` images, and an epoch
    has ``nproc`` times fewer steps (scale ``lr`` or ``epochs`` accordingly).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    nproc: int = Field(2, ge=1, le=1024)
    backend: Literal["gloo", "nccl"] = "gloo"


class TrainConfig(BaseModel):
    """Hyper-parameters and runtime options of one training run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = SIMPLE_CNN
    epochs: int = Field(10, ge=1, le=1000)
    batch_size: int = Field(64, ge=1, le=65536)
    optimizer: Literal["sgd", "adam", "adamw"] = "adamw"
    lr: float = Field(1e-3, gt=0, le=10)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    lr_schedule: Literal["none", "cosine", "step"] = "none"
    step_size: int = Field(10, ge=1)
    gamma: float = Field(0.1, gt=0, le=1)
    seed: int = Field(0, ge=0)
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    amp: bool = False
    channels_last: bool = False
    early_stopping_patience: int | None = Field(None, ge=1)
    num_workers: int = Field(0, ge=0)
    #: torch's intra-op CPU threads per process; None: the policy of ``ml.training.cpu_threads``
    num_threads: int | None = Field(None, ge=1, le=1024)
    checkpoint_every: int = Field(1, ge=1)
    deterministic: bool = True
    weights: str | None = None
    allow_download: bool = False
    freeze_backbone: bool = False
    normalize: Literal["dataset", "imagenet"] | None = None
    augment: Literal["standard"] | list[TransformStep] | None = None
    top_k: int = Field(5, ge=1)
    distributed: DistributedConfig | None = None

    @property
    def normalization(self) -> str:
        """``normalize``, or its default: ``imagenet`` with pretrained weights."""
        return self.normalize or ("imagenet" if self.weights else "dataset")

    @field_validator("augment", mode="before")
    @classmethod
    def _augment_steps(cls, value: Any) -> Any:
        if value is None or value == "standard":
            return value
        if isinstance(value, str):
            raise ValueError(f"unknown augment preset {value!r}; use 'standard' or a list of "
                             "{name: <torchvision.transforms.v2 class>, <argument>: ...}")
        if not isinstance(value, list | tuple):
            raise ValueError(f"expected 'standard' or a list of steps, got {type(value).__name__}")
        steps = []
        for i, item in enumerate(value):
            try:
                steps.append(TransformStep.model_validate(item))
            except ValidationError as exc:
                err = exc.errors()[0]
                where = ".".join(map(str, err["loc"]))
                raise ValueError(f"step {i}{' ' + where if where else ''}: "
                                 f"{_message(err)}") from None
        return steps

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        if value == SIMPLE_CNN:
            return value
        known = known_model_names()
        if value not in known:
            raise ValueError(
                f"unknown model {value!r}; use 'simple_cnn' or a torchvision classification "
                f"model (torchvision.models.list_models()){did_you_mean(value, known)}"
            )
        return value

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> TrainConfig:
        """Read a YAML file; raise ``ConfigError`` naming the file and field on any problem."""
        source = str(path)
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError([("", f"cannot read config file: {exc.strerror}")], source) from exc
        except yaml.YAMLError as exc:
            detail = " ".join(str(exc).split())
            raise ConfigError([("", f"invalid YAML: {detail}")], source) from exc
        if data is None:
            data = {}
        if isinstance(data, dict) and set(data) == {SECTION} and isinstance(data[SECTION], dict):
            data = data[SECTION]
        return _validate(data, source)


def _validate(data: object, source: str | None) -> TrainConfig:
    if not isinstance(data, dict):
        got = type(data).__name__
        raise ConfigError([(SECTION, f"expected a mapping of settings, got {got}")], source)
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        problems = [
            (".".join([SECTION, *map(str, err["loc"])]), _message(err)) for err in exc.errors()
        ]
        raise ConfigError(problems, source) from None


def _message(err: Any) -> str:
    msg = str(err["msg"])
    # pydantic prefixes messages raised from validators with "Value error, ".
    return msg.removeprefix("Value error, ")


def load_train_config(value: TrainConfig | dict[str, Any] | str | os.PathLike[str]) -> TrainConfig:
    """Return ``value`` as a checked ``TrainConfig`` (from itself, a dict or a YAML path)."""
    if isinstance(value, TrainConfig):
        return value
    if isinstance(value, dict):
        return _validate(value, None)
    if isinstance(value, str | os.PathLike):
        return TrainConfig.from_yaml(value)
    raise ConfigError(
        [("", f"expected a TrainConfig, a dict or a YAML path, got {type(value).__name__}")]
    )
