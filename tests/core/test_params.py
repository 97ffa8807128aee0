"""``Param``: defaults checked against JSON-schema keywords when the DAG is defined."""

from __future__ import annotations

import pytest

from mlpipe import DAG, Param, dag
from mlpipe.core.params import resolve_params
from mlpipe.errors import ParamValidationError


def test_valid_param_default_is_accepted() -> None:
    built = DAG("d", params={"epochs": Param(5, type="integer", minimum=0)})

    param = built.params["epochs"]
    assert isinstance(param, Param)
    assert param.value == 5
    assert param.resolve("epochs") == 5


def test_default_below_minimum_fails_at_definition() -> None:
    with pytest.raises(ParamValidationError, match=r"param 'epochs' value -1 is invalid"):
        DAG("d", params={"epochs": Param(-1, type="integer", minimum=0)})


def test_default_of_the_wrong_type_fails_at_definition() -> None:
    with pytest.raises(ParamValidationError, match=r"param 'epochs' value 'many'"):
        DAG("d", params={"epochs": Param("many", type="integer")})


def test_default_outside_enum_fails_at_definition() -> None:
    with pytest.raises(ParamValidationError, match=r"param 'device' value 'tpu'"):
        DAG("d", params={"device": Param("tpu", enum=["cpu", "cuda"])})


def test_invalid_param_default_in_at_dag_fails_when_called() -> None:
    @dag(params={"lr": Param(2.0, type="number", maximum=1.0)})
    def training() -> None:
        return None

    with pytest.raises(ParamValidationError, match=r"param 'lr' value 2.0"):
        training()


def test_invalid_param_default_in_default_args_fails_at_definition() -> None:
    with pytest.raises(ParamValidationError, match=r"param 'epochs'"):
        DAG("d", default_args={"params": {"epochs": Param(-1, type="integer", minimum=0)}})


def test_param_without_default_is_allowed_at_definition() -> None:
    built = DAG("d", params={"dataset": Param(type="string")})

    param = built.params["dataset"]
    assert isinstance(param, Param)
    assert param.has_value is False


def test_param_without_default_or_value_fails_when_resolved() -> None:
    with pytest.raises(ParamValidationError, match=r"param 'dataset' has no default"):
        resolve_params({"dataset": Param(type="string")}, {})


def test_run_conf_value_is_checked_against_the_schema() -> None:
    params = {"epochs": Param(5, type="integer", minimum=0)}

    assert resolve_params(params, {"epochs": 9}) == {"epochs": 9}
    with pytest.raises(ParamValidationError, match=r"param 'epochs' value -3"):
        resolve_params(params, {"epochs": -3})


def test_plain_values_are_params_without_a_schema() -> None:
    built = DAG("d", params={"epochs": 5, "name": "x"})

    assert built.params == {"epochs": 5, "name": "x"}
    assert resolve_params(built.params, {"name": "y"}) == {"epochs": 5, "name": "y"}


def test_dag_params_override_default_args_params() -> None:
    built = DAG("d", default_args={"params": {"a": 1, "b": 2}}, params={"b": 3})

    assert built.params == {"a": 1, "b": 3}
