"""``BaseNotifier``: a callback object that sends a message about a task, run or SLA miss."""

from __future__ import annotations

import logging
from typing import Any

from mlpipe.errors import NotificationError
from mlpipe.masking import redact

__all__ = ["DEFAULT_BASE_URL", "BaseNotifier", "message_fields"]

log = logging.getLogger("mlpipe.notifications")
#: where ``log_url`` points by default (``mlpipe webserver``'s default address)
DEFAULT_BASE_URL = "http://127.0.0.1:8080"
_LONGEST_TIMEOUT = 300.0


class BaseNotifier:
    """Use as ``on_failure_callback=SomeNotifier(...)`` (or in a list). Subclasses
    implement ``notify(context)``; calling the notifier never raises."""

    def notify(self, context: dict[str, Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement notify(context)")

    def __call__(self, context: dict[str, Any]) -> None:
        try:
            self.notify(context)
        except Exception as exc:  # a notification never fails the task or the run
            log.error("%s failed: %s", type(self).__name__,
                      redact(f"{type(exc).__name__}: {exc}"))


def check_timeout(owner: str, timeout: object) -> float:
    """A send timeout in seconds: a number in (0, 300]."""
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) \
            or not 0 < timeout <= _LONGEST_TIMEOUT:
        raise NotificationError(f"{owner}: timeout must be seconds in (0, "
                                f"{_LONGEST_TIMEOUT:g}], got {timeout!r}")
    return float(timeout)


def message_fields(context: dict[str, Any], *, base_url: str = DEFAULT_BASE_URL
                   ) -> dict[str, Any]:
    """What a message says, from a task's, a run's or an SLA miss's callback context:
    dag_id, run_id, task_id, state, try_number, log_url, exception (one line, masked)."""
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    dag = context.get("dag")
    dag_id = (getattr(ti, "dag_id", None) or getattr(dag, "dag_id", None)
              or context.get("dag_id"))
    run_id = context.get("run_id") or getattr(dag_run, "run_id", None)
    task_id = getattr(ti, "task_id", None) or context.get("task_id")
    state = context.get("state") or getattr(ti, "state", None) or getattr(dag_run, "state", None)
    try_number = getattr(ti, "try_number", None)
    exception = context.get("exception")
    log_url = None
    if dag_id and run_id and task_id and try_number:
        log_url = (f"{base_url.rstrip('/')}/api/v1/dags/{dag_id}/dagRuns/{run_id}/"
                   f"taskInstances/{task_id}/logs/{try_number}")
    return {
        "dag_id": dag_id,
        "run_id": run_id,
        "task_id": task_id,
        "state": str(getattr(state, "value", state)) if state is not None else None,
        "try_number": try_number,
        "log_url": log_url,
        "exception": _one_line(exception) if exception is not None else None,
        "reason": context.get("reason"),
    }


def _one_line(exc: object) -> str:
    text = f"{type(exc).__name__}: {exc}" if isinstance(exc, BaseException) else str(exc)
    first = text.strip().splitlines()[0] if text.strip() else text
    return redact(first[:1000])


def render_text(template: str | None, fields: dict[str, Any], default: str) -> str:
    """``template`` rendered with the message fields (sandboxed Jinja), or ``default``."""
    if template is None:
        return default.format(**{k: ("" if v is None else v) for k, v in fields.items()})
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment().from_string(template).render(**fields)
