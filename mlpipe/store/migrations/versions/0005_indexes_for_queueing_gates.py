"""indexes for the queueing gates

The max_active_tasks and pool gates count a DAG's (a pool's) queued and running task
instances every time an instance is queued. Without these indexes SQLite counted through
every instance of the DAG (the primary key's dag_id prefix), and a pool's count scanned the
whole table: queueing cost grew with the run's size, quadratic over a large mapped task.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('task_instance', schema=None) as batch_op:
        batch_op.create_index('ix_task_instance_dag_state', ['dag_id', 'state'], unique=False)
        batch_op.create_index('ix_task_instance_pool_state', ['pool', 'state'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('task_instance', schema=None) as batch_op:
        batch_op.drop_index('ix_task_instance_pool_state')
        batch_op.drop_index('ix_task_instance_dag_state')
