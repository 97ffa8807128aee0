"""mlpipe: ML training pipelines as Airflow-style DAGs, with artifact lineage and MLflow.

Importing this package is cheap: no torch, mlflow, boto3 or database driver is loaded, and
the authoring names (``DAG``, ``task``...) are imported on first use, so ``mlpipe --help``
and other subpackages do not pay for them (PEP 562 ``__getattr__``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlpipe.core import engine_port

if TYPE_CHECKING:
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


def _load(name: str) -> Any:
    """The public name ``name``, imported now (static imports, visible to import-linter)."""
    if name in ("DAG", "dag"):
        from mlpipe.core import dag as dag_module
        return getattr(dag_module, name)
    if name in ("Asset", "Dataset", "DatasetAll", "DatasetAny"):
        from mlpipe.core import datasets as datasets_module
        return getattr(datasets_module, name)
    if name == "chain":
        from mlpipe.core.dependencies import chain
        return chain
    if name == "Param":
        from mlpipe.core.params import Param
        return Param
    if name in ("TaskGroup", "task_group"):
        from mlpipe.core import task_group as group_module
        return getattr(group_module, name)
    if name == "TriggerRule":
        from mlpipe.core.trigger_rule import TriggerRule
        return TriggerRule
    if name == "XComArg":
        from mlpipe.core.xcom_arg import XComArg
        return XComArg
    from mlpipe.decorators import task
    return task


def __getattr__(name: str) -> Any:
    """``mlpipe.DAG``, ``from mlpipe import task``...: imported on first access."""
    if name not in __all__:
        raise AttributeError(f"module 'mlpipe' has no attribute {name!r}")
    value = _load(name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
