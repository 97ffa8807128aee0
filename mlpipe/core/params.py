"""``Param``: a DAG or task parameter with a default and a JSON-schema that checks it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlpipe.errors import ParamValidationError

_NOTSET: Any = object()


class Param:
    """A parameter value with a JSON schema (``type``, ``minimum``, ``enum``, ...).

    ``Param(5, type="integer", minimum=0)``. A default is checked when the DAG is defined;
    a value a run supplies (``--conf``) is checked when the run starts.
    """

    def __init__(self, default: Any = _NOTSET, description: str | None = None,
                 **schema: Any) -> None:
        self.value = default
        self.description = description
        self.schema = schema

    @property
    def has_value(self) -> bool:
        return self.value is not _NOTSET

    def resolve(self, name: str, value: Any = _NOTSET) -> Any:
        """Validate ``value`` (or the default) against the schema and return it."""
        final = self.value if value is _NOTSET else value
        if final is _NOTSET:
            raise ParamValidationError(
                f"param {name!r} has no default and no value was given; pass it in the run's "
                "conf (for example --conf '{\"%s\": ...}')" % name
            )
        if self.schema:
            import jsonschema  # lazy: only needed when a schema is present

            try:
                jsonschema.validate(final, self.schema)
            except jsonschema.ValidationError as exc:
                raise ParamValidationError(
                    f"param {name!r} value {final!r} is invalid: {exc.message}"
                ) from None
            except jsonschema.SchemaError as exc:
                raise ParamValidationError(
                    f"param {name!r} has an invalid schema: {exc.message}"
                ) from None
        return final

    def __repr__(self) -> str:
        return f"Param({self.value!r}, {self.schema!r})"


def check_defaults(params: Mapping[str, Any]) -> None:
    """Validate every ``Param`` default that is set (at definition time)."""
    for name, value in params.items():
        if isinstance(value, Param) and value.has_value:
            value.resolve(name)


def resolve_params(params: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Plain values for every param, with ``overrides`` (the run's conf) applied and checked.

    As in Airflow, conf keys that are not declared params are added as they are.
    """
    resolved: dict[str, Any] = {k: v for k, v in overrides.items() if k not in params}
    for name, value in params.items():
        given = overrides.get(name, _NOTSET)
        if isinstance(value, Param):
            resolved[name] = value.resolve(name, given)
        else:
            resolved[name] = value if given is _NOTSET else given
    return resolved
