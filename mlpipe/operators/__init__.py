"""Operators, each imported on first use: ``from mlpipe.operators import BashOperator`` loads
the bash operator alone (the S3 and ML operators pull in HTTP, hooks and artifact stores, and
``import mlpipe`` must not pay for them). No torch here.

May import: mlpipe.core, mlpipe.hooks, mlpipe.artifacts, mlpipe.tracking, mlpipe.ml, mlpipe.s3.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlpipe.operators.bash import BashOperator
    from mlpipe.operators.deploy import DeployGate, DeployModelOperator
    from mlpipe.operators.empty import EmptyOperator
    from mlpipe.operators.evaluate import EvaluateModelOperator
    from mlpipe.operators.image import ImagePreprocessOperator
    from mlpipe.operators.python import (
        BranchPythonOperator,
        PythonOperator,
        ShortCircuitOperator,
    )
    from mlpipe.operators.register import RegisterModelOperator
    from mlpipe.operators.s3 import S3DownloadOperator
    from mlpipe.operators.s3_upload import S3UploadOperator
    from mlpipe.operators.sql import SQLExecuteQueryOperator
    from mlpipe.operators.train import TorchTrainOperator

__all__ = [
    "BashOperator",
    "BranchPythonOperator",
    "DeployGate",
    "DeployModelOperator",
    "EmptyOperator",
    "EvaluateModelOperator",
    "ImagePreprocessOperator",
    "PythonOperator",
    "RegisterModelOperator",
    "S3DownloadOperator",
    "S3UploadOperator",
    "SQLExecuteQueryOperator",
    "ShortCircuitOperator",
    "TorchTrainOperator",
]


def _load(name: str) -> Any:
    """The operator class ``name``, imported now (static imports, visible to import-linter)."""
    if name == "BashOperator":
        from mlpipe.operators.bash import BashOperator
        return BashOperator
    if name in ("DeployGate", "DeployModelOperator"):
        from mlpipe.operators import deploy
        return getattr(deploy, name)
    if name == "EmptyOperator":
        from mlpipe.operators.empty import EmptyOperator
        return EmptyOperator
    if name == "EvaluateModelOperator":
        from mlpipe.operators.evaluate import EvaluateModelOperator
        return EvaluateModelOperator
    if name == "ImagePreprocessOperator":
        from mlpipe.operators.image import ImagePreprocessOperator
        return ImagePreprocessOperator
    if name in ("BranchPythonOperator", "PythonOperator", "ShortCircuitOperator"):
        from mlpipe.operators import python
        return getattr(python, name)
    if name == "RegisterModelOperator":
        from mlpipe.operators.register import RegisterModelOperator
        return RegisterModelOperator
    if name == "S3DownloadOperator":
        from mlpipe.operators.s3 import S3DownloadOperator
        return S3DownloadOperator
    if name == "S3UploadOperator":
        from mlpipe.operators.s3_upload import S3UploadOperator
        return S3UploadOperator
    if name == "SQLExecuteQueryOperator":
        from mlpipe.operators.sql import SQLExecuteQueryOperator
        return SQLExecuteQueryOperator
    from mlpipe.operators.train import TorchTrainOperator
    return TorchTrainOperator


def __getattr__(name: str) -> Any:
    """``mlpipe.operators.<Operator>``: import its module on first access (PEP 562)."""
    if name not in __all__:
        raise AttributeError(f"module 'mlpipe.operators' has no attribute {name!r}")
    value = _load(name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
