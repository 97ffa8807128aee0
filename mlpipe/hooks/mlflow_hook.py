"""``MlflowHook``: an ``MlflowClient`` on the configured tracking store (mlflow loads lazily)."""

from __future__ import annotations

from typing import Any

from mlpipe.tracking.config import TrackingConfig


class MlflowHook:
    """An ``MlflowClient`` bound to ``tracking_uri``.

    Without one, the settings decide: ``MLFLOW_TRACKING_URI``, else
    ``sqlite:///$MLPIPE_HOME/mlflow.db`` (read on first use, not at construction).
    """

    def __init__(self, tracking_uri: str | None = None, *,
                 config: TrackingConfig | None = None) -> None:
        self._tracking_uri = tracking_uri
        self._config = config
        self._client: Any = None

    @property
    def config(self) -> TrackingConfig:
        """Where runs and artifacts go."""
        if self._config is None:
            from mlpipe.settings import load_settings

            settings = load_settings()
            self._config = TrackingConfig.default(settings.home, self._tracking_uri
                                                  or settings.mlflow_tracking_uri)
        return self._config

    @property
    def tracking_uri(self) -> str:
        return self.config.tracking_uri

    def get_conn(self) -> Any:
        """The ``mlflow.MlflowClient`` (created once per hook)."""
        if self._client is None:
            from mlpipe.tracking.mlflow_runs import client_for

            self._client = client_for(self.config)
        return self._client

    def test_connection(self) -> str:
        """Search experiments: proves the tracking store answers."""
        experiments = self.get_conn().search_experiments(max_results=1)
        return f"tracking store {self.tracking_uri} answers ({len(experiments)} experiment(s))"
