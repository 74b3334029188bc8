"""zalo as it is: seen message ids, platform flags, OA windows and counts, relay

Revision ID: 0010
Revises: 0006
Create Date: 2026-11-26 13:20:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.models

revision: str = '0010'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = sqlmodel.sql.sqltypes.AutoString
W = bot.models.UTCDateTime


def upgrade() -> None:
    op.create_table(
        'seen_message',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('platform', S(length=16), nullable=False),
        sa.Column('message_id', S(length=96), nullable=False),
        sa.Column('seen_at', W(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('platform', 'message_id', name='uq_seen_message'),
    )
    op.create_index('ix_seen_message_seen_at', 'seen_message', ['seen_at'])
    op.create_table(
        'platform_flag',
        sa.Column('platform', S(length=16), nullable=False),
        sa.Column('key', S(length=32), nullable=False),
        sa.Column('value', sa.JSON(), nullable=False),
        sa.Column('updated_at', W(), nullable=False),
        sa.PrimaryKeyConstraint('platform', 'key'),
    )
    op.create_table(
        'oa_conversation',
        sa.Column('user_id', S(length=64), nullable=False),
        sa.Column('last_in_at', W(), nullable=False),
        sa.Column('replies', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('user_id'),
    )
    op.create_table(
        'oa_message_count',
        sa.Column('month', S(length=7), nullable=False),
        sa.Column('kind', S(length=16), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('month', 'kind'),
    )
    op.create_table(
        'group_reach',
        sa.Column('group_id', sa.Integer(), nullable=False),
        sa.Column('mode', S(length=8), nullable=False),
        sa.Column('relay_member_id', sa.Integer(), nullable=True),
        sa.Column('updated_at', W(), nullable=False),
        sa.Column('updated_by', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['group_id'], ['residential_group.id']),
        sa.ForeignKeyConstraint(['relay_member_id'], ['member.id']),
        sa.ForeignKeyConstraint(['updated_by'], ['member.id']),
        sa.PrimaryKeyConstraint('group_id'),
    )
    op.create_table(
        'relay_task',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', S(length=16), nullable=False),
        sa.Column('ref_id', sa.Integer(), nullable=False),
        sa.Column('run', S(length=40), nullable=False),
        sa.Column('ward_id', sa.Integer(), nullable=False),
        sa.Column('group_id', sa.Integer(), nullable=False),
        sa.Column('member_id', sa.Integer(), nullable=True),
        sa.Column('author_member_id', sa.Integer(), nullable=True),
        sa.Column('platform', S(length=16), nullable=False),
        sa.Column('user_id', S(length=64), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('state', S(length=12), nullable=False),
        sa.Column('error', S(length=120), nullable=False),
        sa.Column('created_at', W(), nullable=False),
        sa.Column('delivered_at', W(), nullable=True),
        sa.Column('confirmed_at', W(), nullable=True),
        sa.Column('reminded_at', W(), nullable=True),
        sa.Column('escalated_at', W(), nullable=True),
        sa.ForeignKeyConstraint(['ward_id'], ['ward.id']),
        sa.ForeignKeyConstraint(['group_id'], ['residential_group.id']),
        sa.ForeignKeyConstraint(['member_id'], ['member.id']),
        sa.ForeignKeyConstraint(['author_member_id'], ['member.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('kind', 'ref_id', 'run', 'group_id', name='uq_relay_task'),
    )
    op.create_index('ix_relay_task_ref_id', 'relay_task', ['ref_id'])
    op.create_index('ix_relay_task_ward_id', 'relay_task', ['ward_id'])
    op.create_index('ix_relay_task_state', 'relay_task', ['state'])


def downgrade() -> None:
    op.drop_table('relay_task')
    op.drop_table('group_reach')
    op.drop_table('oa_message_count')
    op.drop_table('oa_conversation')
    op.drop_table('platform_flag')
    op.drop_table('seen_message')
