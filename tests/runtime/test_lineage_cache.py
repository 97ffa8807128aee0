"""Lineage of returned artifacts, and the cache: hits on unchanged inputs, misses on change."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mlpipe import DAG, task
from mlpipe.artifacts import open_store
from mlpipe.cli.main import app
from mlpipe.core.artifact import Artifact
from mlpipe.operators import PythonOperator


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, Any]]:
    """A real S3-compatible endpoint (moto's server) on loopback, with one bucket."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{server._server.server_port}"
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="k",
                          aws_secret_access_key="s", region_name="us-east-1")
    client.create_bucket(Bucket="raw")
    try:
        yield {"endpoint": endpoint, "client": client}
    finally:
        server.stop()


def pipeline(out_dir: Path, s3: dict[str, Any], journal: Path, *, version: str = "1",
             scale: int = 2) -> DAG:
    """ingest (reads an S3 object, not cached) -> featurize (cached) -> train (cached)."""

    class Featurize(PythonOperator):
        operator_version = version

    with DAG("lineage_demo", default_args={"cache": True}) as dag:
        @task(cache=False)
        def ingest() -> Artifact:
            head = s3["client"].head_object(Bucket="raw", Key="data.csv")
            body = s3["client"].get_object(Bucket="raw", Key="data.csv")["Body"].read()
            uri = (out_dir / "raw.csv").as_uri()
            store = open_store(uri)
            store.write_bytes(uri, body)
            source = {"uri": "s3://raw/data.csv", "etag": head["ETag"].strip('"'),
                      "size": head["ContentLength"]}
            return store.describe(uri, "dataset", extra={"sources": [source]})

        def featurize(raw: Artifact, factor: int) -> Artifact:
            with journal.open("a") as fh:
                fh.write("featurize\n")
            store = open_store(raw.uri)
            rows = store.read_bytes(raw.uri).decode().split()
            uri = (out_dir / "features.json").as_uri()
            store.write_bytes(uri, json.dumps([int(r) * factor for r in rows]).encode())
            return store.describe(uri, "dataset")

        @task
        def train(features: Artifact) -> Artifact:
            with journal.open("a") as fh:
                fh.write("train\n")
            store = open_store(features.uri)
            total = sum(json.loads(store.read_bytes(features.uri)))
            uri = (out_dir / "model.json").as_uri()
            store.write_bytes(uri, json.dumps({"weight": total}).encode())
            return store.describe(uri, "model")

        raw = ingest()
        features = Featurize(task_id="featurize", python_callable=featurize,
                             op_kwargs={"raw": raw, "factor": scale})
        train(features.output)
    return dag


def lines(journal: Path) -> list[str]:
    return journal.read_text().split() if journal.exists() else []


_runs = iter(range(1000))


def run_in_store(tmp_path: Path, dag: DAG) -> Any:
    """One run through the persistent metadata store (where the cache lives)."""
    from mlpipe.scheduler.service import Engine
    from mlpipe.settings import load_settings

    engine = Engine.from_settings(load_settings(dags_folder=tmp_path))
    run_id = f"r{next(_runs)}"
    engine.trigger(dag, run_id=run_id)
    return engine.run(dag, run_id)


def test_second_run_hits_the_cache_and_says_so(tmp_path: Path, s3: dict[str, Any]) -> None:
    s3["client"].put_object(Bucket="raw", Key="data.csv", Body=b"1\n2\n3\n")
    journal = tmp_path / "journal"
    first = run_in_store(tmp_path, pipeline(tmp_path, s3, journal))
    assert first.state == "success"
    assert lines(journal) == ["featurize", "train"]

    second = run_in_store(tmp_path, pipeline(tmp_path, s3, journal))
    assert second.state == "success"
    assert lines(journal) == ["featurize", "train"]  # nothing ran again
    for task_id in ("featurize", "train"):
        ti = second.get_task_instance(task_id)
        assert ti is not None and "Cache hit" in ti.log
    model = second.get_task_instance("train").xcom_pull()
    assert isinstance(model, Artifact) and model.kind == "model"
    assert json.loads(open_store(model.uri).read_bytes(model.uri)) == {"weight": 12}


@pytest.mark.parametrize("change", ["etag", "argument", "operator_version", "deleted_output"])
def test_a_change_misses_the_cache(tmp_path: Path, s3: dict[str, Any], change: str) -> None:
    s3["client"].put_object(Bucket="raw", Key="data.csv", Body=b"1\n2\n3\n")
    journal = tmp_path / "journal"
    assert run_in_store(tmp_path, pipeline(tmp_path, s3, journal)).state == "success"
    kwargs: dict[str, Any] = {}
    if change == "etag":
        s3["client"].put_object(Bucket="raw", Key="data.csv", Body=b"1\n2\n3\n4\n")
    elif change == "argument":
        kwargs["scale"] = 3
    elif change == "operator_version":
        kwargs["version"] = "2"
    else:
        (tmp_path / "features.json").unlink()
    run = run_in_store(tmp_path, pipeline(tmp_path, s3, journal, **kwargs))
    assert run.state == "success"
    assert lines(journal)[2] == "featurize"  # featurize ran again
    assert "Cache hit" not in run.get_task_instance("featurize").log


