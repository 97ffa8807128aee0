"""What every request handler reaches through ``app.state.ctx``: settings, store, DAGs, auth."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mlpipe.core.dag import DAG
from mlpipe.runtime.dagbag import DagBag, DagFolderWatcher
from mlpipe.scheduler.service import Engine
from mlpipe.settings import Settings
from mlpipe.store.metadata_store import MetadataStore
from mlpipe.web.accounts import PasswordChecker
from mlpipe.web.rate_limit import LoginLimiter
from mlpipe.web.sessions import SessionCodec, secret_key

if TYPE_CHECKING:
    from starlette.requests import Request

#: how stale the parsed DAGs folder may be before a request looks for changed files
REFRESH_S = 5.0


class DagCatalog:
    """The DAGs folder kept parsed for the web server: changed files are re-imported (each
    tried in a child first, like the scheduler does) at most every ``REFRESH_S``."""

    def __init__(self, settings: Settings) -> None:
        self._watcher = DagFolderWatcher(settings.dags_folder,
                                         parse_timeout=settings.dag_parse_timeout_s)
        self._lock = threading.Lock()
        self._checked = float("-inf")

    def bag(self) -> DagBag:
        with self._lock:
            if time.monotonic() - self._checked >= REFRESH_S:
                self._watcher.refresh()
                self._checked = time.monotonic()
            return self._watcher.bag

    def get(self, dag_id: str) -> DAG | None:
        return self.bag().dags.get(dag_id)

    def require(self, dag_id: str) -> DAG:
        """The DAG, or ``DagNotFoundError`` naming the known ones."""
        return self.bag().get_dag(dag_id)


@dataclass
class WebContext:
    """The web server's long-lived parts, built once by ``create_app``."""

    settings: Settings
    engine: Engine
    passwords: PasswordChecker
    sessions: SessionCodec
    limiter: LoginLimiter = field(default_factory=LoginLimiter)
    catalog: DagCatalog | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> WebContext:
        engine = Engine.from_settings(settings)
        key = secret_key(settings)
        return cls(settings, engine, PasswordChecker(engine.store, key.encode()),
                   SessionCodec(key), catalog=DagCatalog(settings))

    @property
    def store(self) -> MetadataStore:
        return self.engine.store

    @property
    def dags(self) -> DagCatalog:
        assert self.catalog is not None
        return self.catalog

    def dag(self, dag_id: str) -> DAG:
        """A DAG by id: from the parsed folder, or ``DagNotFoundError``."""
        return self.dags.require(dag_id)


def context(request: Request) -> WebContext:
    """The ``WebContext`` of the app serving ``request``."""
    ctx: WebContext = request.app.state.ctx
    return ctx

