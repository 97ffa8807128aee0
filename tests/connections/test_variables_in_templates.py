"""``var.value.NAME`` / ``var.json.NAME``: the environment, the run's store, the configured DB."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mlpipe import DAG
from mlpipe.connections.metastore_backend import SecretsStore
from mlpipe.errors import TemplateRenderError
from mlpipe.operators import BashOperator
from mlpipe.runtime.context import VariableAccessor
from mlpipe.store.metadata_store import MetadataStore

LOGICAL = datetime(2024, 1, 15, tzinfo=UTC)


@pytest.fixture
def run_store(tmp_path: Path) -> Iterator[MetadataStore]:
    """A metadata store that is not the configured one (like dag.test()'s)."""
    store = MetadataStore.open(f"sqlite:///{tmp_path / 'run.db'}")
    yield store
    store.dispose()


def test_the_accessor_reads_the_runs_own_store(run_store: MetadataStore) -> None:
    SecretsStore(run_store.engine).set_variable("cfg", '{"lr": 0.01, "layers": [8, 4]}')

    var = VariableAccessor(run_store)

    assert var.json.cfg["layers"] == [8, 4]
    assert var.value.cfg == '{"lr": 0.01, "layers": [8, 4]}'
    assert var.value.get("absent", "fallback") == "fallback"


def test_an_encrypted_variable_is_read_with_the_configured_key(
        monkeypatch: pytest.MonkeyPatch, run_store: MetadataStore, fernet_key: str) -> None:
    SecretsStore(run_store.engine, fernet_key=fernet_key).set_variable("bucket", '"models"')
    monkeypatch.setenv("MLPIPE_FERNET_KEY", fernet_key)

    assert VariableAccessor(run_store).value.bucket == "models"


def test_the_environment_wins_and_a_missing_name_is_a_render_error(
        monkeypatch: pytest.MonkeyPatch, run_store: MetadataStore) -> None:
    SecretsStore(run_store.engine).set_variable("epochs", "10")
    monkeypatch.setenv("MLPIPE_VAR_EPOCHS", "3")
    var = VariableAccessor(run_store)

    assert var.json.epochs == 3
    with pytest.raises(TemplateRenderError, match=r"variable 'epoch' is not set; known: "
                                                  r"\['epochs'\]; did you mean 'epochs'\?"):
        _ = var.value.epoch


def test_dag_test_sees_variables_of_the_configured_database(
        configured_store: SecretsStore) -> None:
    configured_store.set_variable("greeting", '"hello from the db"')
    configured_store.set_variable("cfg", '{"lr": 0.5}')
    with DAG("tpl_db_var", start_date=LOGICAL) as dag:
        BashOperator(task_id="echo",
                     bash_command="echo {{ var.value.greeting }} {{ var.json.cfg.lr }}")

    run = dag.test(LOGICAL)

    assert run.get_task_instance("echo").xcom_pull() == "hello from the db 0.5"
