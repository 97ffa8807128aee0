"""``Engine.get_dag``: one DAG from its own file when the store knows it, never the folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlpipe.errors import DagNotFoundError
from mlpipe.scheduler.service import Engine
from mlpipe.settings import load_settings

WANTED = """
from mlpipe import DAG
from mlpipe.operators.empty import EmptyOperator

with DAG("wanted", schedule=None) as dag:
    EmptyOperator(task_id="only")
"""

#: a sibling file whose import leaves a mark: it must not be imported to get "wanted"
SIBLING = """
from pathlib import Path
Path(__file__).with_suffix(".imported").write_text("yes")
from mlpipe import DAG
from mlpipe.operators.empty import EmptyOperator

with DAG("sibling", schedule=None) as dag:
    EmptyOperator(task_id="only")
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "wanted.py").write_text(WANTED)
    (dags / "sibling.py").write_text(SIBLING)
    return dags


def _engine(folder: Path) -> Engine:
    return Engine.from_settings(load_settings(dags_folder=folder, dag_parse_timeout_s=10))


def test_a_recorded_dag_is_loaded_from_its_file_alone(folder: Path) -> None:
    engine = _engine(folder)
    engine.store.sync_dags({"wanted": str(folder / "wanted.py")})

    dag = engine.get_dag("wanted")

    assert dag.dag_id == "wanted"
    assert list(dag.task_dict) == ["only"]
    assert not (folder / "sibling.imported").exists()
    assert engine.get_dag("wanted") is dag  # loaded once per engine


def test_an_unrecorded_dag_comes_from_the_whole_folder(folder: Path) -> None:
    engine = _engine(folder)

    assert engine.get_dag("wanted").dag_id == "wanted"
    assert (folder / "sibling.imported").read_text() == "yes"


def test_a_recorded_file_that_no_longer_defines_the_dag_falls_back_to_the_folder(
        folder: Path) -> None:
    engine = _engine(folder)
    engine.store.sync_dags({"wanted": str(folder / "sibling.py")})  # stale: it moved

    assert engine.get_dag("wanted").dag_id == "wanted"
    with pytest.raises(DagNotFoundError, match="'gone'"):
        engine.get_dag("gone")


def test_a_recorded_file_outside_the_dags_folder_is_never_imported(
        folder: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.py"
    outside.write_text(WANTED.replace('"wanted"', '"outside"') +
                       "\nimport pathlib; pathlib.Path(__file__).with_suffix('.imported')"
                       ".write_text('yes')\n")
    engine = _engine(folder)
    engine.store.sync_dags({"outside": str(outside)})

    with pytest.raises(DagNotFoundError, match="'outside'"):
        engine.get_dag("outside")
    assert not outside.with_suffix(".imported").exists()
