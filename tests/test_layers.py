"""The layering that import-linter cannot see: string imports, and each room's docstring.

``make contracts`` (part of ``make test``) checks the import graph itself against the
contracts in ``pyproject.toml``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import mlpipe

PACKAGE = Path(mlpipe.__file__).resolve().parent
#: the documented plugin points that import by name: stores registered as "module:attr",
#: and the command line's subcommands, imported when invoked
PLUGIN_POINTS = {"artifacts/registry.py", "cli/main.py"}


def test_no_module_imports_by_a_string_outside_the_documented_plugin_point() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in ("import_module", "__import__") and rel not in PLUGIN_POINTS:
                    found.append(f"{rel}:{node.lineno}")
    assert found == []


def test_every_subpackage_says_what_it_is_for_and_what_it_may_import() -> None:
    rooms = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))
    assert len(rooms) == 20
    for room in rooms:
        doc = ast.get_docstring(ast.parse((PACKAGE / room / "__init__.py").read_text()))
        assert doc, f"mlpipe/{room}/__init__.py has no docstring"
        assert re.search(r"May import:|imports only|May import", doc), \
            f"mlpipe/{room}/__init__.py does not say what it may import"


def test_the_core_imports_nothing_above_it() -> None:
    for path in sorted((PACKAGE / "core").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("mlpipe.") or \
                    node.module.startswith(("mlpipe.core", "mlpipe.errors")), \
                    f"{path.name} imports {node.module}"
