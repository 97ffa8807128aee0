"""mlpipe: ML training pipelines as Airflow-style DAGs, with artifact lineage and MLflow.

Importing this package is cheap: no torch, mlflow, boto3 or database driver is loaded.
"""

from __future__ import annotations

from typing import Any

from mlpipe.core import engine_port
from mlpipe.core.dag import DAG, dag
from mlpipe.core.datasets import Asset, Dataset, DatasetAll, DatasetAny
from mlpipe.core.dependencies import chain
from mlpipe.core.params import Param
from mlpipe.core.task_group import TaskGroup, task_group
from mlpipe.core.trigger_rule import TriggerRule
from mlpipe.core.xcom_arg import XComArg
from mlpipe.decorators import task

__version__ = "0.1.0"


def _test_dag(dag: DAG, **kwargs: Any) -> Any:
    """``DAG.test()``'s engine: imported on first use, so ``import mlpipe`` stays cheap."""
    from mlpipe.scheduler.dag_test import test_dag

    return test_dag(dag, **kwargs)


engine_port.install_dag_tester(_test_dag)

__all__ = [  # noqa: RUF022 - plain sorted() order, as tests/core/test_public_api.py locks it
    "Asset",
    "DAG",
    "Dataset",
    "DatasetAll",
    "DatasetAny",
    "Param",
    "TaskGroup",
    "TriggerRule",
    "XComArg",
    "__version__",
    "chain",
    "dag",
    "task",
    "task_group",
]
