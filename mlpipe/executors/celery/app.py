"""The Celery application the scheduler and the workers share, and the message they pass.

A message is the JSON list ``[dag_id, run_id, task_id, map_index, try_number, attempt]``:
which try to run, nothing else. The worker reads everything else (the task, its resources)
from the DAG and the metadata database. JSON is the only serializer accepted: no pickle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlpipe.store.entities import TIKey

if TYPE_CHECKING:
    from celery import Celery

__all__ = ["RUN_TRY", "TryMessage", "broker_priority", "make_app"]

#: the Celery task name of "run this try"
RUN_TRY = "mlpipe.run_try"
#: broker priority levels (0..9): ``priority_weight`` is clamped into them
PRIORITY_LEVELS = 10
#: the longest id a message may carry (ids are checked again where they are used)
_MAX_ID = 250


@dataclass(frozen=True, slots=True)
class TryMessage:
    """The body of a "run this try" message."""

    key: TIKey
    #: the try the sender expects the worker to start (the row's try_number + 1)
    try_number: int
    #: the sender's submission number (echoed in logs; the driver matches events by it)
    attempt: int

    def args(self) -> list[Any]:
        k = self.key
        return [k.dag_id, k.run_id, k.task_id, k.map_index, self.try_number, self.attempt]

    @classmethod
    def parse(cls, args: Any) -> TryMessage:
        """Check a received message's shape; ``ValueError`` names what is wrong."""
        if not isinstance(args, list | tuple) or len(args) != 6:
            raise ValueError(f"a run_try message is a list of 6 values, got {args!r:.200}")
        dag_id, run_id, task_id, map_index, try_number, attempt = args
        for name, value in (("dag_id", dag_id), ("run_id", run_id), ("task_id", task_id)):
            if not isinstance(value, str) or not 0 < len(value) <= _MAX_ID:
                raise ValueError(f"{name} {value!r:.200} is not a string of 1..{_MAX_ID} chars")
        for name, value in (("map_index", map_index), ("try_number", try_number),
                            ("attempt", attempt)):
            if not isinstance(value, int) or isinstance(value, bool) or value < -1:
                raise ValueError(f"{name} {value!r:.50} is not an integer >= -1")
        return cls(TIKey(dag_id, run_id, task_id, map_index), try_number, attempt)


def broker_priority(priority_weight: int, broker_url: str) -> int:
    """A task's ``priority_weight`` as a broker priority: higher weight goes first.

    RabbitMQ delivers higher numbers first; kombu's Redis transport lower ones first.
    """
    level = max(0, min(PRIORITY_LEVELS - 1, int(priority_weight)))
    if broker_url.startswith(("redis://", "rediss://")):
        return PRIORITY_LEVELS - 1 - level
    return level


def make_app(broker_url: str, *, visibility_timeout: float = 3600.0) -> Celery:
    """The Celery app on ``broker_url``: late acks, one message prefetched per slot, JSON.

    ``visibility_timeout`` (Redis): a message taken by a worker that died before acking it
    goes back to the queue after this many seconds (RabbitMQ does so when the connection
    drops). A second delivery is harmless: the worker finds the try no longer queued.
    """
    from celery import Celery

    app = Celery("mlpipe", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json", accept_content=["json"], result_serializer="json",
        event_serializer="json", result_accept_content=["json"],
        task_ignore_result=True, result_backend=None,
        task_acks_late=True, task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1, task_acks_on_failure_or_timeout=True,
        task_queue_max_priority=PRIORITY_LEVELS, task_default_priority=0,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": visibility_timeout,
            "priority_steps": list(range(PRIORITY_LEVELS)), "sep": ":",
            "queue_order_strategy": "priority",
        },
        worker_hijack_root_logger=False, worker_send_task_events=False,
        task_send_sent_event=False, worker_enable_remote_control=True,
        enable_utc=True,
    )
    return app
