"""notebooks/inspect_runs.ipynb, executed the way a user runs it after ``mlpipe demo``.

The demo runs through the installed ``mlpipe`` command in the test's working directory
(``MLPIPE_HOME`` there, as the root conftest sets it); the notebook then runs in a
``python3`` kernel of this venv, from ``notebooks/`` as Jupyter would start it, and reads the
same stores through the environment.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "inspect_runs.ipynb"
MLPIPE = Path(sys.executable).with_name("mlpipe")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def run_demo(workdir: Path) -> str:
    """``mlpipe demo`` as a user types it; returns the DAG run id it reports."""
    env = {**os.environ, "MLPIPE_DAGS_FOLDER": str(REPO / "pipelines"), "COLUMNS": "200",
           "PYTHONUNBUFFERED": "1"}
    # Its own process group: on a timeout the demo and the servers it started go together.
    demo = subprocess.Popen([str(MLPIPE), "demo", "--limit", "300", "--epochs", "1"],
                            cwd=workdir, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = demo.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        os.killpg(demo.pid, signal.SIGKILL)
        output, _ = demo.communicate()
        raise AssertionError(f"mlpipe demo took over 150 s:\n{output}") from None
    # What the notebook reads: the DAG run, its training and evaluation, the registration.
    # Not the exit status: with one epoch, whether the demo's deploy step may promote the
    # model is the deploy gate's business, not this notebook's.
    assert "registered model: models:/digits_classifier/1" in output, output
    found = re.search(r"DAG run (\S+): \w+ in ", output)
    assert found, output
    return found.group(1)


def python3_kernel_of_this_venv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``python3`` kernel spec running ``sys.executable``, found before any other one."""
    from ipykernel.kernelspec import install

    install(prefix=str(tmp_path / "jupyter"), kernel_name="python3")
    data = tmp_path / "jupyter" / "share" / "jupyter"
    assert sys.executable in (data / "kernels" / "python3" / "kernel.json").read_text()
    monkeypatch.setenv("JUPYTER_PATH", str(data))


def execute(notebook: Path) -> object:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), \
        "commit the notebook with its outputs cleared"
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(notebook.parent)}}).execute()
    return nb


def outputs(nb, tag: str) -> list[dict]:
    cells = [c for c in nb.cells if tag in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"one cell tagged {tag!r}"
    return cells[0].outputs


def text_of(cell_outputs: list[dict]) -> str:
    parts = []
    for out in cell_outputs:
        if out.output_type == "stream":
            parts.append(out.text)
        elif "data" in out:
            parts.append(out.data.get("text/html", "") + out.data.get("text/plain", ""))
    return "\n".join(parts)


def pngs(cell_outputs: list[dict]) -> list[bytes]:
    return [base64.b64decode(out.data["image/png"]) for out in cell_outputs
            if "data" in out and "image/png" in out.data]


def test_notebook_shows_the_demo_runs_curves_confusion_matrix_versions_and_lineage(
        tmp_path: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert MLPIPE.exists(), f"the mlpipe command is not installed next to {sys.executable}"
    dag_run_id = run_demo(tmp_path)
    python3_kernel_of_this_venv(tmp_path, monkeypatch)

    nb = execute(NOTEBOOK)

    errors = [out for c in nb.cells if c.cell_type == "code" for out in c.outputs
              if out.output_type == "error"]
    assert errors == []
    setup = text_of(outputs(nb, "setup"))
    assert f"sqlite:///{isolated_env / 'mlflow.db'}" in setup
    assert "registered model:      digits_classifier" in setup

    runs = text_of(outputs(nb, "runs"))
    assert dag_run_id in runs
    assert f"inspecting DAG run {dag_run_id}" in runs
    tasks = text_of(outputs(nb, "tasks"))
    for task_id in ("train", "evaluate", "register"):
        assert f"<td>{task_id}</td>" in tasks

    curves = outputs(nb, "curves")
    [figure] = pngs(curves)
    assert figure.startswith(PNG_MAGIC)
    assert re.search(r"^1\s+\d\.\d+\s+\d\.\d+", text_of(curves), re.M), \
        "one epoch of train/val metrics"

    confusion = outputs(nb, "confusion-matrix")
    [matrix] = pngs(confusion)
    assert matrix.startswith(PNG_MAGIC)
    assert f"DAG run {dag_run_id}: test accuracy" in text_of(confusion)

    versions = text_of(outputs(nb, "model-versions"))
    assert re.search(r"<th>1</th>\s*<td>", versions), versions
    assert dag_run_id in versions

    tags = text_of(outputs(nb, "lineage-tags"))
    assert "models:/digits_classifier/1" in tags
    for tag in ("mlpipe.dag_id", "mlpipe.run_id", "mlpipe.task_id", "mlpipe.training_run_id"):
        assert tag in tags
    lineage = text_of(outputs(nb, "lineage"))
    assert "$ mlpipe lineage --json " in lineage
    assert "/ preprocess try 1" in lineage and "/ download try 1" in lineage
    assert re.search(r"s3://mlpipe-demo/digits/\S+\.png  etag [0-9a-f]{32}", lineage)
    assert "(300 in all)" in lineage
