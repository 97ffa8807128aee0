"""image_classifier: S3 images -> preprocess -> train -> evaluate -> upload -> register ->
deploy, run on demand (``mlpipe dags trigger image_classifier`` or ``mlpipe demo``).

Configured by configs/image_classifier.yaml; ``source``, ``model_name``, ``epochs`` and
``serving_url`` can be overridden per run with ``--conf``.
"""

from datetime import timedelta
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
    "image_classifier",
    schedule=None,
    tags=["ml", "demo"],
    params=pipeline_params(CONFIG),
    default_args={"retries": 1, "retry_delay": timedelta(seconds=10)},
) as dag:
    add_image_classifier_tasks(CONFIG)
