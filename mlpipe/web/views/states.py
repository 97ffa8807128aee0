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

#: two letters a grid cell shows, distinct for every state (``state[:2]`` would give "UP"
#: to up_for_retry, up_for_reschedule and upstream_failed alike)
ABBREVIATIONS = {
    "success": "SU", "failed": "FA", "running": "RU", "queued": "QU", "scheduled": "SC",
    "up_for_retry": "RT", "up_for_reschedule": "RS", "upstream_failed": "UF",
    "skipped": "SK", "removed": "RM", "none": "",
}

#: every state the legends show, in the grid's order
LEGEND = ("success", "failed", "running", "queued", "scheduled", "up_for_retry",
          "up_for_reschedule", "upstream_failed", "skipped", "removed", "none")


def abbreviation(state: str | None) -> str:
    """The two letters a grid cell shows for ``state`` (``RS`` for up_for_reschedule)."""
    value = state or "none"
    return ABBREVIATIONS.get(value, value[:2].upper())
