"""Trigger rules: when a task may run, given how its upstream task instances ended."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mlpipe.core.states import TaskInstanceState as S


class TriggerRule(StrEnum):
    """The eleven rules Airflow defines; the default is ``all_success``."""

    ALL_SUCCESS = "all_success"
    ALL_FAILED = "all_failed"
    ALL_DONE = "all_done"
    ALL_SKIPPED = "all_skipped"
    ONE_SUCCESS = "one_success"
    ONE_FAILED = "one_failed"
    ONE_DONE = "one_done"
    NONE_FAILED = "none_failed"
    NONE_FAILED_MIN_ONE_SUCCESS = "none_failed_min_one_success"
    NONE_SKIPPED = "none_skipped"
    ALWAYS = "always"


@dataclass(slots=True)
class UpstreamTally:
    """How many upstream task instances ended in each state.

    ``expected`` counts the upstream instances known to exist; ``unknown`` counts upstream
    tasks whose number of instances is not known yet (mapped and not expanded).
    """

    success: int = 0
    skipped: int = 0
    failed: int = 0
    upstream_failed: int = 0
    removed: int = 0
    expected: int = 0
    unknown: int = 0

    def add(self, state: S) -> None:
        """Count one upstream instance that finished in ``state``."""
        if state is S.SUCCESS:
            self.success += 1
        elif state is S.SKIPPED:
            self.skipped += 1
        elif state is S.FAILED:
            self.failed += 1
        elif state is S.UPSTREAM_FAILED:
            self.upstream_failed += 1
        elif state is S.REMOVED:
            self.removed += 1

    def plus(self, other: UpstreamTally) -> UpstreamTally:
        """Return the sum of two tallies."""
        return UpstreamTally(
            self.success + other.success,
            self.skipped + other.skipped,
            self.failed + other.failed,
            self.upstream_failed + other.upstream_failed,
            self.removed + other.removed,
            self.expected + other.expected,
            self.unknown + other.unknown,
        )

    @property
    def done(self) -> int:
        return self.success + self.skipped + self.failed + self.upstream_failed + self.removed

    @property
    def all_done(self) -> bool:
        return self.unknown == 0 and self.done >= self.expected


class Decision(StrEnum):
    """What the trigger rule says about a waiting task instance."""

    WAIT = "wait"
    RUN = "run"
    SKIP = "skipped"
    UPSTREAM_FAILED = "upstream_failed"


def decide(rule: TriggerRule, t: UpstreamTally) -> Decision:
    """Apply ``rule`` to the upstream tally, deciding as early as the rule allows."""
    rule = TriggerRule(rule)
    if rule is TriggerRule.ALWAYS or (t.expected == 0 and t.unknown == 0):
        return Decision.RUN
    failures = t.failed + t.upstream_failed
    complete = t.all_done
    if rule is TriggerRule.ALL_SUCCESS:
        if failures:
            return Decision.UPSTREAM_FAILED
        if t.skipped:
            return Decision.SKIP
        return Decision.RUN if complete else Decision.WAIT
    if rule is TriggerRule.ALL_FAILED:
        if t.success or t.skipped:
            return Decision.SKIP
        return Decision.RUN if complete else Decision.WAIT
    if rule is TriggerRule.ALL_DONE:
        return Decision.RUN if complete else Decision.WAIT
    if rule is TriggerRule.ALL_SKIPPED:
        if t.success or failures:
            return Decision.SKIP
        return Decision.RUN if complete else Decision.WAIT
    if rule is TriggerRule.ONE_SUCCESS:
        if t.success:
            return Decision.RUN
        if not complete:
            return Decision.WAIT
        return Decision.SKIP if t.skipped == t.done else Decision.UPSTREAM_FAILED
    if rule is TriggerRule.ONE_FAILED:
        if failures:
            return Decision.RUN
        return Decision.SKIP if complete else Decision.WAIT
    if rule is TriggerRule.ONE_DONE:
        if t.success or t.failed:
            return Decision.RUN
        return Decision.SKIP if complete else Decision.WAIT
    if rule is TriggerRule.NONE_FAILED:
        if failures:
            return Decision.UPSTREAM_FAILED
        return Decision.RUN if complete else Decision.WAIT
    if rule is TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS:
        if failures:
            return Decision.UPSTREAM_FAILED
        if not complete:
            return Decision.WAIT
        return Decision.RUN if t.success else Decision.SKIP
    # NONE_SKIPPED
    if t.skipped:
        return Decision.SKIP
    return Decision.RUN if complete else Decision.WAIT
