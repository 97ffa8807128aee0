"""``ImagePreprocessOperator`` in ``dag.test()``: artifact out, corrupt files, cache, imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlpipe import DAG, task
from mlpipe.artifacts import Artifact, FileArtifactStore, open_store
from mlpipe.errors import DagDefinitionError
from mlpipe.ml.datasets import write_digits_pngs
from mlpipe.operators import ImagePreprocessOperator


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """60 real digits plus one text file pretending to be a PNG."""
    root = tmp_path / "images"
    write_digits_pngs(root, limit=60)
    (root / "3" / "x.png").write_text("not an image")
    return root


def test_the_operator_returns_a_dataset_artifact_and_logs_skipped_files(images: Path) -> None:
    with DAG("preprocess_digits") as dag:
        ImagePreprocessOperator(task_id="preprocess", input_uri=images.as_uri(),
                                image_size=(12, 12), grayscale=True, num_workers=2)
    run = dag.test()
    ti = run.get_task_instance("preprocess")

    assert ti.state == "success", ti.error
    artifact = ti.xcom_pull()
    assert isinstance(artifact, Artifact) and artifact.kind == "dataset"
    assert artifact.uri.endswith(f"/preprocess_digits/{run.run_id}/preprocess/dataset/")
    assert artifact.sha256 == open_store(artifact.uri).stat(artifact.uri).sha256
    assert artifact.extra["corrupt_count"] == 1 and sum(artifact.extra["counts"].values()) == 60
    manifest_path = FileArtifactStore().path_of(artifact.uri) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["corrupt"][0]["path"] == "3/x.png"
    assert "Skipped 1 corrupt image file(s) of 61: 3/x.png" in ti.log


def _run_in_store(dags_folder: Path, dag: DAG, run_id: str) -> Any:
    """One run through the persistent metadata store, where the cache lives."""
    from mlpipe.scheduler.service import Engine
    from mlpipe.settings import load_settings

    engine = Engine.from_settings(load_settings(dags_folder=dags_folder))
    engine.trigger(dag, run_id=run_id)
    return engine.run(dag, run_id)


def test_an_upstream_artifact_is_the_input_and_a_second_run_is_a_cache_hit(
        images: Path, tmp_path: Path) -> None:
    with DAG("preprocess_chain") as dag:
        @task
        def images_artifact() -> Artifact:
            return open_store(images.as_uri()).describe(images.as_uri(), "dataset")

        ImagePreprocessOperator(task_id="preprocess", input_uri=images_artifact(),
                                image_size=8, grayscale=True, num_workers=0)
    first = _run_in_store(tmp_path, dag, "r1").get_task_instance("preprocess")
    second = _run_in_store(tmp_path, dag, "r2").get_task_instance("preprocess")

    assert first.state == second.state == "success"
    assert "Cache hit" in second.log and "Preprocessing images" not in second.log
    assert second.xcom_pull() == first.xcom_pull()
    assert "/r1/preprocess/dataset/" in second.xcom_pull().uri


def test_on_corrupt_fail_fails_the_task_naming_the_file(images: Path) -> None:
    with DAG("preprocess_strict") as dag:
        ImagePreprocessOperator(task_id="preprocess", input_uri=images.as_uri(),
                                image_size=8, num_workers=0, on_corrupt="fail")
    ti = dag.test().get_task_instance("preprocess")

    assert ti.state == "failed"
    assert "corrupt image '3/x.png'" in (ti.error or "")


@pytest.mark.parametrize(("arguments", "message"), [
    ({"on_corrupt": "ignore"}, r"on_corrupt 'ignore' is not one of \['fail', 'skip'\]"),
    ({"val_fraction": 0.5, "test_fraction": 0.5}, "leave a share for training"),
    ({"image_size": (0, 8)}, "image_size must be two ints > 0"),
    ({"num_workers": -1}, "num_workers must be None or an int >= 0"),
    ({"resize": "squash"}, r"resize 'squash' is not one of \['shorter_side', 'stretch'\]"),
    ({"split": "random"}, r"split 'random' is not one of \['auto', 'folders', 'hash'\]"),
    ({"include": []}, "include must be one or more non-empty globs"),
    ({"shard_mb": 0}, "shard_mb must be a number > 0"),
])
def test_bad_arguments_fail_when_the_dag_is_built(arguments: dict[str, object],
                                                  message: str) -> None:
    with pytest.raises(DagDefinitionError, match=message):
        ImagePreprocessOperator(task_id="p", input_uri="file:///data", **arguments)


def test_importing_the_operators_loads_no_torch_pillow_or_numpy() -> None:
    code = ("import sys, mlpipe.operators; "
            "print(sorted(m for m in ('torch', 'PIL', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
