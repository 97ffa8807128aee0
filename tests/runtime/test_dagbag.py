"""Discovering DAGs in a folder: what is found, and how a broken file is reported."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mlpipe.errors import DagNotFoundError
from mlpipe.runtime.dagbag import load_dagbag


def write(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(body))
    return path


def test_finds_context_manager_dag_param_style_and_unassigned_decorator(tmp_path: Path) -> None:
    write(tmp_path, "a.py", """
        from mlpipe import DAG
        from mlpipe.operators import EmptyOperator
        with DAG("ctx"):
            EmptyOperator(task_id="t")
        other = DAG("explicit")
        EmptyOperator(task_id="t", dag=other)
    """)
    write(tmp_path, "sub/b.py", """
        from mlpipe import dag, task
        @dag
        def decorated():
            @task
            def t():
                return 1
            t()
        decorated()
    """)
    bag = load_dagbag(tmp_path)
    assert sorted(bag.dags) == ["ctx", "decorated", "explicit"]
    assert bag.import_errors == {}


def test_broken_file_is_reported_and_others_load(tmp_path: Path) -> None:
    write(tmp_path, "ok.py", "from mlpipe import DAG\nd = DAG('ok')\n")
    bad = write(tmp_path, "bad.py", "import mlpipe\nraise RuntimeError('boom')\n")
    bag = load_dagbag(tmp_path)
    assert list(bag.dags) == ["ok"]
    assert bag.import_errors == {str(bad): "RuntimeError: boom (line 2)"}


def test_definition_error_in_file_is_an_import_error(tmp_path: Path) -> None:
    bad = write(tmp_path, "cycle.py", """
        from mlpipe import DAG
        from mlpipe.operators import EmptyOperator
        with DAG("cyc"):
            a = EmptyOperator(task_id="a")
            b = EmptyOperator(task_id="b")
            a >> b >> a
    """)
    bag = load_dagbag(tmp_path)
    assert "cyc" not in bag.dags
    assert bag.import_errors[str(bad)].startswith("CycleError: DAG 'cyc' has a cycle: b -> a -> b")
    assert bag.import_errors[str(bad)].endswith("(line 7)")


def test_duplicate_dag_id_in_two_files(tmp_path: Path) -> None:
    write(tmp_path, "one.py", "from mlpipe import DAG\nd = DAG('same')\n")
    second = write(tmp_path, "two.py", "from mlpipe import DAG\nd = DAG('same')\n")
    bag = load_dagbag(tmp_path)
    assert list(bag.dags) == ["same"]
    assert "already defined" in bag.import_errors[str(second)]


def test_private_and_cache_files_are_not_imported(tmp_path: Path) -> None:
    write(tmp_path, "_helpers.py", "raise SystemExit('must not be imported')\n")
    write(tmp_path, "__pycache__/x.py", "raise SystemExit('must not be imported')\n")
    assert load_dagbag(tmp_path).import_errors == {}


def test_unknown_dag_lists_known_ones(tmp_path: Path) -> None:
    write(tmp_path, "ok.py", "from mlpipe import DAG\nd = DAG('nightly')\n")
    bag = load_dagbag(tmp_path)
    with pytest.raises(DagNotFoundError, match=r"'nigthly' not found; known: \['nightly'\]"):
        bag.get_dag("nigthly")
