"""``BaseSensorOperator``: a task that waits for a condition, poking it until true.

``mode="poke"`` loops inside one try (it holds its worker slot while it sleeps);
``mode="reschedule"`` ends the try after each poke that is not done: the instance becomes
``up_for_reschedule`` with a ``reschedule_date`` and holds no slot until the scheduler
queues it again. Its try number stays, and ``timeout`` counts from the first poke of the
try, across reschedules (Airflow's semantics). A sensor that times out fails without
retries, or is skipped with ``soft_fail=True``.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from mlpipe.core.operator import BaseOperator, Context
from mlpipe.errors import DagDefinitionError, SensorTimeoutError, TaskRescheduled, TaskSkipped

__all__ = ["BaseSensorOperator", "PokeReturnValue"]

log = logging.getLogger("mlpipe.task")

#: the longest wait between pokes that ``exponential_backoff`` grows to without ``max_wait``
DEFAULT_MAX_WAIT = timedelta(hours=1)
MODES = ("poke", "reschedule")
_LONGEST = timedelta(days=3650).total_seconds()


class PokeReturnValue:
    """What ``poke`` may return instead of a bool: done or not, and the XCom to push."""

    def __init__(self, is_done: bool, xcom_value: Any = None) -> None:
        self.is_done = bool(is_done)
        self.xcom_value = xcom_value

    def __bool__(self) -> bool:
        return self.is_done

    def __repr__(self) -> str:
        return f"PokeReturnValue(is_done={self.is_done}, xcom_value={self.xcom_value!r})"


class BaseSensorOperator(BaseOperator):
    """Waits until ``poke(context)`` is true; subclasses implement ``poke``.

    Args:
        poke_interval: time between pokes (seconds or a timedelta, > 0).
        timeout: how long to wait in all before failing (``soft_fail``: skipping).
        mode: ``"poke"`` (wait inside the try) or ``"reschedule"`` (free the slot between
            pokes; state ``up_for_reschedule``).
        soft_fail: on timeout mark the task skipped instead of failed.
        exponential_backoff: double the interval after each poke, up to ``max_wait``
            (default one hour, never below ``poke_interval``).
    """

    ui_color: ClassVar[str] = "#e6f1f2"

    def __init__(self, task_id: str, *, poke_interval: timedelta | float = 60,
                 timeout: timedelta | float = timedelta(days=7), mode: str = "poke",
                 soft_fail: bool = False, exponential_backoff: bool = False,
                 max_wait: timedelta | float | None = None, **kwargs: Any) -> None:
        super().__init__(task_id, **kwargs)
        self.poke_interval = _duration(self.task_id, "poke_interval", poke_interval,
                                       positive=True)
        self.timeout = _duration(self.task_id, "timeout", timeout, positive=False)
        if mode not in MODES:
            raise DagDefinitionError(f"sensor {self.task_id!r}: mode must be one of "
                                     f"{sorted(MODES)}, got {mode!r}")
        self.mode = mode
        self.soft_fail = bool(soft_fail)
        self.exponential_backoff = bool(exponential_backoff)
        self.max_wait = (None if max_wait is None
                         else _duration(self.task_id, "max_wait", max_wait, positive=True))

    @property
    def reschedule(self) -> bool:
        return self.mode == "reschedule"

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """True (or a done ``PokeReturnValue``) once the condition holds."""
        raise NotImplementedError(f"{type(self).__name__} must implement poke(context)")

    def execute(self, context: Context) -> Any:
        started, pokes = self._first_poke(context)
        deadline = started + self.timeout
        while True:
            result = self.poke(context)
            if isinstance(result, PokeReturnValue):
                if result.is_done:
                    return result.xcom_value
            elif result:
                return None
            now = datetime.now(UTC)
            if now >= deadline:
                self._timed_out(now - started)
            wait = min(self.next_interval(pokes), deadline - now)
            if self.reschedule:
                raise TaskRescheduled(now + wait)
            self.log_wait(wait)
            time.sleep(max(0.0, wait.total_seconds()))
            pokes += 1

    def next_interval(self, pokes: int) -> timedelta:
        """The wait after poke number ``pokes`` (1 = the first) of this try."""
        if not self.exponential_backoff:
            return self.poke_interval
        cap = max(self.max_wait or DEFAULT_MAX_WAIT, self.poke_interval)
        exponent = min(max(pokes - 1, 0), 32)  # 2**32 intervals is past any cap
        grown: timedelta = self.poke_interval * (2 ** exponent)
        return min(grown, cap)

    def log_wait(self, wait: timedelta) -> None:
        log.info("%s: not yet; poking again in %s", self.task_id, wait)

    def _first_poke(self, context: Context) -> tuple[datetime, int]:
        """When this try's first poke began and this poke's number (1 = the first)."""
        now = datetime.now(UTC)
        ti = context.get("ti")
        if not self.reschedule or ti is None or getattr(ti, "run", None) is None:
            return now, 1
        first, count = ti.run.store.try_pokes(ti.key, ti.try_number)
        return first or now, max(count, 1)

    def _timed_out(self, waited: timedelta) -> None:
        message = (f"sensor {self.task_id!r} timed out after {_short(waited)} "
                   f"(timeout {_short(self.timeout)})")
        if self.soft_fail:
            raise TaskSkipped(message + "; soft_fail: skipped")
        raise SensorTimeoutError(message)


def _short(delta: timedelta) -> str:
    return f"{delta.total_seconds():g} s"


def _duration(task_id: str, name: str, value: object, *, positive: bool) -> timedelta:
    """A number of seconds or a timedelta, checked: one clear line when it is not."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise DagDefinitionError(f"sensor {task_id!r}: {name} must be seconds or a timedelta, "
                                 f"got {value!r}")
    if not 0 <= seconds <= _LONGEST or (positive and seconds == 0):  # NaN fails too
        need = "> 0" if positive else ">= 0"
        raise DagDefinitionError(f"sensor {task_id!r}: {name} must be {need} seconds, "
                                 f"got {value!r}")
    return timedelta(seconds=seconds)

