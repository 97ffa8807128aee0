"""A live display of a DAG run's task states while it executes."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from mlpipe.cli.output import console
from mlpipe.core.dag import DAG
from mlpipe.core.states import TaskInstanceState as S
from mlpipe.store.entities import TIKey

_DONE = {S.SUCCESS, S.FAILED, S.SKIPPED, S.UPSTREAM_FAILED, S.REMOVED}


class RunProgress:
    """``update(key, state)`` from the driver; a bar of finished instances and who runs."""

    def __init__(self, dag: DAG, executor: str) -> None:
        self.states: dict[TIKey, str] = {}
        self.total = len(dag.task_dict)
        self.progress = Progress(TextColumn(f"[bold]{dag.dag_id}[/] ({executor})"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), console=console)
        self.task = self.progress.add_task("run", total=self.total)
        self.live = Live(self._render(), console=console, refresh_per_second=8,
                         transient=False)

    def _render(self) -> Any:
        counts = Counter(self.states.values())
        summary = "  ".join(f"{state}: {n}" for state, n in sorted(counts.items()))
        running = sorted(str(k.task_id) + (f"[{k.map_index}]" if k.map_index >= 0 else "")
                         for k, s in self.states.items() if s in (S.QUEUED, S.RUNNING))
        lines = [self.progress, Text(summary, style="dim")]
        if running:
            lines.append(Text("running: " + ", ".join(running[:8]), style="cyan"))
        return Group(*lines)

    def update(self, key: TIKey, state: str) -> None:
        self.states[key] = state
        done = sum(1 for s in self.states.values() if s in _DONE)
        self.progress.update(self.task, completed=done, total=max(self.total, len(self.states)))
        self.live.update(self._render())

    def __enter__(self) -> RunProgress:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(None, None, None)
        if not console.is_terminal:
            console.print()  # the last frame of a piped display ends without a newline
