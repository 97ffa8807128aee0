"""State names as the pages show them, and the one state that sums up several."""

from __future__ import annotations

from collections.abc import Iterable

from mlpipe.core.states import TaskInstanceState as S

#: which state a group cell or a mapped task's cell shows: the first of these present
#: (what needs attention first; the order Airflow's grid uses)
PRIORITY = (S.FAILED, S.UPSTREAM_FAILED, S.UP_FOR_RETRY, S.UP_FOR_RESCHEDULE, S.RUNNING,
            S.QUEUED, S.SCHEDULED, S.NONE, S.SUCCESS, S.SKIPPED, S.REMOVED)
_RANK = {state.value: i for i, state in enumerate(PRIORITY)}


def summary_state(states: Iterable[str]) -> str:
    """The state shown for several instances (``none`` when there are none)."""
    best = S.NONE.value
    rank = len(PRIORITY)
    for state in states:
        r = _RANK.get(state, len(PRIORITY) - 1)
        if r < rank:
            best, rank = state, r
    return best


def label(state: str | None) -> str:
    """``up_for_retry`` -> ``up for retry``: the text shown beside or inside a colour."""
    return (state or "none").replace("_", " ")


def css_class(state: str | None) -> str:
    """The CSS class that colours ``state`` (``state-up_for_retry``)."""
    value = state or "none"
    return f"state-{value if value in _RANK or value in _RUN_STATES else 'none'}"


_RUN_STATES = {"queued", "running", "success", "failed"}
