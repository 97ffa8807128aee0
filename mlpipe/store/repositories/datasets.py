"""Datasets: their events, producers and consumers, the consumed-event watermark of each
dataset-scheduled DAG, and the last applied listing of each polled ``s3://`` dataset.

Two decisions are made inside one transaction each, so that two schedulers sharing a
PostgreSQL database never both act on the same change:

- ``create_dataset_triggered_run`` locks the DAG's watermark row, reads the events after
  it, creates the run and moves the watermark, together;
- ``apply_listing`` locks the dataset's row, diffs the listing against the stored one, and
  writes the new listing and at most one event, together. A listing that began before the
  one already applied is stale and dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from mlpipe.errors import RunExistsError
from mlpipe.store.database import Database
from mlpipe.store.entities import DagRunRecord, DatasetEventRecord, DatasetSummary
from mlpipe.store.repositories.common import now as utc_now
from mlpipe.store.repositories.runs import insert_run
from mlpipe.store.rows import (
    DatasetEventRow,
    DatasetObjectRow,
    DatasetReferenceRow,
    DatasetRow,
    DatasetWatermarkRow,
)

DATASET = cast(Table, DatasetRow.__table__)
EVENT = cast(Table, DatasetEventRow.__table__)
REFERENCE = cast(Table, DatasetReferenceRow.__table__)
WATERMARK = cast(Table, DatasetWatermarkRow.__table__)
OBJECT = cast(Table, DatasetObjectRow.__table__)

#: an S3 listing: key -> (ETag, size)
Listing = Mapping[str, tuple[str, int]]
#: builds the run (and its task instances) from the events that trigger it
RunMaker = Callable[[list[DatasetEventRecord]], tuple[DagRunRecord, list[tuple[Any, ...]]]]

_CHUNK = 500  # rows per IN (...) or executemany batch


@dataclass(frozen=True, slots=True)
class ListingChange:
    """What ``apply_listing`` found: keys added, changed, deleted (all of them)."""

    added: list[str]
    changed: list[str]
    deleted: list[str]
    baseline: bool = False

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.deleted)

    def event_extra(self, uri: str, max_keys: int) -> dict[str, Any]:
        """The event's ``extra``: the first ``max_keys`` keys of each kind and the counts."""
        return {
            "uri": uri,
            "keys_added": self.added[:max_keys],
            "keys_changed": self.changed[:max_keys],
            "keys_deleted": self.deleted[:max_keys],
            "counts": {"added": len(self.added), "changed": len(self.changed),
                       "deleted": len(self.deleted)},
            "truncated": max(len(self.added), len(self.changed), len(self.deleted)) > max_keys,
        }


