"""The graph view's layout: tasks placed left to right by topological layer, edges as curves.

Pure and deterministic: a task's layer is the length of the longest path to it from a
root; within a layer, tasks are ordered by the mean position of their upstream tasks (one
barycentre pass, which keeps most edges from crossing in pipeline-shaped DAGs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mlpipe.core.dag import DAG

NODE_W = 200
NODE_H = 46
GAP_X = 70
GAP_Y = 22
MARGIN = 12


@dataclass(frozen=True, slots=True)
class Node:
    task_id: str
    x: int
    y: int
    state: str | None
    is_mapped: bool
    operator: str

    @property
    def cx(self) -> int:
        return self.x + NODE_W // 2


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    path: str  # an SVG path


@dataclass(frozen=True, slots=True)
class GraphLayout:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    width: int
    height: int
    node_w: int = NODE_W
    node_h: int = NODE_H


def layout_graph(dag: DAG, states: Mapping[str, str] | None = None) -> GraphLayout:
    """Place every task of ``dag``; ``states`` (task id -> state) colours them."""
    states = states or {}
    ordered = dag.topological_sort()
    layer: dict[str, int] = {}
    for task in ordered:
        layer[task.task_id] = max((layer[u] + 1 for u in task.upstream_task_ids
                                   if u in layer), default=0)
    columns: dict[int, list[str]] = {}
    for task in ordered:
        columns.setdefault(layer[task.task_id], []).append(task.task_id)
    row: dict[str, float] = {}
    for index in sorted(columns):
        first = {task_id: i for i, task_id in enumerate(columns[index])}
        def barycentre(task_id: str, first: dict[str, int] = first) -> tuple[float, int]:
            ups = [row[u] for u in dag.task_dict[task_id].upstream_task_ids if u in row]
            return (sum(ups) / len(ups) if ups else float(first[task_id]), first[task_id])
        columns[index] = sorted(columns[index], key=barycentre)
        for i, task_id in enumerate(columns[index]):
            row[task_id] = float(i)
    nodes: dict[str, Node] = {}
    for index, column in columns.items():
        for i, task_id in enumerate(column):
            task = dag.task_dict[task_id]
            nodes[task_id] = Node(task_id, MARGIN + index * (NODE_W + GAP_X),
                                  MARGIN + i * (NODE_H + GAP_Y), states.get(task_id),
                                  bool(task.is_mapped), task.task_type)
    edges = []
    for task in ordered:
        for down in sorted(task.downstream_task_ids):
            if down in nodes:
                edges.append(Edge(task.task_id, down, _curve(nodes[task.task_id], nodes[down])))
    width = MARGIN * 2 + (max(columns, default=0) + 1) * (NODE_W + GAP_X) - GAP_X
    tallest = max((len(c) for c in columns.values()), default=1)
    height = MARGIN * 2 + tallest * (NODE_H + GAP_Y) - GAP_Y
    return GraphLayout(tuple(nodes.values()), tuple(edges), width, height)


def _curve(a: Node, b: Node) -> str:
    x1, y1 = a.x + NODE_W, a.y + NODE_H // 2
    x2, y2 = b.x, b.y + NODE_H // 2
    bend = (x2 - x1) // 2
    return f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}"
