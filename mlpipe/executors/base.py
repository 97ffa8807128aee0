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
    from mlpipe.runtime.try_runner import TryResult, TryRunner
    from mlpipe.store.metadata_store import MetadataStore


#: ``(result, attempt) -> recorded``: a driver's ``record_try`` (see ``ExecutionEnv.recorders``)
RunRecorder = Callable[["TryResult", int], bool]


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
    """What an executor needs to run task instances: the runner, and the driver's state."""

    runner: TryRunner
    #: runs already loaded in this process (in-process executors reuse them)
    runs: dict[tuple[str, str], DagRun] = field(default_factory=dict)
    #: per run, the driver's recorder: an in-process executor gives it to the runner, so a
    #: try's result and the queueing of what it made ready are one transaction
    recorders: dict[tuple[str, str], RunRecorder] = field(default_factory=dict)

    @property
    def store(self) -> MetadataStore:
        return self.runner.store

    @property
    def logs_root(self) -> Path:
        return self.runner.logs_root

    @property
    def tracking(self) -> TrackingConfig | None:
        return self.runner.tracking

    def dag_provider(self, dag_id: str) -> DAG:
        return self.runner.dag_provider(dag_id)


class Executor(ABC):
    """Runs task instances; every implementation passes ``tests/executors`` (the contract)."""

    #: True when tries run in this process and write through the driver's ``DagRun``
    in_process: ClassVar[bool] = False

    def __init__(self, parallelism: int = 1) -> None:
        self.parallelism = max(1, parallelism)
        self.env: ExecutionEnv | None = None

    @classmethod
    def from_settings(cls, settings: Any, parallelism: int = 1) -> Executor:
        """The executor as ``settings`` (``mlpipe.settings.Settings``) configure it."""
        return cls(parallelism=parallelism)

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

        Called by the driver in the transaction that records a try's result, with the
        workload it will submit next; in-process executors claim it there, saving a
        transaction. Others ignore it.
        """

    @property
    @abstractmethod
    def busy(self) -> int:
        """How many submitted task instances have not been reported by ``poll`` yet."""

    def shutdown(self) -> None:  # noqa: B027 - optional hook, nothing to do by default
        """Stop accepting work; wait for (or stop) what runs."""
