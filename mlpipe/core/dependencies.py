"""``>>``, ``<<``, ``set_upstream``, ``set_downstream`` and ``chain`` for every DAG node."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from mlpipe.errors import DagDefinitionError

if TYPE_CHECKING:
    from mlpipe.core.operator import BaseOperator

N = TypeVar("N")


class DependencyMixin:
    """Anything that can stand on either side of ``>>``: tasks, XComArgs, task groups."""

    @property
    def roots(self) -> list[BaseOperator]:
        """Tasks that an upstream dependency attaches to."""
        raise NotImplementedError

    @property
    def leaves(self) -> list[BaseOperator]:
        """Tasks that a downstream dependency attaches to."""
        raise NotImplementedError

    def set_downstream(self, other: DependencyMixin | Sequence[DependencyMixin]) -> None:
        """Make ``other`` run after this node."""
        for node in _as_nodes(other):
            for leaf in self.leaves:
                for root in node.roots:
                    leaf._add_edge_to(root)

    def set_upstream(self, other: DependencyMixin | Sequence[DependencyMixin]) -> None:
        """Make this node run after ``other``."""
        for node in _as_nodes(other):
            node.set_downstream(self)

    def __rshift__(self, other: N) -> N:
        self.set_downstream(other)  # type: ignore[arg-type]
        return other

    def __lshift__(self, other: N) -> N:
        self.set_upstream(other)  # type: ignore[arg-type]
        return other

    def __rrshift__(self, other: Any) -> DependencyMixin:
        # [a, b] >> self
        self.set_upstream(other)
        return self

    def __rlshift__(self, other: Any) -> DependencyMixin:
        # [a, b] << self
        self.set_downstream(other)
        return self


def _as_nodes(other: DependencyMixin | Iterable[DependencyMixin]) -> list[DependencyMixin]:
    if isinstance(other, DependencyMixin):
        return [other]
    nodes = list(other)
    for node in nodes:
        if not isinstance(node, DependencyMixin):
            raise TypeError(
                f"cannot set a dependency on {node!r}: expected a task, XComArg or TaskGroup"
            )
    return nodes


def chain(*nodes: DependencyMixin | Sequence[DependencyMixin]) -> None:
    """Set ``nodes[0] >> nodes[1] >> ...``; lists of equal length pair up element-wise."""
    for up, down in itertools.pairwise(nodes):
        if isinstance(up, DependencyMixin):
            up.set_downstream(down)
        elif isinstance(down, DependencyMixin):
            for u in up:
                u.set_downstream(down)
        else:
            if len(up) != len(down):
                raise DagDefinitionError(
                    f"chain() got lists of different lengths ({len(up)} and {len(down)}); "
                    "adjacent lists must pair up one to one"
                )
            for u, d in zip(up, down, strict=True):
                u.set_downstream(d)
