"""branch skips on the task instance

The downstream task ids a branching try chose to skip were stored as a hidden XCom
(``__mlpipe_skip__``); they are part of the try's result, written with its state.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('task_instance', schema=None) as batch_op:
        batch_op.add_column(sa.Column('skip_downstream', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('task_instance', schema=None) as batch_op:
        batch_op.drop_column('skip_downstream')
