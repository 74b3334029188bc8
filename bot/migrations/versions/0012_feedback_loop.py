"""feedback: "is it fixed?" asked, the reporter's answer, satisfaction, reopen count

Revision ID: 0012
Revises: 0006
Create Date: 2026-11-26 13:30:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.models

revision: str = '0012'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fixed_asked_at', bot.models.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('fixed_answer', sqlmodel.sql.sqltypes.AutoString(length=16),
                                      nullable=False, server_default=''))
        batch_op.add_column(sa.Column('satisfaction', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('reopen_count', sa.Integer(), nullable=False,
                                      server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.drop_column('reopen_count')
        batch_op.drop_column('satisfaction')
        batch_op.drop_column('fixed_answer')
        batch_op.drop_column('fixed_asked_at')
