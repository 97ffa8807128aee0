"""Finding objects of a type inside nested arguments (lists, tuples, sets, mappings)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")
_SCALARS = (str, int, float, bool, type(None), bytes)


def find_instances(value: Any, kind: type[T] | tuple[type, ...]) -> list[T]:
    """Every instance of ``kind`` inside ``value``, depth first, in order of appearance."""
    if isinstance(value, _SCALARS):
        return [value] if isinstance(value, kind) else []  # type: ignore[list-item]
    found: list[T] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, kind):
            found.append(item)  # type: ignore[arg-type]
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(reversed(list(item)))
        elif isinstance(item, Mapping):
            stack.extend(reversed(list(item.values())))
    return found
