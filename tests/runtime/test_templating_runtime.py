"""dag.test(): Jinja templating of operator fields at run time."""

from __future__ import annotations

import importlib.util
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest

from mlpipe import DAG, task
from mlpipe.operators import BashOperator, PythonOperator

LOGICAL = datetime(2024, 1, 15, 6, 30, tzinfo=UTC)


def _import(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"tpl_{path.stem}_{abs(hash(path))}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bash_command_renders_ds_params_and_run_id() -> None:
    with DAG("tpl_basic", start_date=LOGICAL, params={"x": "hello"}) as dag:
        BashOperator(task_id="echo", bash_command="echo {{ ds }} {{ params.x }} {{ run_id }}")

    run = dag.test(LOGICAL)

    ti = run.get_task_instance("echo")
    expected = f"2024-01-15 hello {run.run_id}"
    assert ti.state == "success"
    assert ti.xcom_pull() == expected
    assert expected in ti.log
    assert "echo 2024-01-15 hello" in ti.log  # the rendered command itself is logged


def test_date_names_and_macros() -> None:
    command = (
        "echo {{ macros.ds_add(ds, 1) }} {{ macros.ds_add(ds, -15) }} {{ ds_nodash }} "
        "{{ macros.ds_format(ds, '%Y-%m-%d', '%d/%m/%Y') }} {{ logical_date.year }} "
        "{{ (logical_date + macros.timedelta(days=2)).day }} {{ ts }}"
    )
    with DAG("tpl_macros", start_date=LOGICAL) as dag:
        BashOperator(task_id="echo", bash_command=command)

    run = dag.test(LOGICAL)

    assert run.get_task_instance("echo").xcom_pull() == (
        "2024-01-16 2023-12-31 20240115 15/01/2024 2024 17 2024-01-15T06:30:00+00:00"
    )


def test_dag_task_and_ti_in_templates() -> None:
    with DAG("tpl_objects", start_date=LOGICAL) as dag:
        BashOperator(task_id="who",
                     bash_command="echo {{ dag.dag_id }} {{ task.task_id }} {{ ti.task_id }}")

    run = dag.test(LOGICAL)

    assert run.get_task_instance("who").xcom_pull() == "tpl_objects who who"


def test_dag_run_conf_and_conf() -> None:
    with DAG("tpl_conf", start_date=LOGICAL) as dag:
        BashOperator(task_id="echo",
                     bash_command="echo {{ dag_run.conf['who'] }} {{ conf.who }} "
                                  "{{ dag_run.conf.get('missing', 'dflt') }}")

    run = dag.test(LOGICAL, conf={"who": "bob"})

    assert run.get_task_instance("echo").xcom_pull() == "bob bob dflt"


def test_variables_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPIPE_VAR_FOO", "bar-value")
    monkeypatch.setenv("MLPIPE_VAR_CFG", '{"lr": 0.01}')
    with DAG("tpl_var", start_date=LOGICAL) as dag:
        BashOperator(task_id="echo",
                     bash_command="echo {{ var.value.foo }} {{ var.json.cfg.lr }}")

    run = dag.test(LOGICAL)

    assert run.get_task_instance("echo").xcom_pull() == "bar-value 0.01"


def test_a_missing_variable_fails_the_task_naming_it() -> None:
    with DAG("tpl_var_missing", start_date=LOGICAL) as dag:
        BashOperator(task_id="echo", bash_command="echo {{ var.value.not_there }}")

    run = dag.test(LOGICAL)

    ti = run.get_task_instance("echo")
    assert ti.state == "failed"
    assert "not_there" in ti.log


def test_an_undefined_name_fails_the_task_with_the_name_in_the_log() -> None:
    with DAG("tpl_undefined", start_date=LOGICAL) as dag:
        BashOperator(task_id="echo", bash_command="echo {{ no_such_name }}")
        BashOperator(task_id="attr", bash_command="echo {{ params.no_such_param }}")

    run = dag.test(LOGICAL)

    for task_id, name in [("echo", "no_such_name"), ("attr", "no_such_param")]:
        ti = run.get_task_instance(task_id)
        assert ti.state == "failed"
        assert name in ti.log
        assert ti.xcom_pull() is None
    assert run.state == "failed"


def test_xcom_pull_inside_a_template() -> None:
    with DAG("tpl_xcom", start_date=LOGICAL) as dag:
        src = PythonOperator(task_id="src", python_callable=lambda: "payload-7")
        echo = BashOperator(task_id="echo",
                            bash_command="echo got {{ ti.xcom_pull(task_ids='src') }}")
        src >> echo

    run = dag.test(LOGICAL)

    assert run.get_task_instance("echo").xcom_pull() == "got payload-7"


def test_python_operator_op_kwargs_and_taskflow_arguments_are_rendered() -> None:
    with DAG("tpl_python", start_date=LOGICAL, params={"n": 3}) as dag:
        PythonOperator(task_id="classic", python_callable=lambda day, n: f"{day}/{n}",
                       op_kwargs={"day": "{{ ds }}", "n": "{{ params.n }}"})

        @task
        def flow(day: str) -> str:
            return day

        flow("{{ macros.ds_add(ds, 1) }}")

    run = dag.test(LOGICAL)

    assert run.get_task_instance("classic").xcom_pull() == "2024-01-15/3"
    assert run.get_task_instance("flow").xcom_pull() == "2024-01-16"
    assert "2024-01-15" in run.get_task_instance("classic").log


def test_sandbox_blocks_access_to_python_internals() -> None:
    with DAG("tpl_sandbox", start_date=LOGICAL) as dag:
        BashOperator(task_id="mro", bash_command="echo {{ ''.__class__.__mro__ }}")
        BashOperator(task_id="subclasses",
                     bash_command="echo {{ ''.__class__.__mro__[1].__subclasses__() }}")
        BashOperator(task_id="globals",
                     bash_command="echo {{ macros.ds_add.__globals__ }}")

    run = dag.test(LOGICAL)

    for task_id in ["mro", "subclasses", "globals"]:
        ti = run.get_task_instance(task_id)
        assert ti.state == "failed", task_id
        assert "<class" not in ti.log
        assert "unsafe" in ti.log.lower()


def test_sh_template_file_next_to_the_dag_file(tmp_path: Path) -> None:
    (tmp_path / "greet.sh").write_text('echo "hi {{ params.name }} on {{ ds }}"\n')
    (tmp_path / "greet_dag.py").write_text(textwrap.dedent("""
        from mlpipe import DAG
        from mlpipe.operators import BashOperator

        with DAG("greet", params={"name": "ada"}) as dag:
            BashOperator(task_id="greet", bash_command="greet.sh")
    """))
    dag = _import(tmp_path / "greet_dag.py").dag

    run = dag.test(LOGICAL)

    ti = run.get_task_instance("greet")
    assert ti.state == "success", ti.log
    assert ti.xcom_pull() == "hi ada on 2024-01-15"


def test_sql_template_file_from_template_searchpath(tmp_path: Path) -> None:
    sql_dir = tmp_path / "sql"
    sql_dir.mkdir()
    (sql_dir / "count.sql").write_text(
        "SELECT count(*) FROM {{ params.table }} WHERE day = '{{ ds }}'")
    (tmp_path / "sql_dag.py").write_text(textwrap.dedent(f"""
        from mlpipe import DAG
        from mlpipe.core.operator import BaseOperator


        class QueryOperator(BaseOperator):
            template_fields = ("sql",)
            template_ext = (".sql",)

            def __init__(self, task_id, *, sql, **kwargs):
                super().__init__(task_id, **kwargs)
                self.sql = sql

            def execute(self, context):
                return self.sql


        with DAG("sql", params={{"table": "events"}},
                 template_searchpath=[{str(sql_dir)!r}]) as dag:
            QueryOperator(task_id="query", sql="count.sql")
    """))
    dag = _import(tmp_path / "sql_dag.py").dag

    run = dag.test(LOGICAL)

    ti = run.get_task_instance("query")
    assert ti.state == "success", ti.log
    assert ti.xcom_pull() == "SELECT count(*) FROM events WHERE day = '2024-01-15'"
    assert "FROM events" in ti.log


def test_a_missing_template_file_fails_the_task_naming_it(tmp_path: Path) -> None:
    (tmp_path / "missing_dag.py").write_text(textwrap.dedent("""
        from mlpipe import DAG
        from mlpipe.operators import BashOperator

        with DAG("missing") as dag:
            BashOperator(task_id="run", bash_command="not_here.sh")
    """))
    dag = _import(tmp_path / "missing_dag.py").dag

    run = dag.test(LOGICAL)

    ti = run.get_task_instance("run")
    assert ti.state == "failed"
    assert "not_here.sh" in ti.log


def test_trailing_space_runs_a_script_path_without_loading_it_as_a_template(
        tmp_path: Path) -> None:
    # Airflow's documented idiom: "script.sh " (trailing space) is run as is, not loaded.
    script = tmp_path / "elsewhere" / "plain.sh"
    script.parent.mkdir()
    script.write_text("#!/usr/bin/env bash\necho plain script ran\n")
    script.chmod(0o755)
    with DAG("tpl_space", start_date=LOGICAL) as dag:
        BashOperator(task_id="run", bash_command=f"{script} ")

    run = dag.test(LOGICAL)

    ti = run.get_task_instance("run")
    assert ti.state == "success", ti.log
    assert ti.xcom_pull() == "plain script ran"


def test_task_params_override_dag_params_and_conf_overrides_both() -> None:
    with DAG("tpl_params", start_date=LOGICAL, params={"a": "dag-a", "b": "dag-b"}) as dag:
        BashOperator(task_id="echo", bash_command="echo {{ params.a }} {{ params.b }}",
                     params={"b": "task-b"})

    plain = dag.test(LOGICAL)
    overridden = dag.test(LOGICAL, conf={"a": "conf-a", "b": "conf-b"})

    assert plain.get_task_instance("echo").xcom_pull() == "dag-a task-b"
    assert overridden.get_task_instance("echo").xcom_pull() == "conf-a conf-b"