def test_cache_false_always_runs(tmp_path: Path, s3: dict[str, Any]) -> None:
    s3["client"].put_object(Bucket="raw", Key="data.csv", Body=b"5\n")
    journal = tmp_path / "journal"
    dag = pipeline(tmp_path, s3, journal)
    for t in dag.tasks:
        t.cache = False
    assert run_in_store(tmp_path, dag).state == "success"
    assert run_in_store(tmp_path, dag).state == "success"
    assert lines(journal) == ["featurize", "train", "featurize", "train"]


def test_lineage_chain_back_to_the_s3_object(tmp_path: Path, s3: dict[str, Any],
                                             isolated_env: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the persistent store (dags trigger), then `mlpipe lineage` as a user runs it."""
    s3["client"].put_object(Bucket="raw", Key="data.csv", Body=b"7\n8\n")
    etag = s3["client"].head_object(Bucket="raw", Key="data.csv")["ETag"].strip('"')
    from mlpipe.scheduler.service import Engine
    from mlpipe.settings import load_settings

    engine = Engine.from_settings(load_settings(dags_folder=tmp_path))
    dag = pipeline(tmp_path, s3, tmp_path / "journal")
    engine.trigger(dag, run_id="r1")
    assert engine.run(dag, "r1").state == "success"

    model_uri = (tmp_path / "model.json").as_uri()
    result = CliRunner().invoke(app, ["lineage", model_uri, "--json"])
    assert result.exit_code == 0, result.output
    node = json.loads(result.stdout)
    assert node["kind"] == "model" and node["producer"]["task_id"] == "train"
    assert node["producer"]["run_id"] == "r1" and len(node["config_hash"]) == 64
    features = node["inputs"][0]
    assert features["uri"] == (tmp_path / "features.json").as_uri()
    assert features["producer"]["task_id"] == "featurize"
    raw = features["inputs"][0]
    assert raw["producer"]["task_id"] == "ingest"
    source = raw["inputs"][0]
    assert source == {"uri": "s3://raw/data.csv", "sha256": None, "size": 4, "etag": etag,
                      "version_id": None, "inputs": []}

    text = CliRunner().invoke(app, ["lineage", model_uri])
    assert text.exit_code == 0
    assert "s3://raw/data.csv" in text.output and etag in text.output

    missing = CliRunner().invoke(app, ["lineage", "file:///nowhere"])
    assert missing.exit_code == 1
    assert "no task recorded an artifact at 'file:///nowhere'" in missing.output


def test_clear_no_cache_forces_a_rerun(tmp_path: Path, s3: dict[str, Any],
                                       isolated_env: Path) -> None:
    s3["client"].put_object(Bucket="raw", Key="data.csv", Body=b"1\n")
    from mlpipe.scheduler.service import Engine
    from mlpipe.settings import load_settings

    engine = Engine.from_settings(load_settings(dags_folder=tmp_path))
    journal = tmp_path / "journal"
    dag = pipeline(tmp_path, s3, journal)
    engine.trigger(dag, run_id="r1")
    assert engine.run(dag, "r1").state == "success"
    engine.trigger(dag, run_id="r2")
    assert engine.run(dag, "r2").state == "success"
    assert lines(journal) == ["featurize", "train"]  # r2 was all cache hits
    cleared = engine.clear(dag, run_id="r2", task_regex="^train$")
    engine.store.forget_cache("lineage_demo", None, {k.task_id for k in cleared})
    assert engine.run(dag, "r2").state == "success"
    assert lines(journal) == ["featurize", "train", "train"]


def _compiled(body: str) -> Any:
    """A function with no retrievable source (built from a string), like a REPL's."""
    namespace: dict[str, Any] = {}
    exec(compile(f"def fn(n):\n    return {body}\n", "<string>", "exec"), namespace)
    return namespace["fn"]


def test_callable_fingerprint_falls_back_to_bytecode_without_source() -> None:
    from mlpipe.runtime.lineage import callable_fingerprint

    same = callable_fingerprint(_compiled("n + {1, 2}.__len__()"))
    assert same == callable_fingerprint(_compiled("n + {1, 2}.__len__()"))
    assert same != callable_fingerprint(_compiled("n + 2"))
    assert ".fn:" in same


def test_cache_key_differs_per_task_and_function(tmp_path: Path) -> None:
    from mlpipe.runtime.lineage import cache_key

    def one(n: int) -> int:
        return n

    def two(n: int) -> int:
        return n

    with DAG("keys"):
        a = PythonOperator(task_id="a", python_callable=one, op_args=[3])
        a2 = PythonOperator(task_id="a2", python_callable=one, op_args=[3])
        b = PythonOperator(task_id="b", python_callable=two, op_args=[3])
    keys = {cache_key(op, {"op_args": [3]}, []) for op in (a, a2, b)}
    assert len(keys) == 3
