"""mlpipe: ML training pipelines as Airflow-style DAGs, with artifact lineage and MLflow.

Importing this package is cheap: no torch, mlflow, boto3 or database driver is loaded.
"""

from __future__ import annotations

from mlpipe.core.dag import DAG, dag
from mlpipe.core.dependencies import chain
from mlpipe.core.params import Param
from mlpipe.core.task_group import TaskGroup, task_group
from mlpipe.core.trigger_rule import TriggerRule
from mlpipe.core.xcom_arg import XComArg
from mlpipe.decorators import task

__version__ = "0.1.0"

__all__ = [
    "DAG",
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
