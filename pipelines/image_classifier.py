"""image_classifier: S3 images -> preprocess -> train -> evaluate -> upload -> register.

Configured by configs/image_classifier.yaml; `source`, `model_name` and `epochs` can be
overridden per run with --conf.
"""

from datetime import timedelta
from pathlib import Path

import yaml

from mlpipe import DAG, Param
from mlpipe.operators import (
    EvaluateModelOperator,
    ImagePreprocessOperator,
    RegisterModelOperator,
    S3DownloadOperator,
    S3UploadOperator,
    TorchTrainOperator,
)

CONFIG = yaml.safe_load(
    (Path(__file__).resolve().parents[1] / "configs" / "image_classifier.yaml").read_text())
TRAIN = CONFIG["train"]

with DAG(
    "image_classifier",
    schedule=None,
    tags=["ml", "demo"],
    params={
        "source": Param(CONFIG["source"], type="string", pattern="^s3://"),
        "model_name": Param(CONFIG["model_name"], type="string", minLength=1),
        "epochs": Param(TRAIN["epochs"], type="integer", minimum=1, maximum=1000),
    },
    default_args={"retries": 1, "retry_delay": timedelta(seconds=10)},
) as dag:
    download = S3DownloadOperator(task_id="download", source="{{ params.source }}",
                                  aws_conn_id=CONFIG["aws_conn_id"], include="*.png")
    preprocess = ImagePreprocessOperator(
        task_id="preprocess", input_uri=download.output,
        image_size=tuple(CONFIG["image_size"]), grayscale=CONFIG["grayscale"],
        val_fraction=CONFIG["val_fraction"], test_fraction=CONFIG["test_fraction"],
        seed=CONFIG["seed"])
    train = TorchTrainOperator(task_id="train", dataset_uri=preprocess.output,
                               config={**TRAIN, "epochs": "{{ params.epochs }}"})
    evaluate = EvaluateModelOperator(task_id="evaluate", model_uri=train.output,
                                     dataset_uri=preprocess.output, split="test")
    upload = S3UploadOperator(task_id="upload", source_uri=preprocess.output,
                              dest=CONFIG["upload_to"] + "{{ ds_nodash }}/",
                              aws_conn_id=CONFIG["aws_conn_id"])
    register = RegisterModelOperator(task_id="register", model_uri=train.output,
                                     name="{{ params.model_name }}")
    evaluate >> upload >> register
