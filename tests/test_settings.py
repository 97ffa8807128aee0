"""The settings loader (SPEC section 9): overrides beat the environment, which beats
``mlpipe.toml`` in the working directory, which beats the defaults; a bad value anywhere is
one ``SettingsError`` line naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlpipe.errors import SettingsError
from mlpipe.settings import load_settings


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("MLPIPE_HOME", "MLPIPE_EXECUTOR", "MLPIPE_PARALLELISM", "MLPIPE_DATABASE_URL",
                 "MLPIPE_TASK_LEASE_S", "MLPIPE_DAGS_PAUSED_AT_CREATION", "MLFLOW_TRACKING_URI",
                 "MLPIPE_XCOM_MAX_BYTES", "MLPIPE_LOCAL_ISOLATION", "MLPIPE_GPUS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults() -> None:
    settings = load_settings()
    assert settings.home == Path(".mlpipe") and settings.executor == "sequential"
    assert settings.xcom_max_bytes == 48 * 1024 and settings.task_lease_s == 60.0
    assert settings.parallelism >= 1 and settings.dags_paused_at_creation is False
    assert settings.database == f"sqlite:///{Path('.mlpipe').resolve() / 'mlpipe.db'}"


def test_environment_beats_toml_and_overrides_beat_both(
        clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean_env / "mlpipe.toml").write_text(
        'executor = "local"\nparallelism = 3\ntask_lease_s = 5\nhome = "from_toml"\n'
        'dags_paused_at_creation = true\nmlflow_tracking_uri = "http://toml:5000"\n'
        'unknown_key = 1\n')
    settings = load_settings()
    assert (settings.executor, settings.parallelism, settings.task_lease_s) == ("local", 3, 5.0)
    assert settings.home == Path("from_toml") and settings.dags_paused_at_creation is True
    assert settings.mlflow_tracking_uri == "http://toml:5000"
    monkeypatch.setenv("MLPIPE_PARALLELISM", "7")
    monkeypatch.setenv("mlpipe_dags_paused_at_creation", "off")  # any case, as before
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://env:5000")
    settings = load_settings()
    assert settings.parallelism == 7 and settings.dags_paused_at_creation is False
    assert settings.mlflow_tracking_uri == "http://env:5000"
    settings = load_settings(parallelism=2, home=str(clean_env / "h"))
    assert settings.parallelism == 2 and settings.home == clean_env / "h"


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("MLPIPE_PARALLELISM", "0", "Input should be greater than or equal to 1"),
    ("MLPIPE_PARALLELISM", "many",
     "Input should be a valid integer, unable to parse string as an integer"),
    ("MLPIPE_TASK_LEASE_S", "-1", "Input should be greater than 0"),
    ("MLPIPE_TASK_LEASE_S", "nan", "Input should be greater than 0"),
    ("MLPIPE_XCOM_MAX_BYTES", "1.5",
     "Input should be a valid integer, unable to parse string as an integer"),
    ("MLPIPE_DAGS_PAUSED_AT_CREATION", "maybe",
     "Input should be a valid boolean, unable to interpret input"),
    ("MLPIPE_EXECUTOR", "dask",
     "unknown executor 'dask'; valid: ['celery', 'local', 'sequential']"),
])
def test_a_bad_environment_value_is_one_line_naming_the_variable(
        monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == f"setting {variable}: {message}"


def test_a_bad_toml_value_names_the_variable_too(clean_env: Path) -> None:
    (clean_env / "mlpipe.toml").write_text('parallelism = "lots"\n')
    with pytest.raises(SettingsError, match=r"^setting MLPIPE_PARALLELISM: Input should be a "
                                            r"valid integer"):
        load_settings()
    (clean_env / "mlpipe.toml").write_text("executor = 3\n")
    with pytest.raises(SettingsError,
                       match=r"^setting MLPIPE_EXECUTOR: Input should be a valid string$"):
        load_settings()


def test_a_malformed_toml_file_is_one_line_naming_the_file(clean_env: Path) -> None:
    (clean_env / "mlpipe.toml").write_text("executor = \n")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value).startswith("settings file 'mlpipe.toml' is not valid TOML: ")
    assert "\n" not in str(caught.value)


def test_a_bad_override_is_refused_like_the_variable() -> None:
    with pytest.raises(SettingsError, match=r"^setting MLPIPE_PARALLELISM: Input should be "
                                            r"greater than or equal to 1$"):
        load_settings(parallelism=0)


def test_secrets_stay_out_of_the_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPIPE_WEBSERVER_SECRET_KEY", "s3cr3t-web")
    monkeypatch.setenv("MLPIPE_FERNET_KEY", "s3cr3t-fernet")
    settings = load_settings()
    assert settings.webserver_secret_key == "s3cr3t-web"
    assert "s3cr3t" not in repr(settings)
