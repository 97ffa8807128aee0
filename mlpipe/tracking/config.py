"""Where MLflow data goes; built from settings where the program starts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TrackingConfig:
    """``tracking_uri`` (sqlite:///..., http://...) and the root of experiment artifacts."""

    tracking_uri: str
    artifact_root: str

    @classmethod
    def default(cls, home: Path, tracking_uri: str | None = None) -> TrackingConfig:
        """``sqlite:///$MLPIPE_HOME/mlflow.db`` with artifacts in ``$MLPIPE_HOME/mlartifacts``."""
        home = home.resolve()
        uri = tracking_uri or f"sqlite:///{home / 'mlflow.db'}"
        return cls(uri, (home / "mlartifacts").as_uri())
