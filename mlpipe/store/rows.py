"""SQLAlchemy rows of the metadata database. Only ``mlpipe.store`` sees these classes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID = String(250)


class UTCDateTime(TypeDecorator[datetime]):
    """Stored in UTC, always read back as an aware UTC datetime (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class DagRow(Base):
    __tablename__ = "dag"

    dag_id: Mapped[str] = mapped_column(ID, primary_key=True)
    is_paused: Mapped[bool] = mapped_column(Boolean, default=False)
    fileloc: Mapped[str | None] = mapped_column(Text)
    last_parsed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # what `mlpipe dags list` shows without parsing, recorded with the file's stamp
    schedule: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[str | None] = mapped_column(Text)  # a JSON list
    task_count: Mapped[int | None] = mapped_column(Integer)
    owners: Mapped[str | None] = mapped_column(Text)  # comma-separated
    file_mtime_ns: Mapped[int | None] = mapped_column(BigInteger)
    file_size: Mapped[int | None] = mapped_column(BigInteger)


class DagFileRow(Base):
    """Each file of the DAGs folder at its last recorded parse (mtime and size)."""

    __tablename__ = "dag_file"

    fileloc: Mapped[str] = mapped_column(String(1000), primary_key=True)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    size: Mapped[int] = mapped_column(BigInteger)


class ImportErrorRow(Base):
    __tablename__ = "import_error"

    filename: Mapped[str] = mapped_column(String(1000), primary_key=True)
    error: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DagRunRow(Base):
    __tablename__ = "dag_run"
    __table_args__ = (
        UniqueConstraint("dag_id", "run_id", name="uq_dag_run_dag_id_run_id"),
        Index("ix_dag_run_state", "dag_id", "state"),
        # the newest automated run of each DAG (its next run, in the DAG list) by seeks
        Index("ix_dag_run_type_date", "dag_id", "run_type", "logical_date"),
        # the newest run of each DAG (the DAG list's last run) by one seek each
        Index("ix_dag_run_newest", "dag_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dag_id: Mapped[str] = mapped_column(ID)
    run_id: Mapped[str] = mapped_column(ID)
    run_type: Mapped[str] = mapped_column(String(20))
    logical_date: Mapped[datetime] = mapped_column(UTCDateTime())
    data_interval_start: Mapped[datetime] = mapped_column(UTCDateTime())
    data_interval_end: Mapped[datetime] = mapped_column(UTCDateTime())
    conf: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: the scheduler driving this run, until ``lease_until`` (HA: one driver per run)
    claimed_by: Mapped[str | None] = mapped_column(String(250))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: the MLflow parent run of this DAG run, once a task logged to MLflow
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))
    start_date: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_date: Mapped[datetime | None] = mapped_column(UTCDateTime())


#: the condition of the partial index on active task instances, as queries must write it
ACTIVE_STATES_SQL = "state IN ('queued', 'running')"


class TaskInstanceRow(Base):
    __tablename__ = "task_instance"
    __table_args__ = (
        ForeignKeyConstraint(["dag_id", "run_id"], ["dag_run.dag_id", "dag_run.run_id"],
                             ondelete="CASCADE"),
        # Active instances only (migration 0006): the queueing gates count a DAG's and a
        # pool's, the reaper looks for running ones. A state change outside the active
        # states touches no index; queries must say ACTIVE_STATES_SQL literally to use it.
        Index("ix_task_instance_active", "dag_id", "pool",
              sqlite_where=text(ACTIVE_STATES_SQL), postgresql_where=text(ACTIVE_STATES_SQL)),
    )

    dag_id: Mapped[str] = mapped_column(ID, primary_key=True)
    run_id: Mapped[str] = mapped_column(ID, primary_key=True)
    task_id: Mapped[str] = mapped_column(ID, primary_key=True)
    map_index: Mapped[int] = mapped_column(Integer, primary_key=True, default=-1)
    state: Mapped[str] = mapped_column(String(20), default="none")
    try_number: Mapped[int] = mapped_column(Integer, default=0)
    max_tries: Mapped[int] = mapped_column(Integer, default=0)
    operator: Mapped[str] = mapped_column(String(100), default="")
    hostname: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None] = mapped_column(Integer)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    start_date: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_date: Mapped[datetime | None] = mapped_column(UTCDateTime())
    duration: Mapped[float | None] = mapped_column(Float)
    next_retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    log_path: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    pool: Mapped[str | None] = mapped_column(String(250))
    #: JSON list of downstream task ids a branching try chose to skip (migration 0007)
    skip_downstream: Mapped[str | None] = mapped_column(Text)
    #: when a sensor in ``up_for_reschedule`` pokes next (migration 0009)
    reschedule_date: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SlaMissRow(Base):
    """A missed deadline, recorded once: a task's ``sla`` or the DAG's ``deadline``
    (``task_id`` is ``""`` for the run's own deadline, so the key stays unique)."""

    __tablename__ = "sla_misses"
    __table_args__ = (
        ForeignKeyConstraint(["dag_id", "run_id"], ["dag_run.dag_id", "dag_run.run_id"],
                             ondelete="CASCADE"),
    )

    dag_id: Mapped[str] = mapped_column(ID, primary_key=True)
    run_id: Mapped[str] = mapped_column(ID, primary_key=True)
    task_id: Mapped[str] = mapped_column(ID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PoolRow(Base):
    __tablename__ = "pool"

    name: Mapped[str] = mapped_column(ID, primary_key=True)
    slots: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text, default="")


