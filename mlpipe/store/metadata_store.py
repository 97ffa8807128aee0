"""``MetadataStore``: the metadata database with every repository the engine reads and writes.

Each repository (``store/repositories/``) owns one family of tables and only writes rows:
none calls back into the scheduler, an executor or tracking. State changes of task
instances are compare-and-set (``UPDATE ... WHERE state IN (...)``) and record a transition
row in the same transaction, so two processes can never both move one task instance from
queued to running. Callers that batch writes (the run driver) open the transaction
(``transaction``, ``try_transaction``) and pass its ``conn`` to the methods that take one.
"""

from __future__ import annotations

from mlpipe.store import database
from mlpipe.store import hot_sql as hot
from mlpipe.store.repositories.artifacts import ArtifactRepository
from mlpipe.store.repositories.dags import DagRepository
from mlpipe.store.repositories.datasets import DatasetRepository
from mlpipe.store.repositories.listings import ListingRepository
from mlpipe.store.repositories.pools import PoolRepository
from mlpipe.store.repositories.run_leases import RunLeaseRepository
from mlpipe.store.repositories.runs import RunRepository
from mlpipe.store.repositories.sla_misses import SlaMissRepository
from mlpipe.store.repositories.stats import StatsRepository
from mlpipe.store.repositories.task_instances import TaskInstanceRepository
from mlpipe.store.repositories.tracking_links import TrackingLinkRepository
from mlpipe.store.repositories.users import UserRepository


class MetadataStore(DagRepository, RunRepository, RunLeaseRepository, TaskInstanceRepository,
                    ArtifactRepository, PoolRepository, TrackingLinkRepository,
                    UserRepository, StatsRepository, ListingRepository,
                    SlaMissRepository, DatasetRepository):
    """The metadata database behind one URL (SQLite or PostgreSQL), every repository in one.

    The scheduler and the runtime type against the repositories' protocols
    (``store/protocols.py``); this class is the one implementation.
    """

    def prime(self) -> None:
        """Prepare, in a process about to fork executor children, what each child's try
        would otherwise prepare for itself: compiled reads and the hot statements' type
        conversions (inherited by the fork)."""
        self.get_xcoms("", "", "", "")
        hot.prime(self.writer.dialect)

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> MetadataStore:
        """Connect; migrate an empty or outdated schema (or say what to run if told not to)."""
        engine = database.make_engine(url)
        database.ensure_schema(engine, migrate_if_needed=migrate)
        return cls(engine)


__all__ = ["MetadataStore"]
