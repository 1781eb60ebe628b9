"""Room for sealed TOTP secrets (`fernet:` and a token, paysentry/desk/totp_vault.py).

Revision ID: 0003_sealed_totp
Revises: 0002_outbox
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_sealed_totp"
down_revision = "0002_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":  # SQLite does not enforce a VARCHAR's length
        op.alter_column("desk_users", "totp_secret", type_=sa.String(255), existing_type=sa.String(64))


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("desk_users", "totp_secret", type_=sa.String(64), existing_type=sa.String(255))
