"""Throw-away SQLite stores (``dag.test()``) made from a schema image, not by migrating.

Running the Alembic migrations costs tens of milliseconds (importing and executing every
revision); ``dag.test()`` needs a fresh store per call. The first call migrates one store in
a temporary folder and keeps its bytes; every store after that is those bytes written to a
new file, which is already at the head revision.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

from mlpipe.store import database
from mlpipe.store.metadata_store import MetadataStore

_lock = threading.Lock()
_image: bytes | None = None


def schema_image() -> bytes:
    """The bytes of an empty, fully migrated SQLite store (made once per process)."""
    global _image
    with _lock:
        if _image is None:
            with tempfile.TemporaryDirectory(prefix="mlpipe-schema-") as folder:
                path = Path(folder) / "schema.db"
                engine = database.make_engine(f"sqlite:///{path}")
                try:
                    database.migrate(engine)
                finally:
                    engine.dispose()  # the last connection checkpoints and drops the WAL
                _image = path.read_bytes()
        return _image


def open_scratch_store(path: Path) -> MetadataStore:
    """A new, empty store at ``path`` (which must not exist yet), at the head revision."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "xb") as fh:
        fh.write(schema_image())
    return MetadataStore(database.make_engine(f"sqlite:///{path}"))


__all__ = ["open_scratch_store", "schema_image"]
