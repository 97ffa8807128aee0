"""PythonOperator (arguments, context, templates, failures) and EmptyOperator."""

from __future__ import annotations

from datetime import UTC, datetime

from mlpipe import DAG
from mlpipe.operators import EmptyOperator, PythonOperator

LOGICAL_DATE = "2024-03-05"


def run_python(python_callable, *, conf: dict | None = None, **op_kwargs):
    """Run a DAG whose only task ``call`` runs ``python_callable``; return the run."""
    with DAG("python_demo", params={"lr": 0.1, "epochs": 3}) as dag:
        PythonOperator(task_id="call", python_callable=python_callable, **op_kwargs)
    return dag.test(logical_date=LOGICAL_DATE, conf=conf)


def result_of(run, task_id: str = "call"):
    ti = run.get_task_instance(task_id)
    assert ti.state == "success", ti.log
    return ti.xcom_pull(key="return_value")


def test_op_args_and_op_kwargs_are_passed():
    def combine(a, b, *, sep, suffix="!"):
        return f"{a}{sep}{b}{suffix}"

    run = run_python(combine, op_args=["x", "y"], op_kwargs={"sep": "-"})

    assert run.state == "success"
    assert result_of(run) == "x-y!"


def test_context_is_injected_by_parameter_name():
    def report(ds, ti, params, logical_date):
        return {"ds": ds, "task_id": ti.task_id, "params": params,
                "logical_date": logical_date.isoformat()}

    run = run_python(report, conf={"lr": 0.5})

    assert result_of(run) == {
        "ds": "2024-03-05",
        "task_id": "call",
        "params": {"lr": 0.5, "epochs": 3},
        "logical_date": datetime(2024, 3, 5, tzinfo=UTC).isoformat(),
    }


def test_op_kwargs_win_over_context_names():
    def show(ds):
        return ds

    run = run_python(show, op_kwargs={"ds": "mine"})

    assert result_of(run) == "mine"


def test_var_keyword_receives_the_whole_context():
    def inspect_context(factor, **context):
        return {"factor": factor, "run_id": context["run_id"], "ds": context["ds"],
                "dag_id": context["dag"].dag_id, "task_id": context["ti"].task_id}

    run = run_python(inspect_context, op_kwargs={"factor": 2})

    assert result_of(run) == {"factor": 2, "run_id": run.run_id, "ds": "2024-03-05",
                              "dag_id": "python_demo", "task_id": "call"}


def test_op_args_and_op_kwargs_are_templated():
    def echo(day, *, stamp, lr):
        return [day, stamp, lr]

    run = run_python(echo, op_args=["{{ ds_nodash }}"],
                     op_kwargs={"stamp": "{{ ds }}", "lr": "{{ params.lr }}"})

    assert result_of(run) == ["20240305", "2024-03-05", "0.1"]


def test_templates_dict_is_rendered_and_passed():
    def use_templates(templates_dict):
        return [templates_dict["day"], templates_dict["next"]]

    run = run_python(use_templates,
                     templates_dict={"day": "{{ ds }}", "next": "{{ macros.ds_add(ds, 1) }}"})

    assert result_of(run) == ["2024-03-05", "2024-03-06"]


def test_templates_dict_is_in_the_var_keyword_context():
    def use_context(**context):
        return context["templates_dict"]

    run = run_python(use_context, templates_dict={"lr": "{{ params.lr }}"}, conf={"lr": 0.3})

    assert result_of(run) == {"lr": "0.3"}


def test_exception_fails_the_task_with_a_traceback_in_the_log():
    def broken_step():
        raise ValueError("bad input row 17")

    run = run_python(broken_step)

    ti = run.get_task_instance("call")
    assert run.state == "failed"
    assert ti.state == "failed"
    assert ti.try_number == 1
    assert "Traceback (most recent call last)" in ti.log
    assert "broken_step" in ti.log
    assert "ValueError: bad input row 17" in ti.log


def test_printed_output_is_in_the_log():
    def chatty():
        print("hello from the task")
        return 1

    run = run_python(chatty)

    assert "hello from the task" in run.get_task_instance("call").log
    assert result_of(run) == 1


def test_empty_operator_succeeds_and_pushes_nothing():
    with DAG("empty_demo") as dag:
        EmptyOperator(task_id="start") >> EmptyOperator(task_id="end")

    run = dag.test(logical_date=LOGICAL_DATE)

    assert run.state == "success"
    assert [(ti.task_id, ti.state) for ti in run.task_instances] == [
        ("start", "success"), ("end", "success")]
    assert run.get_task_instance("start").xcom_pull(key="return_value") is None
