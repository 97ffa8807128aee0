"""Artifacts and lineage: what each try produced, from what, and under which cache key."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import (
    insert,
    select,
    update,
)

from mlpipe.store.database import Database
from mlpipe.store.entities import (
    TIKey,
)
from mlpipe.store.repositories.common import (
    ARTIFACT,
    ARTIFACT_INPUT,
)
from mlpipe.store.repositories.common import (
    now as utc_now,
)


class ArtifactRepository(Database):
    """Artifacts and lineage: what each try produced, from what, and under which cache key."""

    def record_artifacts(self, key: TIKey, try_number: int, outputs: list[dict[str, Any]],
                         inputs: list[dict[str, Any]], *, cache_key: str | None = None,
                         config_hash: str | None = None, git_commit: str | None = None
                         ) -> list[int]:
        """Record what a try produced and what each output was made from; returns row ids.

        ``outputs``: dicts with uri, kind, sha256, size, extra. ``inputs``: dicts with uri
        and optionally sha256, etag, version_id, size (artifacts or source objects).
        """
        now = utc_now()
        ids: list[int] = []
        with self.writer.begin() as conn:
            for out in outputs:
                row_id = conn.execute(insert(ARTIFACT).values(
                    uri=out["uri"], kind=out.get("kind", "file"), sha256=out.get("sha256"),
                    size=out.get("size"), dag_id=key.dag_id, run_id=key.run_id,
                    task_id=key.task_id, map_index=key.map_index, try_number=try_number,
                    cache_key=cache_key, config_hash=config_hash, git_commit=git_commit,
                    extra=out.get("extra") or {}, created_at=now,
                ).returning(ARTIFACT.c.id)).scalar_one()
                ids.append(int(row_id))
                if inputs:
                    conn.execute(insert(ARTIFACT_INPUT), [
                        {"artifact_id": row_id, "uri": i["uri"], "sha256": i.get("sha256"),
                         "etag": i.get("etag"), "version_id": i.get("version_id"),
                         "size": i.get("size")} for i in inputs])
        return ids

    def artifacts_with_cache_key(self, cache_key: str) -> list[dict[str, Any]]:
        """Artifacts recorded under ``cache_key``, newest try first."""
        query = (select(ARTIFACT).where(ARTIFACT.c.cache_key == cache_key)
                 .order_by(ARTIFACT.c.id.desc()))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query).all()]

    def artifact_by_uri(self, uri: str) -> dict[str, Any] | None:
        """The newest record of ``uri`` (a trailing slash does not matter)."""
        candidates = {uri, uri.rstrip("/"), uri.rstrip("/") + "/"}
        query = (select(ARTIFACT).where(ARTIFACT.c.uri.in_(candidates))
                 .order_by(ARTIFACT.c.id.desc()).limit(1))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return dict(row._mapping) if row else None

    def run_artifacts(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every artifact the tries of one run recorded, oldest first (the run's lineage)."""
        query = (select(ARTIFACT).where(ARTIFACT.c.dag_id == dag_id, ARTIFACT.c.run_id == run_id)
                 .order_by(ARTIFACT.c.id))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query).all()]

    def artifact_inputs(self, artifact_id: int) -> list[dict[str, Any]]:
        query = (select(ARTIFACT_INPUT).where(ARTIFACT_INPUT.c.artifact_id == artifact_id)
                 .order_by(ARTIFACT_INPUT.c.id))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query).all()]

    def forget_cache(self, dag_id: str, run_id: str | None, task_ids: Iterable[str]) -> int:
        """Drop cache keys of what these tasks produced, so their next try runs for real."""
        query = update(ARTIFACT).where(ARTIFACT.c.dag_id == dag_id,
                                        ARTIFACT.c.task_id.in_(list(task_ids)))
        if run_id is not None:
            query = query.where(ARTIFACT.c.run_id == run_id)
        with self.writer.begin() as conn:
            return int(conn.execute(query.values(cache_key=None)).rowcount)
