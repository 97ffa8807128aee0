"""The executor interface: start, submit a task instance, poll for finished ones, shut down."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from mlpipe.store.entities import TIKey
from mlpipe.tracking.config import TrackingConfig

if TYPE_CHECKING:
    from mlpipe.core.dag import DAG
    from mlpipe.runtime.models import DagRun
    from mlpipe.store.metadata_store import MetadataStore


#: ``(conn, key, attempt, state, skip) -> planned``: see ``DagRunDriver.hand_off``
HandOff = Callable[[Any, TIKey, int, str, tuple[str, ...]], bool]


@dataclass(frozen=True, slots=True)
class Workload:
    """One try of one task instance to run; ``timeout`` is a hard limit in seconds."""

    key: TIKey
    timeout: float | None = None
    resources: dict[str, float] = field(default_factory=dict)
    #: a number the submitter picks per submission; events echo it back, so an event of an
    #: earlier, abandoned try (its process killed late) is never mistaken for the new one
    attempt: int = 0


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """A submitted task instance is done running; its outcome is in the store.

    ``exit_code`` is the worker process's exit code (None when it ran in this process).
    """

    key: TIKey
    exit_code: int | None = None
    attempt: int = 0
    #: False when the worker found the instance no longer queued (another process runs it)
    claimed: bool = True
    #: set by in-process executors, which know the outcome without asking the store
    state: str | None = None
    skip: tuple[str, ...] = ()


@dataclass
class ExecutionEnv:
    """What an executor needs to run a task instance anywhere."""

    store: MetadataStore
    store_url: str
    dag_provider: Callable[[str], DAG]
    logs_root: Path
    xcom_max_bytes: int = 48 * 1024
    heartbeat_interval: float = 5.0
    #: where tasks log to MLflow (None: tasks that ask for an MLflow run fail)
    tracking: TrackingConfig | None = None
    #: where tasks write artifacts (context["artifact_prefix"] is under it)
    artifact_root: str | None = None
    #: runs already loaded in this process (in-process executors reuse them)
    runs: dict[tuple[str, str], DagRun] = field(default_factory=dict)
    #: per run, the driver's hand-off: in-process executors call it inside a try's final
    #: transaction, so finishing it and queueing what it made ready is one transaction
    handoffs: dict[tuple[str, str], HandOff] = field(default_factory=dict)


class Executor(ABC):
    """Runs task instances; every implementation passes ``tests/executors`` (the contract)."""

    #: True when tries run in this process and write through the driver's ``DagRun``
    in_process: ClassVar[bool] = False

    def __init__(self, parallelism: int = 1) -> None:
        self.parallelism = max(1, parallelism)
        self.env: ExecutionEnv | None = None

    def start(self, env: ExecutionEnv) -> None:
        """Prepare to run task instances of ``env``'s store."""
        self.env = env

    @abstractmethod
    def submit(self, workload: Workload) -> None:
        """Run ``workload`` now or as soon as a slot is free (the task must be queued)."""

    @abstractmethod
    def poll(self, timeout: float | None = None) -> list[TaskEvent]:
        """Finished task instances; waits up to ``timeout`` seconds for the first one."""

    @abstractmethod
    def kill(self, key: TIKey) -> bool:
        """Stop a running task instance's process tree; False if it is not running here."""

    def prepare(self, conn: Any, workload: Workload) -> None:  # noqa: B027 - optional hook
        """Claim ``workload`` inside ``conn``'s transaction, ahead of ``submit``.

        Called by the driver in a try's final transaction with the workload it will submit
        next; in-process executors claim it there, saving a transaction. Others ignore it.
        """

    @property
    @abstractmethod
    def busy(self) -> int:
        """How many submitted task instances have not been reported by ``poll`` yet."""

    def shutdown(self) -> None:  # noqa: B027 - optional hook, nothing to do by default
        """Stop accepting work; wait for (or stop) what runs."""
