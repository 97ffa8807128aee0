"""what ``mlpipe dags list`` shows, recorded at parse time

Each DAG row gets its schedule text, tags, task count, owners and the stamp (mtime, size) of
its file when parsed; ``dag_file`` holds every file of the folder at the last recorded
parse. ``mlpipe dags list`` answers from these rows while no file changed, without importing
the engine or parsing DAG files.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

_COLUMNS = (("schedule", sa.Text()), ("tags", sa.Text()), ("task_count", sa.Integer()),
            ("owners", sa.Text()), ("file_mtime_ns", sa.BigInteger()),
            ("file_size", sa.BigInteger()))


def upgrade() -> None:
    with op.batch_alter_table('dag') as batch:
        for name, type_ in _COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
    op.create_table(
        'dag_file',
        sa.Column('fileloc', sa.String(length=1000), nullable=False),
        sa.Column('mtime_ns', sa.BigInteger(), nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('fileloc'),
    )


def downgrade() -> None:
    op.drop_table('dag_file')
    with op.batch_alter_table('dag') as batch:
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
