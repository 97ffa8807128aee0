"""dag.test(): Param defaults, conf overriding and validation, @dag arguments as params."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from mlpipe import DAG, Param, dag, task
from mlpipe.errors import MlpipeError, ParamValidationError
from mlpipe.operators import BashOperator, PythonOperator

LOGICAL = datetime(2024, 1, 15, tzinfo=UTC)


def _params_dag(ran: list[dict[str, Any]]) -> DAG:
    with DAG("params", start_date=LOGICAL, params={
        "epochs": Param(5, type="integer", minimum=1),
        "model": Param("resnet", enum=["resnet", "vit"]),
        "lr": 0.1,
    }) as built:

        @task
        def show(params: dict[str, Any]) -> dict[str, Any]:
            ran.append(dict(params))
            return dict(params)

        show()
    return built


def test_param_defaults_are_the_params_of_a_run() -> None:
    ran: list[dict[str, Any]] = []

    run = _params_dag(ran).test(LOGICAL)

    assert run.state == "success"
    assert ran == [{"epochs": 5, "model": "resnet", "lr": 0.1}]


def test_conf_overrides_param_defaults() -> None:
    ran: list[dict[str, Any]] = []

    run = _params_dag(ran).test(LOGICAL, conf={"epochs": 20, "lr": 0.5})

    assert ran == [{"epochs": 20, "model": "resnet", "lr": 0.5}]
    assert run.conf == {"epochs": 20, "lr": 0.5}


@pytest.mark.parametrize(("conf", "name"), [
    ({"epochs": "many"}, "epochs"),
    ({"epochs": 0}, "epochs"),
    ({"model": "gpt"}, "model"),
])
def test_an_invalid_conf_raises_before_any_task_runs(conf: dict[str, Any], name: str) -> None:
    ran: list[dict[str, Any]] = []
    built = _params_dag(ran)

    with pytest.raises(ParamValidationError, match=name):
        built.test(LOGICAL, conf=conf)
    assert ran == []


def test_a_required_param_without_a_value_raises() -> None:
    with DAG("required", start_date=LOGICAL,
             params={"dataset": Param(type="string")}) as built:
        PythonOperator(task_id="noop", python_callable=lambda: None)

    with pytest.raises(ParamValidationError, match="dataset"):
        built.test(LOGICAL)
    run = built.test(LOGICAL, conf={"dataset": "cifar"})
    assert run.state == "success"


def test_conf_keys_that_are_not_params_are_still_in_params() -> None:
    # Airflow merges the whole dag_run.conf into params.
    with DAG("extra_conf", start_date=LOGICAL) as built:
        BashOperator(task_id="echo", bash_command="echo {{ params.extra }}")

    run = built.test(LOGICAL, conf={"extra": "from-conf"})

    assert run.get_task_instance("echo").xcom_pull() == "from-conf"


def test_params_are_in_templates_and_the_python_context() -> None:
    with DAG("params_ctx", start_date=LOGICAL, params={"name": Param("ada")}) as built:
        BashOperator(task_id="echo", bash_command="echo {{ params.name }}")
        PythonOperator(task_id="py", python_callable=lambda **ctx: ctx["params"]["name"])

    run = built.test(LOGICAL, conf={"name": "grace"})

    assert run.get_task_instance("echo").xcom_pull() == "grace"
    assert run.get_task_instance("py").xcom_pull() == "grace"


def test_dag_function_arguments_become_params() -> None:
    @dag(start_date=LOGICAL)
    def training(epochs: int = 3, tag: str = "base") -> None:
        @task
        def fit(n: int, label: str) -> str:
            return f"{label}:{n}"

        fit(epochs, tag)

    built = training()

    default_run = built.test(LOGICAL)
    conf_run = built.test(LOGICAL, conf={"epochs": 7})

    assert set(built.params) == {"epochs", "tag"}
    assert default_run.get_task_instance("fit").xcom_pull() == "base:3"
    assert conf_run.get_task_instance("fit").xcom_pull() == "base:7"


def test_dag_function_argument_with_a_param_schema_is_validated() -> None:
    @dag(start_date=LOGICAL, params={"epochs": Param(3, type="integer", minimum=1)})
    def checked(epochs: int = 3) -> None:
        @task
        def fit(n: int) -> int:
            return n

        fit(epochs)

    built = checked()

    assert built.test(LOGICAL, conf={"epochs": 4}).get_task_instance("fit").xcom_pull() == 4
    with pytest.raises(ParamValidationError, match="epochs"):
        built.test(LOGICAL, conf={"epochs": -1})


def test_params_inside_the_dag_function_also_work_as_templates() -> None:
    @dag(start_date=LOGICAL)
    def templated(city: str = "Oslo") -> None:
        BashOperator(task_id="echo", bash_command="echo {{ params.city }}")

    run = templated().test(LOGICAL, conf={"city": "Lima"})

    assert run.get_task_instance("echo").xcom_pull() == "Lima"


def test_conf_must_be_a_mapping() -> None:
    with DAG("bad_conf", start_date=LOGICAL) as built:
        PythonOperator(task_id="noop", python_callable=lambda: None)

    with pytest.raises(MlpipeError, match="conf"):
        built.test(LOGICAL, conf=["not", "a", "dict"])  # type: ignore[arg-type]


def test_logical_date_reaches_the_run_and_the_context() -> None:
    seen: list[Any] = []
    with DAG("dates", start_date=LOGICAL) as built:
        PythonOperator(task_id="py",
                       python_callable=lambda logical_date, ds: seen.append((logical_date, ds)))

    run = built.test("2024-03-05")

    assert run.logical_date == datetime(2024, 3, 5, tzinfo=UTC)
    assert seen == [(datetime(2024, 3, 5, tzinfo=UTC), "2024-03-05")]
