"""closing the loops: "is it fixed?" on feedback; personal reminders, mutes, visit
requests; the knowledge contest

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


    op.create_table(
        'personal_reminder',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('household_id', sa.Integer(), nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('group_id', sa.Integer(), nullable=False),
        sa.Column('step_key', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column('due_at', bot.models.UTCDateTime(), nullable=False),
        sa.Column('created_at', bot.models.UTCDateTime(), nullable=False),
        sa.Column('sent_at', bot.models.UTCDateTime(), nullable=True),
        sa.Column('done_at', bot.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], ),
        sa.ForeignKeyConstraint(['group_id'], ['residential_group.id'], ),
        sa.ForeignKeyConstraint(['household_id'], ['household.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('personal_reminder', schema=None) as batch_op:
        batch_op.create_index('ix_personal_reminder_due', ['state', 'due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_personal_reminder_campaign_id'), ['campaign_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_personal_reminder_household_id'), ['household_id'],
                              unique=False)
    op.create_table(
        'reminder_mute',
        sa.Column('member_id', sa.Integer(), nullable=False),
        sa.Column('ward_id', sa.Integer(), nullable=False),
        sa.Column('muted_at', bot.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['member_id'], ['member.id'], ),
        sa.ForeignKeyConstraint(['ward_id'], ['ward.id'], ),
        sa.PrimaryKeyConstraint('member_id', 'ward_id'),
    )
    op.create_table(
        'visit_request',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('household_id', sa.Integer(), nullable=False),
        sa.Column('group_id', sa.Integer(), nullable=False),
        sa.Column('step_key', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('requested_by', sa.Integer(), nullable=True),
        sa.Column('requested_at', bot.models.UTCDateTime(), nullable=False),
        sa.Column('done_at', bot.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['group_id'], ['residential_group.id'], ),
        sa.ForeignKeyConstraint(['household_id'], ['household.id'], ),
        sa.ForeignKeyConstraint(['requested_by'], ['member.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('visit_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_visit_request_group_id'), ['group_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_visit_request_household_id'), ['household_id'],
                              unique=False)

    op.create_table(
        'contest',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('ward_id', sa.Integer(), nullable=False),
        sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('questions', sa.JSON(), nullable=False),
        sa.Column('per_player', sa.Integer(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('starts_at', bot.models.UTCDateTime(), nullable=False),
        sa.Column('ends_at', bot.models.UTCDateTime(), nullable=False),
        sa.Column('group_ids', sa.JSON(), nullable=False),
        sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column('announced', sa.Boolean(), nullable=False),
        sa.Column('mid_posted', sa.Boolean(), nullable=False),
        sa.Column('final_posted', sa.Boolean(), nullable=False),
        sa.Column('created_by', sa.Integer(), nullable=True),
        sa.Column('created_at', bot.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['created_by'], ['member.id'], ),
        sa.ForeignKeyConstraint(['ward_id'], ['ward.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('contest', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contest_ward_id'), ['ward_id'], unique=False)
    op.create_table(
        'contest_play',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('contest_id', sa.Integer(), nullable=False),
        sa.Column('member_id', sa.Integer(), nullable=False),
        sa.Column('group_id', sa.Integer(), nullable=True),
        sa.Column('household_id', sa.Integer(), nullable=True),
        sa.Column('attempt', sa.Integer(), nullable=False),
        sa.Column('drawn', sa.JSON(), nullable=False),
        sa.Column('answers', sa.JSON(), nullable=False),
        sa.Column('score', sa.Integer(), nullable=False),
        sa.Column('started_at', bot.models.UTCDateTime(), nullable=False),
        sa.Column('finished_at', bot.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['contest_id'], ['contest.id'], ),
        sa.ForeignKeyConstraint(['group_id'], ['residential_group.id'], ),
        sa.ForeignKeyConstraint(['household_id'], ['household.id'], ),
        sa.ForeignKeyConstraint(['member_id'], ['member.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('contest_play', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contest_play_contest_id'), ['contest_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_contest_play_member_id'), ['member_id'],
                              unique=False)


def downgrade() -> None:
    op.drop_table('contest_play')
    op.drop_table('contest')
    op.drop_table('visit_request')
    op.drop_table('reminder_mute')
    op.drop_table('personal_reminder')
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.drop_column('reopen_count')
        batch_op.drop_column('satisfaction')
        batch_op.drop_column('fixed_answer')
        batch_op.drop_column('fixed_asked_at')
