"""sla misses, and when a rescheduled sensor pokes next

``sla_misses`` records each missed task ``sla`` and DAG ``deadline`` once (the key makes a
second insert a no-op, so schedulers never notify twice). ``task_instance.reschedule_date``
is when a sensor waiting in ``up_for_reschedule`` is due again.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mlpipe.store.rows import UTCDateTime

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'sla_misses',
        sa.Column('dag_id', sa.String(length=250), nullable=False),
        sa.Column('run_id', sa.String(length=250), nullable=False),
        sa.Column('task_id', sa.String(length=250), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('deadline_at', UTCDateTime(), nullable=False),
        sa.Column('recorded_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['dag_id', 'run_id'], ['dag_run.dag_id', 'dag_run.run_id'],
                                name=op.f('fk_sla_misses_dag_id_dag_run'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('dag_id', 'run_id', 'task_id', 'kind',
                                name=op.f('pk_sla_misses')),
    )
    with op.batch_alter_table('task_instance', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reschedule_date', UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('task_instance', schema=None) as batch_op:
        batch_op.drop_column('reschedule_date')
    op.drop_table('sla_misses')
