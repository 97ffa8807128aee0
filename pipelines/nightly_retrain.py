"""nightly_retrain: the image_classifier path every night at 02:00, deploying only a model
that beats the one in production (the gate in configs/image_classifier.yaml).

No catchup (a missed night is not replayed), retries with exponential backoff, and training
in the ``training`` pool of one slot, so two trainings never share the machine. Once:
``mlpipe pools set training 1``; then ``mlpipe dags unpause nightly_retrain`` and
``mlpipe scheduler``.
"""

from datetime import datetime, timedelta
from pathlib import Path

from mlpipe import DAG
from mlpipe.recipes.image_classifier import (
    add_image_classifier_tasks,
    load_pipeline_config,
    pipeline_params,
)

CONFIG = load_pipeline_config(Path(__file__).resolve().parents[1] / "configs" /
                              "image_classifier.yaml")

with DAG(
    "nightly_retrain",
    schedule="0 2 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["ml", "nightly"],
    params=pipeline_params(CONFIG),
    default_args={"retries": 2, "retry_delay": timedelta(minutes=2),
                  "retry_exponential_backoff": True, "max_retry_delay": timedelta(minutes=30)},
) as dag:
    add_image_classifier_tasks(CONFIG, train_pool="training")