class XComRow(Base):
    __tablename__ = "xcom"
    __table_args__ = (
        ForeignKeyConstraint(["dag_id", "run_id"], ["dag_run.dag_id", "dag_run.run_id"],
                             ondelete="CASCADE"),
    )

    dag_id: Mapped[str] = mapped_column(ID, primary_key=True)
    run_id: Mapped[str] = mapped_column(ID, primary_key=True)
    task_id: Mapped[str] = mapped_column(ID, primary_key=True)
    map_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(512), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class StateTransitionRow(Base):
    __tablename__ = "state_transition"
    __table_args__ = (Index("ix_state_transition_ti", "dag_id", "run_id", "task_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dag_id: Mapped[str] = mapped_column(ID)
    run_id: Mapped[str] = mapped_column(ID)
    task_id: Mapped[str] = mapped_column(ID)
    map_index: Mapped[int] = mapped_column(Integer)
    try_number: Mapped[int] = mapped_column(Integer)
    from_state: Mapped[str] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class ConnectionRow(Base):
    """A connection; ``password`` and ``extra`` are Fernet tokens when the flags say so."""

    __tablename__ = "connection"

    conn_id: Mapped[str] = mapped_column(ID, primary_key=True)
    conn_type: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(500))
    schema: Mapped[str | None] = mapped_column(String(500))
    login: Mapped[str | None] = mapped_column(Text)
    password: Mapped[str | None] = mapped_column(Text)
    port: Mapped[int | None] = mapped_column(Integer)
    extra: Mapped[str | None] = mapped_column(Text)
    is_encrypted: Mapped[bool] = mapped_column(Boolean, default=False)
    is_extra_encrypted: Mapped[bool] = mapped_column(Boolean, default=False)


class VariableRow(Base):
    """A variable: a JSON value (a Fernet token when ``is_encrypted``)."""

    __tablename__ = "variable"

    key: Mapped[str] = mapped_column(ID, primary_key=True)
    val: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    is_encrypted: Mapped[bool] = mapped_column(Boolean, default=False)


class ArtifactRow(Base):
    """An artifact a task instance produced: where, what, its content hash and cache key."""

    __tablename__ = "artifact"
    __table_args__ = (
        Index("ix_artifact_uri", "uri"),
        Index("ix_artifact_cache_key", "cache_key"),
        Index("ix_artifact_producer", "dag_id", "run_id", "task_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uri: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(50))
    sha256: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None] = mapped_column(Integer)
    dag_id: Mapped[str | None] = mapped_column(ID)
    run_id: Mapped[str | None] = mapped_column(ID)
    task_id: Mapped[str | None] = mapped_column(ID)
    map_index: Mapped[int] = mapped_column(Integer, default=-1)
    try_number: Mapped[int] = mapped_column(Integer, default=0)
    cache_key: Mapped[str | None] = mapped_column(String(64))
    config_hash: Mapped[str | None] = mapped_column(String(64))
    git_commit: Mapped[str | None] = mapped_column(String(64))
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ArtifactInputRow(Base):
    """A lineage edge: an artifact was made from this input (an artifact or an S3 object)."""

    __tablename__ = "artifact_input"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    artifact_id: Mapped[int] = mapped_column(Integer, index=True)
    uri: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(String(64))
    etag: Mapped[str | None] = mapped_column(String(200))
    version_id: Mapped[str | None] = mapped_column(String(200))
    size: Mapped[int | None] = mapped_column(Integer)


class UserRow(Base):
    """A user of the web UI and REST API: a role and an argon2 hash, never a password."""

    __tablename__ = "web_user"

    name: Mapped[str] = mapped_column(ID, primary_key=True)
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ApiTokenRow(Base):
    """An API token of a user, stored as its SHA-256 (a token is 256 random bits)."""

    __tablename__ = "api_token"
    __table_args__ = (
        ForeignKeyConstraint(["user_name"], ["web_user.name"], ondelete="CASCADE"),
        Index("ix_api_token_user", "user_name"),
    )

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_name: Mapped[str] = mapped_column(ID)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DatasetRow(Base):
    """A dataset (``Dataset(uri)``) some DAG produces or consumes (migration 0011)."""

    __tablename__ = "dataset"
    __table_args__ = (UniqueConstraint("uri", name="uq_dataset_uri"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uri: Mapped[str] = mapped_column(String(1500))
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: when the listing stored in ``dataset_object`` began (``s3://`` only; None: never)
    listed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class DatasetEventRow(Base):
    """One update of a dataset: a producing task succeeded, or its S3 prefix changed."""

    __tablename__ = "dataset_event"
    __table_args__ = (
        ForeignKeyConstraint(["dataset_id"], ["dataset.id"], ondelete="CASCADE"),
        Index("ix_dataset_event_dataset", "dataset_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[int] = mapped_column(Integer)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source_dag_id: Mapped[str | None] = mapped_column(ID)
    source_task_id: Mapped[str | None] = mapped_column(ID)
    source_run_id: Mapped[str | None] = mapped_column(ID)
    source_map_index: Mapped[int] = mapped_column(Integer, default=-1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DatasetReferenceRow(Base):
    """A DAG consumes a dataset (``task_id`` empty) or one of its tasks produces it."""

    __tablename__ = "dataset_reference"
    __table_args__ = (
        ForeignKeyConstraint(["dataset_id"], ["dataset.id"], ondelete="CASCADE"),
        Index("ix_dataset_reference_dataset", "dataset_id"),
    )

    dag_id: Mapped[str] = mapped_column(ID, primary_key=True)
    task_id: Mapped[str] = mapped_column(ID, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(Integer, primary_key=True)


class DatasetWatermarkRow(Base):
    """The newest dataset event a dataset-scheduled DAG has consumed (locked while a
    scheduler decides whether to create its next run)."""

    __tablename__ = "dataset_watermark"

    dag_id: Mapped[str] = mapped_column(ID, primary_key=True)
    last_event_id: Mapped[int] = mapped_column(Integer, default=0)


class DatasetObjectRow(Base):
    """One object of an ``s3://`` dataset's last applied listing (key -> ETag, size)."""

    __tablename__ = "dataset_object"
    __table_args__ = (
        ForeignKeyConstraint(["dataset_id"], ["dataset.id"], ondelete="CASCADE"),
    )

    dataset_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(1024), primary_key=True)
    etag: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(BigInteger)
