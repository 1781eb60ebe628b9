"""The transactional outbox: records for Kafka written with the verdict that makes them.

Revision ID: 0002_outbox
Revises: 0001_initial
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from paysentry.desk.db import BigId, UTCDateTime

revision = "0002_outbox"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "desk_outbox",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("topic", sa.String(32), nullable=False),
        sa.Column("record_id", sa.String(160), nullable=False, unique=True),
        sa.Column("message_key", sa.String(128), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("sent_at", UTCDateTime, index=True),
    )


def downgrade() -> None:
    op.drop_table("desk_outbox")
