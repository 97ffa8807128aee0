"""one partial index on active task instances

The three indexes on task_instance.state ((state), (dag_id, state), (pool, state)) were
each rewritten on every state change: six index writes per change, three changes per task.
Every query they served is about active instances (queued or running): the queueing gates
count a DAG's and a pool's, the reaper looks for running ones. One index on (dag_id, pool)
holding only active rows serves them all and is touched only when an instance enters or
leaves the active states.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

ACTIVE = "state IN ('queued', 'running')"


def upgrade() -> None:
    op.drop_index('ix_task_instance_pool_state', table_name='task_instance')
    op.drop_index('ix_task_instance_dag_state', table_name='task_instance')
    op.drop_index('ix_task_instance_state', table_name='task_instance')
    op.create_index('ix_task_instance_active', 'task_instance', ['dag_id', 'pool'],
                    unique=False, sqlite_where=sa.text(ACTIVE), postgresql_where=sa.text(ACTIVE))


def downgrade() -> None:
    op.drop_index('ix_task_instance_active', table_name='task_instance')
    op.create_index('ix_task_instance_state', 'task_instance', ['state'], unique=False)
    op.create_index('ix_task_instance_dag_state', 'task_instance', ['dag_id', 'state'],
                    unique=False)
    op.create_index('ix_task_instance_pool_state', 'task_instance', ['pool', 'state'],
                    unique=False)
