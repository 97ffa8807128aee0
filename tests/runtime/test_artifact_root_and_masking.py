"""Where tasks write artifacts (MLPIPE_ARTIFACT_ROOT), and secrets kept out of task errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlpipe import DAG, task
from mlpipe.artifacts import open_store


def test_artifact_prefix_defaults_under_mlpipe_home(isolated_env: Path) -> None:
    with DAG("writer") as dag:
        @task
        def write(artifact_prefix=None):
            uri = artifact_prefix + "out.txt"
            store = open_store(uri)
            store.write_bytes(uri, b"hello")
            return store.describe(uri, "file")

        write()
    run = dag.test(logical_date="2024-02-03")
    ti = run.get_task_instance("write")
    artifact = ti.xcom_pull()
    root = (isolated_env / "artifacts").as_uri()
    assert artifact.uri == f"{root}/writer/{run.run_id}/write/out.txt"
    assert open_store(artifact.uri).read_bytes(artifact.uri) == b"hello"


def test_artifact_root_setting_and_mapped_instances(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    root = (tmp_path / "elsewhere").as_uri()
    monkeypatch.setenv("MLPIPE_ARTIFACT_ROOT", root)
    with DAG("mapped_writer") as dag:
        @task
        def where(i: int, artifact_prefix=None) -> str:
            return artifact_prefix

        where.expand(i=[0, 1])
    run = dag.test()
    prefixes = [run.get_task_instance("where", i).xcom_pull() for i in (0, 1)]
    assert prefixes == [f"{root}/mapped_writer/{run.run_id}/where/{i}/" for i in (0, 1)]


def test_a_secret_in_an_exception_is_masked_in_the_stored_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPIPE_CONN_WAREHOUSE", "postgresql://etl:sup3rs3cret@db:5432/dw")
    with DAG("leaky") as dag:
        @task
        def connect():
            from mlpipe.connections import get_connection

            conn = get_connection("warehouse")
            raise RuntimeError(f"could not log in with {conn.password}")

        connect()
    run = dag.test()
    ti = run.get_task_instance("connect")
    assert ti.state == "failed"
    assert ti.error == "RuntimeError: could not log in with ***"
    assert "sup3rs3cret" not in ti.log
