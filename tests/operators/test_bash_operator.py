"""BashOperator: exit codes, XCom, environment, working directory, logs and templates."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from mlpipe import DAG
from mlpipe.operators import BashOperator, EmptyOperator

LOGICAL_DATE = "2024-03-05"
DAGS = Path(__file__).resolve().parents[1] / "dags"


def run_bash(*, conf: dict | None = None, **bash_kwargs):
    """Run a one-task DAG (``bash``) followed by ``after``; return the run."""
    with DAG("bash_demo", params={"word": "default"}) as dag:
        BashOperator(task_id="bash", **bash_kwargs) >> EmptyOperator(task_id="after")
    return dag.test(logical_date=LOGICAL_DATE, conf=conf)


def test_exit_zero_succeeds_and_pushes_the_last_line():
    run = run_bash(bash_command="echo first; echo second; echo last line")

    ti = run.get_task_instance("bash")
    assert run.state == "success"
    assert ti.state == "success"
    assert ti.try_number == 1
    assert ti.xcom_pull(key="return_value") == "last line"
    assert run.get_task_instance("after").state == "success"


def test_do_xcom_push_false_pushes_nothing():
    run = run_bash(bash_command="echo hidden", do_xcom_push=False)

    ti = run.get_task_instance("bash")
    assert ti.state == "success"
    assert ti.xcom_pull(key="return_value") is None


def test_non_zero_exit_fails_with_the_code_in_the_log():
    run = run_bash(bash_command="echo about to fail; exit 7")

    ti = run.get_task_instance("bash")
    assert run.state == "failed"
    assert ti.state == "failed"
    assert "about to fail" in ti.log
    assert re.search(r"exit code\D{0,5}7\b", ti.log), ti.log
    assert ti.xcom_pull(key="return_value") is None
    assert run.get_task_instance("after").state == "upstream_failed"


def test_exit_99_skips_the_task_and_its_downstream():
    run = run_bash(bash_command="exit 99")

    assert run.get_task_instance("bash").state == "skipped"
    assert run.get_task_instance("after").state == "skipped"
    assert run.state == "success"


def test_skip_on_exit_code_replaces_99():
    skipped = run_bash(bash_command="exit 3", skip_on_exit_code=[3])
    failed = run_bash(bash_command="exit 99", skip_on_exit_code=[3])

    assert skipped.get_task_instance("bash").state == "skipped"
    assert failed.get_task_instance("bash").state == "failed"
    assert re.search(r"exit code\D{0,5}99\b", failed.get_task_instance("bash").log)


def test_env_replaces_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OUTER_MARKER", "from-parent")

    run = run_bash(bash_command='echo "${OUTER_MARKER:-absent} $INNER"',
                   env={"INNER": "given"})

    assert run.get_task_instance("bash").xcom_pull(key="return_value") == "absent given"


def test_append_env_keeps_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OUTER_MARKER", "from-parent")

    run = run_bash(bash_command='echo "${OUTER_MARKER:-absent} $INNER"',
                   env={"INNER": "given"}, append_env=True)

    assert run.get_task_instance("bash").xcom_pull(key="return_value") == "from-parent given"


def test_without_env_the_command_inherits_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OUTER_MARKER", "from-parent")

    run = run_bash(bash_command='echo "${OUTER_MARKER:-absent}"')

    assert run.get_task_instance("bash").xcom_pull(key="return_value") == "from-parent"


@pytest.mark.parametrize("env", [None, {"ONLY": "this"}], ids=["inherited", "replaced"])
def test_context_variables_are_in_the_environment(env):
    run = run_bash(
        bash_command='echo "$MLPIPE_CTX_DAG_ID|$MLPIPE_CTX_TASK_ID|$MLPIPE_CTX_RUN_ID"',
        env=env,
    )

    value = run.get_task_instance("bash").xcom_pull(key="return_value")
    assert value == f"bash_demo|bash|{run.run_id}"


def test_cwd_sets_the_working_directory(tmp_path: Path):
    workdir = tmp_path / "workdir"
    workdir.mkdir()

    run = run_bash(bash_command="pwd", cwd=str(workdir))

    ti = run.get_task_instance("bash")
    assert ti.state == "success"
    assert Path(ti.xcom_pull(key="return_value")).resolve() == workdir.resolve()


def test_missing_cwd_fails_naming_the_directory(tmp_path: Path):
    missing = tmp_path / "no_such_dir"

    run = run_bash(bash_command="echo never", cwd=str(missing))

    ti = run.get_task_instance("bash")
    assert ti.state == "failed"
    assert str(missing) in ti.log
    assert "not a directory" in ti.log
    assert ti.xcom_pull(key="return_value") is None


def test_stderr_lines_are_in_the_log():
    run = run_bash(bash_command="echo to-stdout; echo to-stderr >&2; echo done")

    ti = run.get_task_instance("bash")
    assert ti.state == "success"
    assert "to-stdout" in ti.log
    assert "to-stderr" in ti.log
    assert ti.xcom_pull(key="return_value") == "done"


def test_bash_command_is_templated():
    run = run_bash(bash_command="echo {{ ds }} {{ ds_nodash }} {{ params.word }}",
                   conf={"word": "from-conf"})

    value = run.get_task_instance("bash").xcom_pull(key="return_value")
    assert value == "2024-03-05 20240305 from-conf"


def test_env_and_cwd_are_templated(tmp_path: Path):
    workdir = tmp_path / "day_2024-03-05"
    workdir.mkdir()

    run = run_bash(
        bash_command='echo "$DAY $WORD $(pwd)"',
        env={"DAY": "{{ ds }}", "WORD": "{{ params.word }}"},
        cwd=str(tmp_path) + "/day_{{ ds }}",
    )

    ti = run.get_task_instance("bash")
    assert ti.state == "success", ti.log
    day, word, cwd = ti.xcom_pull(key="return_value").split(" ")
    assert (day, word) == ("2024-03-05", "default")
    assert Path(cwd).resolve() == workdir.resolve()


def load_dag_module(name: str):
    spec = importlib.util.spec_from_file_location(f"tests_dags_{name}", DAGS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sh_file_next_to_the_dag_file_is_a_template():
    dag = load_dag_module("bash_script_dag").dag

    run = dag.test(logical_date=LOGICAL_DATE, conf={"name": "tester"})

    ti = run.get_task_instance("greet")
    assert ti.state == "success", ti.log
    assert "script for bash_script" in ti.log
    assert ti.xcom_pull(key="return_value") == "hello tester on 2024-03-05"


def test_missing_sh_file_fails_clearly():
    with DAG("bash_missing_script") as dag:
        BashOperator(task_id="run_script", bash_command="does_not_exist.sh")

    run = dag.test(logical_date=LOGICAL_DATE)

    ti = run.get_task_instance("run_script")
    assert ti.state == "failed"
    assert "does_not_exist.sh" in ti.log
    assert "not found" in ti.log


def test_trailing_space_runs_a_script_without_loading_it_as_a_template(tmp_path: Path):
    # Airflow's documented idiom: "script.sh " (with a space) is a command, not a template file.
    script = tmp_path / "outside" / "job.sh"
    script.parent.mkdir()
    script.write_text("#!/usr/bin/env bash\necho ran-from-script\n")
    script.chmod(0o755)

    run = run_bash(bash_command=f"{script} ")

    ti = run.get_task_instance("bash")
    assert ti.state == "success", ti.log
    assert ti.xcom_pull(key="return_value") == "ran-from-script"


def test_partial_expand_makes_one_instance_per_command():
    with DAG("bash_mapped") as dag:
        BashOperator.partial(task_id="say", env={"DAY": "{{ ds }}"}).expand(
            bash_command=['echo "a $DAY $MLPIPE_CTX_MAP_INDEX"',
                          'echo "b $DAY $MLPIPE_CTX_MAP_INDEX"'])

    run = dag.test(logical_date=LOGICAL_DATE)

    values = [run.get_task_instance("say", i).xcom_pull(key="return_value") for i in (0, 1)]
    assert values == ["a 2024-03-05 0", "b 2024-03-05 1"]
