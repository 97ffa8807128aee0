"""an index for the newest run of each DAG

The web UI's DAG list shows each DAG's newest run; ``(dag_id, id)`` makes that one index
seek per DAG (``max(id)``) instead of a GROUP BY over every run of the DAGs shown.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_dag_run_newest', 'dag_run', ['dag_id', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_dag_run_newest', table_name='dag_run')
