"""MLflow at the engine level: the one place that imports mlflow (lazily).

Every DAG run that logs anything to MLflow is one parent run in the experiment named after
the DAG; each try of a task that logs is a nested child run. Runs are created and ended by
run id through ``MlflowClient`` (never the fluent API's thread-local active run), so any
process can add to them.

May import: mlpipe.store (its protocols), mlpipe.core, mlpipe.errors; mlflow (lazily).
"""

from mlpipe.tracking.config import TrackingConfig

__all__ = ["TrackingConfig"]
