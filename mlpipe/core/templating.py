"""Rendering ``template_fields`` with sandboxed Jinja2 and strict undefined names."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlpipe.errors import TemplateRenderError

if TYPE_CHECKING:
    import jinja2

    from mlpipe.core.dag import DAG

_MARKERS = ("{{", "{%", "{#")


@functools.lru_cache(maxsize=64)
def _environment(searchpath: tuple[str, ...]) -> jinja2.Environment:
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(list(searchpath)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        cache_size=400,
    )


def environment_for(dag: DAG | None) -> jinja2.Environment:
    """The Jinja environment for a DAG: templates load from its folder and searchpath."""
    if dag is None:
        return _environment(())
    return _dag_environment(dag.fileloc, tuple(dag.template_searchpath), os.getcwd())


@functools.lru_cache(maxsize=256)
def _dag_environment(fileloc: str, searchpath: tuple[str, ...], cwd: str
                     ) -> jinja2.Environment:
    """Once per DAG file (and working directory, which a relative ``fileloc`` depends on)."""
    folder = Path(cwd, fileloc).resolve().parent
    return _environment((str(folder), *[str(folder / p) for p in searchpath]))


def has_template(text: str) -> bool:
    return any(m in text for m in _MARKERS)


def _is_template_file(text: str, template_ext: Sequence[str]) -> bool:
    return bool(template_ext) and text.endswith(tuple(template_ext))


def holds_template(value: Any, template_ext: Sequence[str] = ()) -> bool:
    """Whether ``value`` holds a Jinja template: a string with markers, or a template file."""
    if isinstance(value, str):
        return has_template(value) or _is_template_file(value, template_ext)
    if isinstance(value, list | tuple):
        return any(holds_template(v, template_ext) for v in value)
    if isinstance(value, dict):
        return any(holds_template(v, template_ext) for v in value.values())
    return False


def render_value(
    value: Any,
    context: Mapping[str, Any],
    *,
    env: jinja2.Environment,
    template_ext: Sequence[str] = (),
    resolve: Callable[[Any], tuple[bool, Any]],
    field: str,
) -> Any:
    """Render strings in ``value`` (recursively), loading files that end in ``template_ext``.

    ``resolve(obj)`` returns ``(True, value)`` for run-time references (XComArgs) it
    replaces, and ``(False, None)`` for anything else.
    """
    handled, resolved = resolve(value)
    if handled:
        return resolved
    if isinstance(value, str):
        return _render_string(value, context, env=env, template_ext=template_ext, field=field)
    if isinstance(value, list):
        return [render_value(v, context, env=env, template_ext=template_ext, resolve=resolve,
                             field=field) for v in value]
    if isinstance(value, tuple):
        return tuple(render_value(v, context, env=env, template_ext=template_ext,
                                  resolve=resolve, field=field) for v in value)
    if isinstance(value, dict):
        return {k: render_value(v, context, env=env, template_ext=template_ext,
                                resolve=resolve, field=field) for k, v in value.items()}
    return value


def _render_string(text: str, context: Mapping[str, Any], *, env: jinja2.Environment,
                   template_ext: Sequence[str], field: str) -> str:
    import jinja2

    is_file = _is_template_file(text, template_ext)
    if not is_file and not has_template(text):
        return text
    try:
        template = env.get_template(text) if is_file else env.from_string(text)
        return template.render(**context)
    except jinja2.TemplateNotFound as exc:
        searched = getattr(env.loader, "searchpath", [])
        raise TemplateRenderError(
            f"template file {exc.name!r} of field {field!r} not found; looked in {searched} "
            "(the DAG file's folder and template_searchpath)"
        ) from None
    except jinja2.UndefinedError as exc:
        raise TemplateRenderError(
            f"field {field!r}: {exc.message} in template {text!r}; known names: "
            f"{sorted(context)}"
        ) from None
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateRenderError(
            f"field {field!r}: template syntax error on line {exc.lineno}: {exc.message}"
        ) from None
    except jinja2.exceptions.SecurityError as exc:
        raise TemplateRenderError(f"field {field!r}: unsafe template: {exc}") from None


def ds_add(ds: str, days: int) -> str:
    """``ds`` (YYYY-MM-DD) plus ``days`` days."""
    return (datetime.strptime(ds, "%Y-%m-%d") + timedelta(days=days)).strftime("%Y-%m-%d")


def ds_format(ds: str, input_format: str, output_format: str) -> str:
    """Reformat a date string from ``input_format`` to ``output_format``."""
    return datetime.strptime(ds, input_format).strftime(output_format)


class Macros:
    """The ``macros`` namespace of the template context."""

    ds_add = staticmethod(ds_add)
    ds_format = staticmethod(ds_format)
    datetime = datetime
    timedelta = timedelta
