"""Operators. Light ones import at once; ML operators load on first use (no torch here).

May import: mlpipe.core, mlpipe.hooks, mlpipe.artifacts, mlpipe.tracking, mlpipe.ml, mlpipe.s3.
"""

from __future__ import annotations

from mlpipe.operators.bash import BashOperator
from mlpipe.operators.deploy import DeployGate, DeployModelOperator
from mlpipe.operators.empty import EmptyOperator
from mlpipe.operators.evaluate import EvaluateModelOperator
from mlpipe.operators.image import ImagePreprocessOperator
from mlpipe.operators.python import BranchPythonOperator, PythonOperator, ShortCircuitOperator
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
