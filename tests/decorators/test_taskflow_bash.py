"""``@task.bash``: the function returns a command, which is templated, run, and its last line
pushed as XCom."""

from __future__ import annotations

from mlpipe import DAG, task

LOGICAL_DATE = "2024-03-05"


def test_returned_command_is_templated_and_its_last_line_is_the_xcom():
    @task.bash
    def stamp():
        return "echo starting; echo {{ ds }} {{ params.stage }}"

    with DAG("bash_stamp", params={"stage": "dev"}) as built:
        stamp()

    run = built.test(logical_date=LOGICAL_DATE, conf={"stage": "prod"})

    ti = run.get_task_instance("stamp")
    assert run.state == "success"
    assert ti.state == "success", ti.log
    assert "starting" in ti.log
    assert ti.xcom_pull(key="return_value") == "2024-03-05 prod"


def test_arguments_come_from_upstream_tasks():
    @task
    def pick_name():
        return "resnet"

    @task.bash
    def train(model, epochs):
        return f"echo training {model} for {epochs} epochs"

    with DAG("bash_args") as built:
        train(pick_name(), epochs=3)

    run = built.test(logical_date=LOGICAL_DATE)

    assert built.get_task("train").upstream_task_ids == {"pick_name"}
    ti = run.get_task_instance("train")
    assert ti.xcom_pull(key="return_value") == "training resnet for 3 epochs"


def test_context_and_env_reach_the_command():
    @task.bash(env={"STAGE": "{{ params.stage }}"})
    def show(ti=None):
        return f'echo "{ti.task_id} $STAGE"'

    with DAG("bash_env", params={"stage": "dev"}) as built:
        show()

    run = built.test(logical_date=LOGICAL_DATE)

    assert run.get_task_instance("show").xcom_pull(key="return_value") == "show dev"


def test_returning_a_non_string_fails():
    @task.bash
    def not_a_command():
        return 42

    with DAG("bash_non_string") as built:
        not_a_command()

    run = built.test(logical_date=LOGICAL_DATE)

    ti = run.get_task_instance("not_a_command")
    assert run.state == "failed"
    assert ti.state == "failed"
    assert "42" in ti.log
    assert "command" in ti.log


def test_non_zero_exit_fails_and_exit_99_skips():
    @task.bash
    def run_cmd(cmd):
        return cmd

    with DAG("bash_codes") as built:
        run_cmd.override(task_id="fails")("exit 4")
        run_cmd.override(task_id="skips")("exit 99")

    run = built.test(logical_date=LOGICAL_DATE)

    assert run.get_task_instance("fails").state == "failed"
    assert "4" in run.get_task_instance("fails").log
    assert run.get_task_instance("skips").state == "skipped"
