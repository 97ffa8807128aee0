"""One error tree: every error mlpipe raises on purpose is defined in ``mlpipe/errors/``
and drawn in that package's docstring."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import mlpipe.errors as errors

PACKAGE = Path(errors.__file__).resolve().parents[1]
ERROR_NAMES = {name for name in errors.__all__ if name[0].isupper()}
BUILTIN_BASES = {"Exception", "BaseException", "ValueError", "RuntimeError", "KeyError",
                 "TypeError", "OSError", "LookupError"}


def _exception_classes_outside_the_tree() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "errors" in path.relative_to(PACKAGE).parts[:1]:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef) or node.name.startswith("_"):
                continue
            bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "")
                     for b in node.bases}
            if bases & (ERROR_NAMES | BUILTIN_BASES):
                found.append(f"{path.relative_to(PACKAGE.parent)}: {node.name}")
    return found


def test_no_public_exception_class_is_defined_outside_the_errors_package() -> None:
    assert _exception_classes_outside_the_tree() == []


def test_every_error_derives_from_the_root_and_is_drawn_in_the_tree() -> None:
    doc = errors.__doc__ or ""
    for name in sorted(ERROR_NAMES):
        cls = getattr(errors, name)
        assert inspect.isclass(cls) and issubclass(cls, errors.MlpipeError), name
        assert re.search(rf"^    [│├└─ ]*{name}\b", doc, re.M), f"{name} is not drawn in the tree"
    assert len(ERROR_NAMES) == 61
