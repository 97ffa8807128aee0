"""users and API tokens of the web server

Users of the web UI and REST API (a role and an argon2 password hash) and their API
tokens (stored as SHA-256 digests), plus an index that serves the run listings of the UI.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mlpipe.store.rows import UTCDateTime

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'web_user',
        sa.Column('name', sa.String(length=250), nullable=False),
        sa.Column('role', sa.String(length=20), nullable=False),
        sa.Column('password_hash', sa.Text(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_web_user')),
    )
    op.create_table(
        'api_token',
        sa.Column('token_sha256', sa.String(length=64), nullable=False),
        sa.Column('user_name', sa.String(length=250), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['user_name'], ['web_user.name'],
                                name=op.f('fk_api_token_user_name_web_user'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('token_sha256', name=op.f('pk_api_token')),
    )
    op.create_index('ix_api_token_user', 'api_token', ['user_name'], unique=False)
    op.create_index('ix_dag_run_type_date', 'dag_run', ['dag_id', 'run_type', 'logical_date'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_dag_run_type_date', table_name='dag_run')
    op.drop_index('ix_api_token_user', table_name='api_token')
    op.drop_table('api_token')
    op.drop_table('web_user')
