"""retrain_on_new_data: retrain when new labelled images land in the bucket.

Scheduled on the ``s3://`` dataset of the training images (``source`` in
configs/image_classifier.yaml): the scheduler lists the prefix every
``MLPIPE_DATASET_POLL_S`` seconds, and a change (new, changed or deleted images) creates
one run, whose conf lists the keys (``triggering_dataset_events``). The run mirrors the
prefix incrementally (only new or changed objects are fetched), then preprocesses, trains,
evaluates, uploads, registers and deploys only a model that beats production. The images
already in the bucket when the scheduler first lists it are the baseline: no run for them
(``mlpipe dags trigger retrain_on_new_data`` trains on them by hand).
"""

from datetime import timedelta
from pathlib import Path

from mlpipe import DAG, Dataset
from mlpipe.errors import PipelineConfigError
from mlpipe.recipes.image_classifier import (
    add_image_classifier_tasks,
    load_pipeline_config,
    pipeline_params,
)

CONFIG_FILE = Path(__file__).resolve().parents[1] / "configs" / "image_classifier.yaml"
CONFIG = load_pipeline_config(CONFIG_FILE)
if CONFIG.upload_to.startswith(CONFIG.source):
    # the run's own upload would land under the watched prefix and trigger the next run
    raise PipelineConfigError(
        f"{CONFIG_FILE}: upload_to {CONFIG.upload_to!r} is inside source {CONFIG.source!r}; "
        "uploads there would trigger retraining forever: choose another prefix")

TRAINING_IMAGES = Dataset(CONFIG.source, extra={"aws_conn_id": CONFIG.aws_conn_id})

with DAG(
    "retrain_on_new_data",
    schedule=[TRAINING_IMAGES],
    catchup=False,
    max_active_runs=1,
    tags=["ml", "datasets"],
    params=pipeline_params(CONFIG),
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1),
                  "retry_exponential_backoff": True, "max_retry_delay": timedelta(minutes=15)},
) as dag:
    add_image_classifier_tasks(CONFIG, train_pool="training")
