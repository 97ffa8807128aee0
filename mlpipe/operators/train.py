"""``TorchTrainOperator``: train a PyTorch image classifier on a preprocessed dataset.

Heavy work lives in ``mlpipe.ml`` and is imported inside ``execute``: importing this module
(or ``mlpipe.operators``) loads neither torch nor mlflow.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from mlpipe.core.artifact import Artifact
from mlpipe.core.operator import BaseOperator, Context
from mlpipe.operators.artifact_args import local_path, uri_of

log = logging.getLogger("mlpipe.task")

#: what the logged model needs at serving time (kept explicit: inferring costs 5-10 s)
PIP_REQUIREMENTS = ["torch", "torchvision"]


class TorchTrainOperator(BaseOperator):
    """Train ``config.model`` on ``dataset_uri`` (from ImagePreprocessOperator).

    Logs params, per-epoch metrics (one batched call per epoch) and the model to the task's
    nested MLflow run; checkpoints every ``checkpoint_every`` epochs under the task's
    artifact prefix, so a retry resumes where the failed try stopped. Returns the logged
    model as an ``Artifact`` (``models:/m-...``, usable wherever a model URI is expected).
    """

    template_fields = ("dataset_uri", "config")
    operator_version = "2"

    def __init__(self, task_id: str, *, dataset_uri: Any, config: Any,
                 cache: bool = True, **kwargs: Any) -> None:
        super().__init__(task_id, cache=cache, **kwargs)
        self.dataset_uri = dataset_uri
        self.config = config

    def execute(self, context: Context) -> Any:
        from mlpipe.ml.config import load_train_config
        from mlpipe.ml.shards import ShardDataset, stream_batches
        from mlpipe.ml.training import train

        config = load_train_config(resolve_config(self.config,
                                                  self.dag.folder if self.dag else None))
        uri = uri_of(self.dataset_uri)
        dataset = local_path(uri)
        train_set = ShardDataset(dataset, "train")
        manifest = train_set.manifest
        num_classes = len(manifest["classes"])
        mlflow_run = context["mlflow_run"]
        mlflow_run.log_params({**config.model_dump(mode="json"), "dataset": uri,
                               "num_classes": num_classes, "train_images": len(train_set)})
        checkpoints = local_path(context["artifact_prefix"]) / "checkpoints"

        def log_epoch(metrics: dict[str, float], step: int) -> None:
            mlflow_run.log_metrics(metrics, step=step)
            log.info("epoch %d: %s", step, ", ".join(f"{k}={v:.4g}" for k, v in
                                                     metrics.items()))

        # Per-epoch metrics are written in the background and flushed before each checkpoint
        # (the last epoch is always checkpointed, so all of them are in MLflow on return).
        result = train(config, dataset, checkpoint_dir=checkpoints, log=log_epoch,
                       resume=True, flush_log=mlflow_run.flush)
        if result.resumed_from_epoch:
            log.info("resumed from the checkpoint of epoch %d", result.resumed_from_epoch)
        example = next(iter(stream_batches(dataset, "train", batch_size=2)))[0]
        return self._log_model(result.model, example, mlflow_run, manifest)

    @staticmethod
    def _log_model(model: Any, example: Any, mlflow_run: Any, manifest: dict[str, Any]
                   ) -> Artifact:
        """Log the model into the try's own run (resumed by id); return it as an Artifact.

        The model carries its serving spec (classes, preprocessing) in its metadata, and its
        content hash makes the training task cacheable: an unchanged data set and config
        reuse the logged model as long as it still exists with that hash.
        """
        from mlpipe.artifacts import open_store
        from mlpipe.ml.inference import ModelSpec
        from mlpipe.tracking.models import SPEC_KEY, log_pytorch_model

        tracking_uri = mlflow_run.client.tracking_uri
        logged = log_pytorch_model(tracking_uri, mlflow_run.run_id, model.cpu().eval(),
                                   input_example=example.cpu().numpy(),
                                   pip_requirements=PIP_REQUIREMENTS,
                                   metadata={SPEC_KEY: ModelSpec.from_manifest(manifest)
                                             .to_dict()})
        stat = open_store(logged.model_uri, mlflow_options={"tracking_uri": tracking_uri}
                          ).stat(logged.model_uri)
        log.info("logged model %s (run %s)", logged.model_uri, logged.run_id)
        return Artifact(uri=logged.model_uri, kind="model", sha256=stat.sha256, size=stat.size,
                        extra={"run_id": logged.run_id})


def resolve_config(config: Any, dag_folder: Path | None) -> Any:
    """A relative YAML path is looked up in the working directory, then next to the DAG
    file and one folder up (``configs/`` beside ``pipelines/``)."""
    if not isinstance(config, str | Path) or Path(config).is_absolute():
        return config
    candidates = [Path.cwd() / config]
    if dag_folder is not None:
        candidates += [dag_folder / config, dag_folder.parent / config]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    return config
