"""Settings from ``MLPIPE_*`` environment variables or ``mlpipe.toml``, read at start-up."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from mlpipe.errors import SettingsError
from mlpipe.tracking.config import TrackingConfig

#: executor names ``MLPIPE_EXECUTOR`` accepts
KNOWN_EXECUTORS = ("celery", "local", "sequential")


class Settings(BaseSettings):
    """Every setting mlpipe reads (SPEC section 9). Environment beats ``mlpipe.toml``."""

    model_config = SettingsConfigDict(env_prefix="MLPIPE_", toml_file="mlpipe.toml",
                                      extra="ignore")

    home: Path = Path(".mlpipe")
    dags_folder: Path = Path("pipelines")
    database_url: str | None = None
    executor: str = "sequential"
    parallelism: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    #: the local executor's tries: ``reuse`` (run by warm pool workers, which are restored
    #: after each try and replaced when one leaked) or ``fork`` (a fresh child per try)
    local_isolation: str = "reuse"
    artifact_root: str | None = None
    fernet_key: str | None = None
    xcom_max_bytes: int = Field(default=48 * 1024, ge=1)
    #: the Celery broker of the ``celery`` executor and ``mlpipe worker`` (Redis or RabbitMQ)
    celery_broker_url: str = "redis://127.0.0.1:6379/0"
    #: where each try's log is copied (an artifact URI: ``s3://bucket/logs/``, ``file://...``)
    remote_log_uri: str | None = None
    #: GPU indices the local executor hands out (``0,1``); unset: every visible GPU
    gpus: str | None = None
    #: a running try's lease: a try whose heartbeat is older than this is failed or retried
    task_lease_s: float = Field(default=60.0, gt=0)
    #: a DAG file that takes longer to import is an import error
    dag_parse_timeout_s: float = Field(default=30.0, gt=0)
    #: seconds between two listings of each polled ``s3://`` dataset (data-aware scheduling)
    dataset_poll_s: float = Field(default=60.0, gt=0)
    #: new DAGs start paused (``is_paused_upon_creation=`` on a DAG overrides it)
    dags_paused_at_creation: bool = False
    #: signs the web UI's session cookies; generated into ``$MLPIPE_HOME`` when unset
    webserver_secret_key: str | None = Field(default=None, repr=False)
    #: MLflow's own variable, as MLflow users set it
    mlflow_tracking_uri: str | None = Field(
        default=None, validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "mlflow_tracking_uri"))
    #: where the web UI's links to MLflow runs and model versions point (``mlpipe ui``)
    mlflow_ui_url: str = "http://127.0.0.1:5000"

    @field_validator("executor")
    @classmethod
    def _known_executor(cls, value: str, info: ValidationInfo) -> str:
        known = KNOWN_EXECUTORS
        if value not in known:
            raise ValueError(f"unknown executor {value!r}; valid: {list(known)}")
        url = info.data.get("database_url")
        if value == "celery" and (url is None or url.startswith("sqlite")):
            raise ValueError(
                f"the celery executor needs a database every worker can reach, not SQLite "
                f"({url or 'the default $MLPIPE_HOME/mlpipe.db'}); set MLPIPE_DATABASE_URL="
                f"postgresql+psycopg://USER@HOST/DB")
        return value

    @field_validator("local_isolation")
    @classmethod
    def _known_isolation(cls, value: str) -> str:
        known = ("fork", "reuse")
        if value not in known:
            raise ValueError(f"unknown isolation {value!r}; valid: {list(known)}")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def tracking(self) -> TrackingConfig:
        """MLflow: ``MLFLOW_TRACKING_URI`` or ``sqlite:///$MLPIPE_HOME/mlflow.db``."""
        return TrackingConfig.default(self.home, self.mlflow_tracking_uri)

    @property
    def artifacts(self) -> str:
        """``MLPIPE_ARTIFACT_ROOT`` or ``file://$MLPIPE_HOME/artifacts``."""
        return self.artifact_root or (self.home.resolve() / "artifacts").as_uri()

    @property
    def fernet_key_file(self) -> Path:
        """``$MLPIPE_HOME/fernet.key``: the key used when ``MLPIPE_FERNET_KEY`` is unset."""
        return self.home.resolve() / "fernet.key"

    @property
    def webserver_secret_key_file(self) -> Path:
        """``$MLPIPE_HOME/webserver_secret.key``: used when ``MLPIPE_WEBSERVER_SECRET_KEY``
        is unset (made once, mode 0600)."""
        return self.home.resolve() / "webserver_secret.key"

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.home.resolve() / 'mlpipe.db'}"


def load_settings(**overrides: Any) -> Settings:
    """Read the settings now; a bad value raises ``SettingsError`` naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "MLPIPE_" + "_".join(str(p) for p in first["loc"]).upper()
        # pydantic prefixes messages raised by validators with "Value error, "
        message = str(first["msg"]).removeprefix("Value error, ")
        raise SettingsError(f"setting {name}: {message}") from None
