"""send lease: one sender per platform token; a handed-off reply may edit a message

Revision ID: 0007
Revises: 0006
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.models

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'send_lease',
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('holder', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('expires_at', bot.models.UTCDateTime(), nullable=False),
        sa.Column('acquired_at', bot.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )
    with op.batch_alter_table('delivery') as batch:
        batch.add_column(sa.Column('edit_of', sqlmodel.sql.sqltypes.AutoString(length=40),
                                   nullable=False, server_default=''))
        batch.create_index('ix_delivery_claim', ['platform', 'state', 'priority', 'id'])


def downgrade() -> None:
    with op.batch_alter_table('delivery') as batch:
        batch.drop_index('ix_delivery_claim')
        batch.drop_column('edit_of')
    op.drop_table('send_lease')
