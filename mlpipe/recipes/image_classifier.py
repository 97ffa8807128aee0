"""The image-classifier training path as tasks, and its YAML config (validated by pydantic).

``pipelines/image_classifier.py`` (manual) and ``pipelines/nightly_retrain.py`` (nightly)
are both built from :func:`add_image_classifier_tasks`::

    download -> preprocess -> train -> evaluate -> upload -> register -> deploy
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlpipe.core.params import Param
from mlpipe.errors import PipelineConfigError
from mlpipe.operators import (
    DeployModelOperator,
    EvaluateModelOperator,
    ImagePreprocessOperator,
    RegisterModelOperator,
    S3DownloadOperator,
    S3UploadOperator,
    TorchTrainOperator,
)


class GateConfig(BaseModel):
    """``gate:`` section; see ``DeployGate``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str = Field("accuracy", pattern="^(accuracy|macro_f1)$")
    threshold: float = Field(0.0, ge=0.0, le=1.0)
    beat_current: bool = True
    min_improvement: float = Field(0.0, ge=0.0, le=1.0)
    split: str = Field("test", pattern="^(train|val|test)$")


class ImageClassifierConfig(BaseModel):
    """``configs/image_classifier.yaml``; ``train`` is a ``TrainConfig`` (checked by the
    train task, which also accepts per-run overrides of ``epochs``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(pattern="^s3://[^/]+/")
    aws_conn_id: str = "aws_default"
    include: str | None = "*.png"
    image_size: tuple[int, int] = (32, 32)
    grayscale: bool = False
    val_fraction: float = Field(0.2, ge=0.0, lt=1.0)
    test_fraction: float = Field(0.1, gt=0.0, lt=1.0)
    seed: int = 0
    upload_to: str = Field(pattern="^s3://[^/]+/")
    model_name: str = Field(min_length=1, pattern="^[A-Za-z0-9_.-]+$")
    alias: str = Field("production", min_length=1, pattern="^[A-Za-z0-9_-]+$")
    serving_url: str = ""
    gate: GateConfig = GateConfig()
    train: dict[str, Any]


def load_pipeline_config(path: str | os.PathLike[str]) -> ImageClassifierConfig:
    """The config at ``path``, checked.

    Raises:
        PipelineConfigError: one line naming the file and every bad field.
    """
    import yaml

    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise PipelineConfigError(f"{file}: cannot read the config: {exc}") from None
    try:
        return ImageClassifierConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg']}"
                             for e in exc.errors())
        raise PipelineConfigError(f"{file}: {problems}") from None


def pipeline_params(config: ImageClassifierConfig) -> dict[str, Param]:
    """What a run may override with ``--conf``: source, model_name, epochs, serving_url,
    gate_threshold."""
    return {
        "source": Param(config.source, type="string", pattern="^s3://"),
        "model_name": Param(config.model_name, type="string", minLength=1),
        "epochs": Param(int(config.train.get("epochs", 10)), type="integer", minimum=1,
                        maximum=1000),
        "serving_url": Param(config.serving_url, type="string",
                             description="mlpipe serve endpoint to reload and smoke-test"),
        "gate_threshold": Param(config.gate.threshold, type="number", minimum=0, maximum=1,
                                description="the deploy gate's minimum metric value"),
    }


def add_image_classifier_tasks(config: ImageClassifierConfig,
                               train_pool: str | None = None) -> dict[str, Any]:
    """Create the seven tasks in the DAG being defined; returns them by task id."""
    download = S3DownloadOperator(task_id="download", source="{{ params.source }}",
                                  aws_conn_id=config.aws_conn_id, include=config.include)
    preprocess = ImagePreprocessOperator(
        task_id="preprocess", input_uri=download.output, image_size=config.image_size,
        grayscale=config.grayscale, val_fraction=config.val_fraction,
        test_fraction=config.test_fraction, seed=config.seed)
    pool = {"pool": train_pool} if train_pool else {}
    train = TorchTrainOperator(task_id="train", dataset_uri=preprocess.output,
                               config={**config.train, "epochs": "{{ params.epochs }}"}, **pool)
    evaluate = EvaluateModelOperator(task_id="evaluate", model_uri=train.output,
                                     dataset_uri=preprocess.output, split=config.gate.split)
    upload = S3UploadOperator(task_id="upload", source_uri=preprocess.output,
                              dest=config.upload_to + "{{ ds_nodash }}/",
                              aws_conn_id=config.aws_conn_id)
    register = RegisterModelOperator(task_id="register", model_uri=train.output,
                                     name="{{ params.model_name }}")
    deploy = DeployModelOperator(task_id="deploy", model_name="{{ params.model_name }}",
                                 version=register.output, alias=config.alias,
                                 gate={**config.gate.model_dump(),
                                       "threshold": "{{ params.gate_threshold }}"},
                                 dataset_uri=preprocess.output,
                                 serving_url="{{ params.serving_url }}")
    evaluate >> upload >> register
    return {t.task_id: t for t in (download, preprocess, train, evaluate, upload, register,
                                   deploy)}
