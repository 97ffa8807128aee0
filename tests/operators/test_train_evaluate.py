"""Digits -> preprocess -> TorchTrainOperator -> EvaluateModelOperator, logged to MLflow."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from mlpipe import DAG
from mlpipe.operators import (
    EvaluateModelOperator,
    ImagePreprocessOperator,
    RegisterModelOperator,
    TorchTrainOperator,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mlpipe.ml.datasets import write_digits_pngs

    folder = tmp_path_factory.mktemp("digits")
    write_digits_pngs(folder, limit=600)
    return folder


def build(digits: Path, config: dict, *, kill_marker: Path | None = None) -> DAG:
    with DAG("digits_train", default_args={"retries": 1, "retry_delay": timedelta(0)}) as dag:
        prep = ImagePreprocessOperator(task_id="preprocess", input_uri=digits.as_uri(),
                                       image_size=(8, 8), grayscale=True, num_workers=1)
        train = TorchTrainOperator(task_id="train", dataset_uri=prep.output, config=config)
        evaluate = EvaluateModelOperator(task_id="evaluate", model_uri=train.output,
                                         dataset_uri=prep.output, split="test")
        register = RegisterModelOperator(task_id="register", model_uri=train.output,
                                         name="digits_cnn")
        evaluate >> register
    return dag


def test_train_and_evaluate_log_params_metrics_model_and_confusion_matrix(
        digits: Path, isolated_env: Path) -> None:
    config = {"model": "simple_cnn", "epochs": 3, "batch_size": 64, "lr": 0.01, "seed": 0}
    run = build(digits, config).test()
    assert run.state == "success", [(t.task_id, t.error) for t in run.task_instances]
    model = run.get_task_instance("train").xcom_pull()
    assert model.kind == "model" and model.uri.startswith("models:/m-")
    assert len(model.sha256) == 64 and model.size > 0
    report = run.get_task_instance("evaluate").xcom_pull()
    assert report["accuracy"] > 0.8
    assert set(report["per_class"]) == {str(d) for d in range(10)}
    assert len(report["confusion_matrix"]) == 10

    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{isolated_env / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("digits_train")
    runs = client.search_runs([experiment.experiment_id])
    by_task = {r.data.tags.get("mlpipe.task_id"): r for r in runs}
    train_run, eval_run = by_task["train"], by_task["evaluate"]
    assert train_run.data.params["model"] == "simple_cnn"
    history = client.get_metric_history(train_run.info.run_id, "val_acc")
    assert [m.step for m in history] == [1, 2, 3]
    assert eval_run.data.metrics["test_accuracy"] == pytest.approx(report["accuracy"])
    artifacts = {a.path for a in client.list_artifacts(eval_run.info.run_id)}
    assert {"confusion_matrix.png", "metrics.json"} <= artifacts
    assert model.extra["run_id"] == train_run.info.run_id
    from mlpipe.tracking.models import SPEC_KEY, load_model

    spec = load_model(model.uri, client.tracking_uri).metadata[SPEC_KEY]
    assert spec["classes"] == [str(d) for d in range(10)]
    assert spec["image_size"] == [8, 8] and spec["grayscale"] is True
    assert report["report"].uri == f"runs:/{eval_run.info.run_id}/metrics.json"
    registered = run.get_task_instance("register").xcom_pull()
    assert registered == "models:/digits_cnn/1"
    version = client.get_model_version("digits_cnn", "1")
    assert version.run_id == train_run.info.run_id
    assert version.tags["mlpipe.dag_id"] == "digits_train"
    assert version.tags["mlpipe.task_id"] == "train"
    assert version.tags["mlpipe.registered_by_run_id"] == run.run_id
    assert len(version.tags["mlpipe.config_hash"]) == 64


def test_augment_top_k_and_imagenet_normalisation_reach_mlflow_and_the_model_spec(
        digits: Path, isolated_env: Path) -> None:
    config = {"model": "simple_cnn", "epochs": 2, "batch_size": 64, "lr": 0.01, "seed": 0,
              "augment": [{"name": "RandomRotation", "degrees": 5}], "normalize": "imagenet",
              "top_k": 2}
    with DAG("digits_augment") as dag:
        prep = ImagePreprocessOperator(task_id="preprocess", input_uri=digits.as_uri(),
                                       image_size=(8, 8), grayscale=True, num_workers=1)
        train = TorchTrainOperator(task_id="train", dataset_uri=prep.output, config=config)
        EvaluateModelOperator(task_id="evaluate", model_uri=train.output,
                              dataset_uri=prep.output, split="test")
    run = dag.test()
    assert run.state == "success", [(t.task_id, t.error) for t in run.task_instances]
    model = run.get_task_instance("train").xcom_pull()

    from mlflow import MlflowClient

    from mlpipe.tracking.models import SPEC_KEY, load_model

    client = MlflowClient(f"sqlite:///{isolated_env / 'mlflow.db'}")
    run_id = model.extra["run_id"]
    assert [m.step for m in client.get_metric_history(run_id, "val_top2_acc")] == [1, 2]
    assert "RandomRotation" in client.get_run(run_id).data.params["augment"]
    spec = load_model(model.uri, client.tracking_uri).metadata[SPEC_KEY]
    assert spec["mean"] == [pytest.approx((0.485 + 0.456 + 0.406) / 3)]  # gray: averaged

    # evaluation preprocesses as training did (ImageNet statistics), as serving does
    import numpy as np

    from mlpipe.ml.inference import ModelSpec, predict_pixels
    from mlpipe.ml.shards import ShardDataset

    loaded = load_model(model.uri, client.tracking_uri)
    dataset_dir = run.get_task_instance("preprocess").xcom_pull().uri.removeprefix("file://")
    test = ShardDataset(dataset_dir, "test")
    pixels = [test[i][0].numpy() for i in range(len(test))]
    served = [p.label for p in predict_pixels(loaded.model, ModelSpec.from_dict(spec), pixels)]
    expected = float(np.mean([label == test.classes[int(y)]
                              for label, y in zip(served, test.targets, strict=True)]))
    evaluate_run = client.search_runs([client.get_run(run_id).info.experiment_id],
                                      "tags.`mlpipe.task_id` = 'evaluate'")[0]
    assert evaluate_run.data.metrics["test_accuracy"] == pytest.approx(expected)