class DatasetRepository(Database):
    """Datasets, their events and references, watermarks and S3 listings."""

    # -- datasets and references ---------------------------------------------------------

    def _ensure_datasets(self, conn: Any, datasets: Mapping[str, Mapping[str, Any]]
                         ) -> dict[str, int]:
        """``uri -> id``, inserting the datasets not stored yet (safe under concurrency)."""
        if not datasets:
            return {}
        upsert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)
        now = utc_now()
        conn.execute(upsert(DATASET).on_conflict_do_nothing(index_elements=["uri"]),
                     [{"uri": u, "extra": dict(e), "created_at": now}
                      for u, e in datasets.items()])
        ids: dict[str, int] = {}
        uris = list(datasets)
        for start in range(0, len(uris), _CHUNK):
            rows = conn.execute(select(DATASET.c.uri, DATASET.c.id).where(
                DATASET.c.uri.in_(uris[start:start + _CHUNK]))).all()
            ids.update({r.uri: r.id for r in rows})
        return ids

    def sync_dataset_references(
            self, consumers: Mapping[str, Mapping[str, Mapping[str, Any]]],
            producers: Mapping[str, Iterable[tuple[str, str, Mapping[str, Any]]]]) -> None:
        """Record which DAGs consume (``dag_id -> {uri: extra}``) and which tasks produce
        (``dag_id -> [(task_id, uri, extra)]``) datasets; the DAGs named lose their other
        references. A DAG that starts consuming begins after the newest event: events from
        before it existed do not trigger it."""
        dag_ids = set(consumers) | set(producers)
        if not dag_ids:
            return
        wanted: dict[str, Mapping[str, Any]] = {}
        for uris in consumers.values():
            wanted.update(uris)
        for items in producers.values():
            wanted.update({uri: extra for _task, uri, extra in items})
        with self.writer.begin() as conn:
            ids = self._ensure_datasets(conn, wanted)
            conn.execute(delete(REFERENCE).where(REFERENCE.c.dag_id.in_(sorted(dag_ids))))
            rows = [{"dag_id": d, "task_id": "", "dataset_id": ids[u]}
                    for d, uris in consumers.items() for u in uris]
            rows += [{"dag_id": d, "task_id": t, "dataset_id": ids[u]}
                     for d, items in producers.items() for t, u in {(t, u) for t, u, _ in items}]
            upsert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)
            if rows:  # another scheduler syncing the same DAGs at once inserts the same rows
                conn.execute(upsert(REFERENCE).on_conflict_do_nothing(), rows)
            newest = conn.execute(select(func.coalesce(func.max(EVENT.c.id), 0))).scalar_one()
            starting = [{"dag_id": d, "last_event_id": newest}
                        for d, uris in consumers.items() if uris]
            if starting:
                conn.execute(upsert(WATERMARK).on_conflict_do_nothing(
                    index_elements=["dag_id"]), starting)

    # -- events ----------------------------------------------------------------------------

    def record_dataset_events(self, uris: Mapping[str, Mapping[str, Any]], *,
                              source: tuple[str, str, str, int] | None = None,
                              extra: Mapping[str, Any] | None = None) -> None:
        """One event for each dataset in ``uris`` (``uri -> dataset extra``); ``source`` is
        the producing task instance ``(dag_id, task_id, run_id, map_index)``."""
        if not uris:
            return
        dag_id, task_id, run_id, map_index = source or (None, None, None, -1)
        with self.writer.begin() as conn:
            ids = self._ensure_datasets(conn, uris)
            now = utc_now()
            conn.execute(insert(EVENT), [
                {"dataset_id": ids[u], "extra": dict(extra or {}), "source_dag_id": dag_id,
                 "source_task_id": task_id, "source_run_id": run_id,
                 "source_map_index": map_index, "created_at": now} for u in uris])

    def newest_dataset_event_id(self) -> int:
        """The id of the newest dataset event (0: none yet): cheap, for "anything new?"."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.coalesce(func.max(EVENT.c.id), 0))
                                    ).scalar_one())

    def dataset_events(self, uri: str | None = None) -> list[DatasetEventRecord]:
        """Every event (of the dataset ``uri``), oldest first."""
        query = _EVENTS.order_by(EVENT.c.id)
        if uri is not None:
            query = query.where(DATASET.c.uri == uri)
        with self.engine.connect() as conn:
            return [_event(r) for r in conn.execute(query).all()]

    def create_dataset_triggered_run(self, dag_id: str, uris: Collection[str],
                                     is_ready: Callable[[set[str]], bool],
                                     make_run: RunMaker) -> DagRunRecord | None:
        """Create the run the events after the DAG's watermark call for, if ``is_ready``
        holds over the URIs they updated; move the watermark past them. One transaction,
        the watermark row locked: each event triggers a DAG at most once."""
        with self.writer.begin() as conn:
            upsert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)
            conn.execute(upsert(WATERMARK).on_conflict_do_nothing(index_elements=["dag_id"]),
                         [{"dag_id": dag_id, "last_event_id": 0}])
            mark = conn.execute(select(WATERMARK.c.last_event_id).where(
                WATERMARK.c.dag_id == dag_id).with_for_update()).scalar_one()
            rows = conn.execute(_EVENTS.where(DATASET.c.uri.in_(list(uris)),
                                              EVENT.c.id > mark).order_by(EVENT.c.id)).all()
            events = [_event(r) for r in rows]
            if not events or not is_ready({e.uri for e in events}):
                return None
            record, instances = make_run(events)
            try:
                insert_run(conn, record, instances)
            except IntegrityError:  # the transaction is rolled back: the events stay unused
                raise RunExistsError(record.dag_id, record.run_id) from None
            conn.execute(update(WATERMARK).where(WATERMARK.c.dag_id == dag_id).values(
                last_event_id=events[-1].id))
            return record

    # -- S3 listings ------------------------------------------------------------------------

    def apply_listing(self, uri: str, extra: Mapping[str, Any], listing: Listing, *,
                      listed_at: datetime, max_keys: int = 1000) -> ListingChange | None:
        """Diff ``listing`` (begun at ``listed_at``) against the stored one, store it, and
        record one event if anything changed. The first listing of a dataset is a baseline
        (stored, no event). None: the listing is stale (a newer one was applied)."""
        with self.writer.begin() as conn:
            dataset_id = self._ensure_datasets(conn, {uri: extra})[uri]
            before = conn.execute(select(DATASET.c.listed_at).where(
                DATASET.c.id == dataset_id).with_for_update()).scalar_one()
            if before is not None and before >= listed_at:
                return None
            stored = {r.key: (r.etag, r.size) for r in conn.execute(
                select(OBJECT.c.key, OBJECT.c.etag, OBJECT.c.size).where(
                    OBJECT.c.dataset_id == dataset_id)).all()}
            change = _diff(stored, listing, baseline=before is None)
            _write_listing(conn, dataset_id, listing, change)
            conn.execute(update(DATASET).where(DATASET.c.id == dataset_id).values(
                listed_at=listed_at))
            if change and not change.baseline:
                conn.execute(insert(EVENT).values(
                    dataset_id=dataset_id, extra=change.event_extra(uri, max_keys),
                    source_map_index=-1, created_at=utc_now()))
            return change

    def stored_listing(self, uri: str) -> dict[str, tuple[str, int]]:
        """The last applied listing of ``uri`` (empty if never listed)."""
        query = (select(OBJECT.c.key, OBJECT.c.etag, OBJECT.c.size)
                 .join(DATASET, DATASET.c.id == OBJECT.c.dataset_id)
                 .where(DATASET.c.uri == uri))
        with self.engine.connect() as conn:
            return {r.key: (r.etag, r.size) for r in conn.execute(query).all()}

    # -- listing for people -----------------------------------------------------------------

    def list_datasets(self) -> list[DatasetSummary]:
        """Every dataset with its last update, event count, producers and consumers."""
        with self.engine.connect() as conn:
            datasets = conn.execute(select(DATASET).order_by(DATASET.c.uri)).all()
            stats = {r.dataset_id: (r.last, r.n) for r in conn.execute(
                select(EVENT.c.dataset_id, func.max(EVENT.c.created_at).label("last"),
                       func.count().label("n")).group_by(EVENT.c.dataset_id)).all()}
            references = conn.execute(select(REFERENCE).order_by(
                REFERENCE.c.dag_id, REFERENCE.c.task_id)).all()
        producing: dict[int, list[str]] = {}
        consuming: dict[int, list[str]] = {}
        for ref in references:
            if ref.task_id:
                producing.setdefault(ref.dataset_id, []).append(f"{ref.dag_id}.{ref.task_id}")
            else:
                consuming.setdefault(ref.dataset_id, []).append(ref.dag_id)
        result = []
        for row in datasets:
            last, count = stats.get(row.id, (None, 0))
            if last is not None and last.tzinfo is None:  # an aggregate skips the column type
                last = _as_utc(last)
            result.append(DatasetSummary(row.uri, dict(row.extra or {}), last, int(count),
                                         producing.get(row.id, []), consuming.get(row.id, [])))
        return result

    def dataset_ids(self) -> dict[str, tuple[int, datetime]]:
        """``uri -> (id, created_at)`` of every dataset (the web API's ``Dataset.id``)."""
        with self.engine.connect() as conn:
            return {r.uri: (int(r.id), _as_utc(r.created_at)) for r in conn.execute(
                select(DATASET.c.uri, DATASET.c.id, DATASET.c.created_at)).all()}

    def page_dataset_events(self, *, limit: int, offset: int = 0, uri: str | None = None,
                            source_dag_id: str | None = None,
                            source_task_id: str | None = None,
                            source_run_id: str | None = None,
                            source_map_index: int | None = None,
                            newest_first: bool = True
                            ) -> tuple[list[DatasetEventRecord], int]:
        """One page of events matching the filters, and how many match in all."""
        conditions = [c for c in (
            DATASET.c.uri == uri if uri is not None else None,
            EVENT.c.source_dag_id == source_dag_id if source_dag_id is not None else None,
            EVENT.c.source_task_id == source_task_id if source_task_id is not None else None,
            EVENT.c.source_run_id == source_run_id if source_run_id is not None else None,
            EVENT.c.source_map_index == source_map_index
            if source_map_index is not None else None) if c is not None]
        query = _EVENTS.where(*conditions).order_by(
            EVENT.c.id.desc() if newest_first else EVENT.c.id).limit(limit).offset(offset)
        count = select(func.count()).select_from(
            EVENT.join(DATASET, DATASET.c.id == EVENT.c.dataset_id)).where(*conditions)
        with self.engine.connect() as conn:
            return ([_event(r) for r in conn.execute(query).all()],
                    int(conn.execute(count).scalar_one()))


_EVENTS = select(EVENT.c.id, DATASET.c.uri, EVENT.c.extra, EVENT.c.source_dag_id,
                 EVENT.c.source_task_id, EVENT.c.source_run_id, EVENT.c.source_map_index,
                 EVENT.c.created_at).join(DATASET, DATASET.c.id == EVENT.c.dataset_id)


def _event(row: Any) -> DatasetEventRecord:
    return DatasetEventRecord(row.id, row.uri, dict(row.extra or {}), row.source_dag_id,
                              row.source_task_id, row.source_run_id, row.source_map_index,
                              row.created_at)


def _as_utc(value: Any) -> Any:
    from datetime import UTC

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _diff(stored: Listing, listing: Listing, *, baseline: bool) -> ListingChange:
    added = sorted(k for k in listing if k not in stored)
    changed = sorted(k for k, v in listing.items() if k in stored and tuple(stored[k]) != v)
    deleted = sorted(k for k in stored if k not in listing)
    return ListingChange(added, changed, deleted, baseline=baseline)


def _write_listing(conn: Any, dataset_id: int, listing: Listing, change: ListingChange
                   ) -> None:
    """Make the stored listing equal ``listing``, touching only the keys that differ."""
    for start in range(0, len(change.deleted), _CHUNK):
        conn.execute(delete(OBJECT).where(OBJECT.c.dataset_id == dataset_id,
                                          OBJECT.c.key.in_(change.deleted[start:start + _CHUNK])))
    if change.added:
        conn.execute(insert(OBJECT), [
            {"dataset_id": dataset_id, "key": k, "etag": listing[k][0], "size": listing[k][1]}
            for k in change.added])
    if change.changed:
        conn.execute(
            update(OBJECT).where(OBJECT.c.dataset_id == dataset_id,
                                 OBJECT.c.key == bindparam("k"))
            .values(etag=bindparam("e"), size=bindparam("s")),
            [{"k": k, "e": listing[k][0], "s": listing[k][1]} for k in change.changed])
