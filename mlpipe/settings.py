"""Settings from ``MLPIPE_*`` environment variables or ``mlpipe.toml``, read at start-up.

A plain dataclass with small typed parsers and ``tomllib``: every process reads settings
first, and pydantic-settings cost a fresh ``dag.test()`` 94% of its import time.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from mlpipe.errors import SettingsError
from mlpipe.tracking.config import TrackingConfig

#: executor names ``MLPIPE_EXECUTOR`` accepts
KNOWN_EXECUTORS = ("celery", "local", "sequential")
#: local executor isolation modes ``MLPIPE_LOCAL_ISOLATION`` accepts
KNOWN_ISOLATIONS = ("fork", "reuse")
#: the settings file, read from the working directory
TOML_FILE = "mlpipe.toml"
#: settings read under another name than ``MLPIPE_<FIELD>`` (MLflow's own variable)
ALIASES = {"mlflow_tracking_uri": "MLFLOW_TRACKING_URI"}

_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "f", "false", "n", "no", "off"})


def _path(value: Any) -> Path:
    if isinstance(value, str | os.PathLike):
        return Path(value)
    raise ValueError("Input should be a valid path")


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise ValueError("Input should be a valid string")


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _integer(minimum: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise ValueError("Input should be a valid integer, unable to parse string as "
                                 "an integer") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("Input should be a valid integer")
        if value < minimum:
            raise ValueError(f"Input should be greater than or equal to {minimum}")
        return value
    return parse


def _positive_number(value: Any) -> float:
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValueError("Input should be a valid number, unable to parse string as a "
                             "number") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("Input should be a valid number")
    if not value > 0:  # NaN too
        raise ValueError("Input should be greater than 0")
    return float(value)


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
    raise ValueError("Input should be a valid boolean, unable to interpret input")


def _one_of(known: tuple[str, ...], what: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = _text(value)
        if text not in known:
            raise ValueError(f"unknown {what} {text!r}; valid: {list(known)}")
        return text
    return parse


def _parsed(parse: Callable[[Any], Any]) -> dict[str, Any]:
    """A settings field's metadata: the parser of its raw value (text, TOML value, override)."""
    return {"parse": parse}


_EXECUTOR = _parsed(_one_of(KNOWN_EXECUTORS, "executor"))
_ISOLATION = _parsed(_one_of(KNOWN_ISOLATIONS, "isolation"))
_COUNT = _parsed(_integer(1))
_SECONDS = _parsed(_positive_number)
_TEXT = _parsed(_text)
_OPTIONAL = _parsed(_optional_text)


@dataclass
class Settings:
    """Every setting mlpipe reads (SPEC section 9). Environment beats ``mlpipe.toml``."""

    home: Path = field(default=Path(".mlpipe"), metadata=_parsed(_path))
    dags_folder: Path = field(default=Path("pipelines"), metadata=_parsed(_path))
    database_url: str | None = field(default=None, metadata=_OPTIONAL)
    executor: str = field(default="sequential", metadata=_EXECUTOR)
    parallelism: int = field(default_factory=lambda: os.cpu_count() or 1,
                             metadata=_COUNT)
    #: the local executor's tries: ``reuse`` (run by warm pool workers, which are restored
    #: after each try and replaced when one leaked) or ``fork`` (a fresh child per try)
    local_isolation: str = field(default="reuse", metadata=_ISOLATION)
    artifact_root: str | None = field(default=None, metadata=_OPTIONAL)
    fernet_key: str | None = field(default=None, repr=False, metadata=_OPTIONAL)
    xcom_max_bytes: int = field(default=48 * 1024, metadata=_COUNT)
    #: the Celery broker of the ``celery`` executor and ``mlpipe worker`` (Redis or RabbitMQ)
    celery_broker_url: str = field(default="redis://127.0.0.1:6379/0", metadata=_TEXT)
    #: where each try's log is copied (an artifact URI: ``s3://bucket/logs/``, ``file://...``)
    remote_log_uri: str | None = field(default=None, metadata=_OPTIONAL)
    #: GPU indices the local executor hands out (``0,1``); unset: every visible GPU
    gpus: str | None = field(default=None, metadata=_OPTIONAL)
    #: a running try's lease: a try whose heartbeat is older than this is failed or retried
    task_lease_s: float = field(default=60.0, metadata=_SECONDS)
    #: a DAG file that takes longer to import is an import error
    dag_parse_timeout_s: float = field(default=30.0, metadata=_SECONDS)
    #: seconds between two listings of each polled ``s3://`` dataset (data-aware scheduling)
    dataset_poll_s: float = field(default=60.0, metadata=_SECONDS)
    #: new DAGs start paused (``is_paused_upon_creation=`` on a DAG overrides it)
    dags_paused_at_creation: bool = field(default=False, metadata=_parsed(_boolean))
    #: signs the web UI's session cookies; generated into ``$MLPIPE_HOME`` when unset
    webserver_secret_key: str | None = field(default=None, repr=False, metadata=_OPTIONAL)
    #: MLflow's own variable, as MLflow users set it
    mlflow_tracking_uri: str | None = field(default=None, metadata=_OPTIONAL)
    #: where the web UI's links to MLflow runs and model versions point (``mlpipe ui``)
    mlflow_ui_url: str = field(default="http://127.0.0.1:5000", metadata=_TEXT)

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


def variable_name(name: str) -> str:
    """The environment variable of setting ``name`` (``MLPIPE_HOME``, ``MLFLOW_TRACKING_URI``)."""
    return ALIASES.get(name, "MLPIPE_" + name.upper())


def _toml_values(path: Path) -> dict[str, Any]:
    """The top-level keys of ``mlpipe.toml`` (none when there is no file)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise SettingsError(f"settings file {str(path)!r}: {exc.strerror}") from None
    import tomllib

    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"settings file {str(path)!r} is not valid TOML: {exc}") from None


def load_settings(**overrides: Any) -> Settings:
    """Read the settings now; a bad value raises ``SettingsError`` naming the variable.

    Each setting comes from the first of: ``overrides``, the environment (``MLPIPE_<NAME>``,
    any case), ``mlpipe.toml`` in the working directory, the default.
    """
    environ = {k.upper(): v for k, v in os.environ.items()}
    toml: dict[str, Any] | None = None
    values: dict[str, Any] = {}
    for spec in fields(Settings):
        name = spec.name
        variable = variable_name(name)
        if name in overrides:
            raw = overrides[name]
        elif variable in environ:
            raw = environ[variable]
        else:
            if toml is None:
                toml = _toml_values(Path(TOML_FILE))
            keys = [name, variable] if name in ALIASES else [name]
            found = [toml[k] for k in keys if k in toml]
            if not found:
                continue
            raw = found[0]
        try:
            values[name] = spec.metadata["parse"](raw)
        except ValueError as exc:
            raise SettingsError(f"setting {variable}: {exc}") from None
    settings = Settings(**values)
    _refuse_celery_on_sqlite(settings)
    return settings


def _refuse_celery_on_sqlite(settings: Settings) -> None:
    url = settings.database_url
    if settings.executor == "celery" and (url is None or url.startswith("sqlite")):
        raise SettingsError(
            f"setting MLPIPE_EXECUTOR: the celery executor needs a database every worker can "
            f"reach, not SQLite ({url or 'the default $MLPIPE_HOME/mlpipe.db'}); set "
            f"MLPIPE_DATABASE_URL=postgresql+psycopg://USER@HOST/DB")
