"""Port of Airflow's XCom example: values pushed and pulled between Python and Bash tasks."""

from __future__ import annotations

from mlpipe import DAG
from mlpipe.operators import BashOperator, PythonOperator

PUSHED = [1, 2, 3]
RETURNED = {"accuracy": 0.93}


def push(ti):
    ti.xcom_push(key="k", value=PUSHED)
    return RETURNED


def check_pushed(ti):
    assert ti.xcom_pull(task_ids="push", key="k") == PUSHED
    assert ti.xcom_pull(task_ids="push") == RETURNED
    return ti.xcom_pull(task_ids=["push", "push"], key="k")


def pull_from_bash(ti):
    return {"last_line": ti.xcom_pull(task_ids="bash_pull"),
            "bash_echo": ti.xcom_pull(task_ids="bash_push")}


def xcom_dag() -> DAG:
    with DAG("xcom_python_bash") as built:
        pusher = PythonOperator(task_id="push", python_callable=push)
        checker = PythonOperator(task_id="check_pushed", python_callable=check_pushed)
        bash_push = BashOperator(task_id="bash_push", bash_command='echo "bash says hi"')
        bash_pull = BashOperator(
            task_id="bash_pull",
            bash_command=(
                "echo \"k={{ ti.xcom_pull(task_ids='push', key='k') }}\"; "
                "echo \"accuracy={{ ti.xcom_pull(task_ids='push')['accuracy'] }}\""
            ),
        )
        puller = PythonOperator(task_id="pull_from_bash", python_callable=pull_from_bash)
        pusher >> checker
        pusher >> bash_pull
        [bash_push, bash_pull] >> puller
    return built


def test_xcom_between_python_and_bash_tasks():
    run = xcom_dag().test(logical_date="2024-03-05")

    assert run.state == "success", {ti.task_id: ti.log for ti in run.task_instances}
    push_ti = run.get_task_instance("push")
    assert push_ti.xcom_pull(key="k") == PUSHED
    assert push_ti.xcom_pull(key="return_value") == RETURNED
    assert run.get_task_instance("check_pushed").xcom_pull(key="return_value") == [
        PUSHED, PUSHED]
    bash_pull = run.get_task_instance("bash_pull")
    assert "k=[1, 2, 3]" in bash_pull.log
    assert run.get_task_instance("pull_from_bash").xcom_pull(key="return_value") == {
        "last_line": "accuracy=0.93", "bash_echo": "bash says hi"}
