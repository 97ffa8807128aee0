"""``EvaluateModelOperator``: accuracy, per-class precision/recall/F1 and a confusion matrix."""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from mlpipe.core.artifact import Artifact
from mlpipe.core.operator import BaseOperator, Context
from mlpipe.operators.artifact_args import local_path, uri_of

log = logging.getLogger("mlpipe.task")


def classification_metrics(y_true: Any, y_pred: Any, classes: list[str]) -> dict[str, Any]:
    """Accuracy, macro F1, per-class precision/recall/F1/support and the confusion matrix."""
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    labels = list(range(len(classes)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1.mean()),
        "per_class": {name: {"precision": float(precision[i]), "recall": float(recall[i]),
                             "f1": float(f1[i]), "support": int(support[i])}
                      for i, name in enumerate(classes)},
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def plot_confusion_matrix(matrix: list[list[int]], classes: list[str], path: Path) -> Path:
    """The confusion matrix as a PNG (counts in the cells)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = max(4.0, 0.5 * len(classes) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            ax.text(j, i, str(count), ha="center", va="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


class EvaluateModelOperator(BaseOperator):
    """Evaluate ``model_uri`` on a split of ``dataset_uri``; everything goes to MLflow.

    Logs ``<split>_accuracy``, ``<split>_macro_f1`` and per-class precision/recall/F1 as
    metrics, the confusion matrix as ``confusion_matrix.png`` and the full report as
    ``metrics.json``; returns the report (accuracy, macro_f1, per_class, confusion_matrix,
    and ``report``: the logged ``metrics.json`` as an Artifact, which makes the task
    cacheable on an unchanged model and data set).
    """

    template_fields = ("model_uri", "dataset_uri", "split")
    operator_version = "2"

    def __init__(self, task_id: str, *, model_uri: Any, dataset_uri: Any, split: str = "test",
                 batch_size: int = 512, cache: bool = True, **kwargs: Any) -> None:
        super().__init__(task_id, cache=cache, **kwargs)
        self.model_uri = model_uri
        self.dataset_uri = dataset_uri
        self.split = split
        self.batch_size = batch_size

    def execute(self, context: Context) -> Any:
        from mlpipe.ml.shards import predict_split
        from mlpipe.tracking.models import load_model

        mlflow_run = context["mlflow_run"]
        model_uri = uri_of(self.model_uri)
        # Loaded ready for inference (eval mode, or an exported pt2 program).
        loaded = load_model(model_uri, mlflow_run.client.tracking_uri)
        y, predictions, manifest = predict_split(
            loaded.model, local_path(self.dataset_uri), self.split, self.batch_size,
            transform=spec_transform(loaded.metadata))
        classes = [str(c) for c in manifest["classes"]]
        report = classification_metrics(y, predictions, classes)
        metrics = {f"{self.split}_accuracy": report["accuracy"],
                   f"{self.split}_macro_f1": report["macro_f1"]}
        for name, values in report["per_class"].items():
            for key in ("precision", "recall", "f1"):
                metrics[f"{self.split}_{key}_{name}"] = values[key]
        mlflow_run.log_metrics(metrics)
        mlflow_run.log_params({"model_uri": model_uri, "split": self.split})
        with tempfile.TemporaryDirectory() as tmp:
            png = plot_confusion_matrix(report["confusion_matrix"], classes,
                                        Path(tmp) / "confusion_matrix.png")
            mlflow_run.log_artifact(str(png))
            payload = json.dumps(report, indent=2).encode()
            report_path = Path(tmp) / "metrics.json"
            report_path.write_bytes(payload)
            mlflow_run.log_artifact(str(report_path))
        log.info("%s accuracy %.4f, macro F1 %.4f on %d images", self.split,
                 report["accuracy"], report["macro_f1"], len(y))
        # The report file as an Artifact makes evaluation cacheable (same model and data).
        uri = f"runs:/{mlflow_run.run_id}/metrics.json"
        report["report"] = Artifact(uri=uri, kind="metrics", size=len(payload),
                                    sha256=hashlib.sha256(payload).hexdigest())
        return report


def spec_transform(metadata: dict[str, Any]) -> Any:
    """The evaluation transform training logged with the model (its normalisation, resize
    and crop), or None for a model logged without a spec (the data set's own then)."""
    from mlpipe.ml.inference import ModelSpec
    from mlpipe.tracking.models import SPEC_KEY

    spec = metadata.get(SPEC_KEY)
    return ModelSpec.from_dict(spec).transform() if spec else None
