"""The trigger form: one field per DAG ``Param``, and the submitted form back to a conf.

Each field's value is checked with ``Param.resolve`` (the check a run's conf gets when the
run is created), so the errors shown beside the fields are exactly the ones a trigger from
the command line would give; the values typed are kept for the form shown again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlpipe.core.params import Param
from mlpipe.errors import ParamValidationError

#: what a form value may be at most (a conf is stored with its run)
MAX_FIELD_CHARS = 64 * 1024
_KINDS = {"integer", "number", "boolean", "array", "object", "string"}


@dataclass(frozen=True, slots=True)
class FormField:
    """One input of the trigger form."""

    name: str
    kind: str  # integer, number, boolean, array, object, string, enum
    value: str  # what the input shows
    description: str | None = None
    options: tuple[str, ...] = ()
    required: bool = False
    error: str | None = None
    checked: bool = False


def _kind(param: Any) -> str:
    if not isinstance(param, Param):
        return "json"
    if "enum" in param.schema:
        return "enum"
    declared = param.schema.get("type")
    if isinstance(declared, list):  # ["null", "integer"]: the first that is not null
        declared = next((t for t in declared if t != "null"), "string")
    return declared if declared in _KINDS else "json"


def _shown(kind: str, value: Any) -> str:
    if value is None:
        return ""
    if kind in ("array", "object", "json") or (kind == "enum" and not isinstance(value, str)):
        return json.dumps(value)
    if kind == "boolean":
        return "true" if value else "false"
    return str(value)


def form_fields(params: Mapping[str, Any], values: Mapping[str, str] | None = None,
                errors: Mapping[str, str] | None = None) -> list[FormField]:
    """The form's fields: defaults, or the ``values`` submitted, with their ``errors``."""
    errors = errors or {}
    fields = []
    for name, param in params.items():
        kind = _kind(param)
        default = param.value if isinstance(param, Param) and param.has_value else (
            None if isinstance(param, Param) else param)
        shown = values[name] if values is not None and name in values else _shown(kind, default)
        options: tuple[str, ...] = ()
        if kind == "enum":
            options = tuple(_shown("enum", o) if not isinstance(o, str) else o
                            for o in param.schema["enum"])
        fields.append(FormField(
            name, kind, shown,
            description=param.description if isinstance(param, Param) else None,
            options=options,
            required=isinstance(param, Param) and not param.has_value,
            error=errors.get(name),
            checked=kind == "boolean" and shown == "true"))
    return fields


def parse_form(params: Mapping[str, Any], form: Mapping[str, str]
               ) -> tuple[dict[str, Any], dict[str, str]]:
    """The run conf from a submitted form, and an error per field that is wrong.

    An empty field takes the param's default; a field without a default must be filled.
    """
    conf: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, param in params.items():
        kind = _kind(param)
        raw = form.get(name, "")
        if kind == "boolean":
            raw = "true" if raw in ("true", "on", "1") else "false"
        if len(raw) > MAX_FIELD_CHARS:
            errors[name] = f"at most {MAX_FIELD_CHARS} characters"
            continue
        try:
            value = _parse(kind, raw, param)
        except ValueError as exc:
            errors[name] = str(exc)
            continue
        if value is _EMPTY:
            if isinstance(param, Param) and not param.has_value:
                errors[name] = "required: this param has no default"
            continue
        if isinstance(param, Param):
            try:
                value = param.resolve(name, value)
            except ParamValidationError as exc:
                errors[name] = _short(str(exc), name)
                continue
        conf[name] = value
    return conf, errors


_EMPTY: Any = object()


def _parse(kind: str, raw: str, param: Any) -> Any:
    text = raw.strip()
    if kind == "string":
        return raw if raw != "" else _EMPTY
    if text == "":
        return _EMPTY
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number") from None
    if kind == "number":
        try:
            return float(text) if any(c in text for c in ".eE") else int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
    if kind == "boolean":
        return text == "true"
    if kind == "enum":
        options = param.schema["enum"]
        for option in options:
            if text == (option if isinstance(option, str) else json.dumps(option)):
                return option
        raise ValueError(f"{text!r} is not one of {options}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc.msg} at character {exc.pos}") from None


def _short(message: str, name: str) -> str:
    """``param 'lr' value 5 is invalid: 5 is greater than 1`` -> the part after the colon."""
    prefix = f"param {name!r} "
    if message.startswith(prefix) and ": " in message:
        return message.split(": ", 1)[1]
    return message
