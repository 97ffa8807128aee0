"""The link from a DAG run to its MLflow parent run (an id the tracking layer owns;
the store keeps it as an opaque string)."""

from __future__ import annotations

from sqlalchemy import (
    select,
    update,
)

from mlpipe.store.database import Database
from mlpipe.store.repositories.common import (
    RUN,
)


class TrackingLinkRepository(Database):
    """The link from a DAG run to its MLflow parent run (an id the tracking layer owns;"""

    def set_mlflow_run_id(self, dag_id: str, run_id: str, mlflow_run_id: str) -> str:
        """Record the DAG run's MLflow parent run unless one is recorded; returns the winner."""
        with self.writer.begin() as conn:
            conn.execute(update(RUN).where(RUN.c.dag_id == dag_id, RUN.c.run_id == run_id,
                                            RUN.c.mlflow_run_id.is_(None))
                         .values(mlflow_run_id=mlflow_run_id))
            return str(conn.execute(select(RUN.c.mlflow_run_id).where(
                RUN.c.dag_id == dag_id, RUN.c.run_id == run_id)).scalar_one())

    def get_mlflow_run_id(self, dag_id: str, run_id: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(RUN.c.mlflow_run_id).where(
                RUN.c.dag_id == dag_id, RUN.c.run_id == run_id)).scalar()
