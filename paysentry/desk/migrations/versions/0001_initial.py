"""The desk's first schema: users, sessions, API tokens, decisions, cases, comments, approvals, audit.

Revision ID: 0001_initial
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from paysentry.desk.db import BigId, UTCDateTime

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

_PG_AUDIT_GUARD = """
CREATE FUNCTION desk_audit_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'desk_audit is append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql
"""


def _id() -> sa.Column[int]:
    return sa.Column("id", BigId, primary_key=True, autoincrement=True)


def upgrade() -> None:
    op.create_table(
        "desk_users",
        _id(),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("password_expired", sa.Boolean, nullable=False),
        sa.Column("totp_secret", sa.String(64)),
        sa.Column("totp_last_step", sa.BigInteger),
        sa.Column("erp_user_id", sa.String(64)),
        sa.Column("failed_logins", sa.Integer, nullable=False),
        sa.Column("locked_until", UTCDateTime),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "desk_web_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", BigId, sa.ForeignKey("desk_users.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("client", sa.String(64)),
    )
    op.create_table(
        "desk_api_tokens",
        _id(),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("scopes", sa.String(256), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("revoked", sa.Boolean, nullable=False),
    )
    op.create_table(
        "desk_decisions",
        _id(),
        sa.Column("event_id", sa.String(160), nullable=False, unique=True),
        sa.Column("payment_id", sa.String(128), nullable=False, index=True),
        sa.Column("vendor_id", sa.String(64), index=True),
        sa.Column("company_code", sa.String(32)),
        sa.Column("event_type", sa.String(32)),
        sa.Column("event_time", UTCDateTime, nullable=False, index=True),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("severity", sa.String(8)),
        sa.Column("risk_score", sa.Float, nullable=False),
        sa.Column("model_score", sa.Float),
        sa.Column("record", sa.JSON, nullable=False),
        sa.Column("imported_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "desk_cases",
        _id(),
        sa.Column("payment_id", sa.String(128), nullable=False, unique=True),
        sa.Column("company_code", sa.String(32), index=True),
        sa.Column("vendor_id", sa.String(64), index=True),
        sa.Column("vendor_name", sa.String(256)),
        sa.Column("amount", sa.Numeric(20, 4)),
        sa.Column("currency", sa.String(3)),
        sa.Column("payee_account_masked", sa.String(16)),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("severity", sa.String(8), index=True),
        sa.Column("risk_score", sa.Float, nullable=False),
        sa.Column("rule_ids", sa.String(1024), nullable=False),
        sa.Column("erp_users", sa.JSON, nullable=False),
        sa.Column("state", sa.String(12), nullable=False, index=True),
        sa.Column("verdict", sa.String(8)),
        sa.Column("typology", sa.String(64)),
        sa.Column("assignee_id", BigId, sa.ForeignKey("desk_users.id")),
        sa.Column("opened_at", UTCDateTime, nullable=False, index=True),
        sa.Column("due_at", UTCDateTime),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("resolved_at", UTCDateTime),
        sa.Column("resolved_by", sa.String(64)),
        sa.Column("resolution_reason", sa.Text),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("round", sa.Integer, nullable=False),
    )
    op.create_table(
        "desk_comments",
        _id(),
        sa.Column("case_id", BigId, sa.ForeignKey("desk_cases.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "desk_approvals",
        _id(),
        sa.Column("case_id", BigId, sa.ForeignKey("desk_cases.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("round", sa.Integer, nullable=False),
        sa.Column("user_name", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "desk_audit",
        _id(),
        sa.Column("at", UTCDateTime, nullable=False, index=True),
        sa.Column("actor", sa.String(80), nullable=False),
        sa.Column("action", sa.String(40), nullable=False, index=True),
        sa.Column("target", sa.String(160)),
        sa.Column("client", sa.String(64)),
        sa.Column("before", sa.JSON),
        sa.Column("after", sa.JSON),
    )
    # The audit log refuses to be rewritten, whoever connects: not only the app has no path for it.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_AUDIT_GUARD)
        op.execute(
            "CREATE TRIGGER desk_audit_append_only BEFORE UPDATE OR DELETE ON desk_audit "
            "FOR EACH ROW EXECUTE FUNCTION desk_audit_refuse_change()"
        )
        op.execute(
            "CREATE TRIGGER desk_audit_no_truncate BEFORE TRUNCATE ON desk_audit "
            "FOR EACH STATEMENT EXECUTE FUNCTION desk_audit_refuse_change()"
        )
    elif op.get_bind().dialect.name == "sqlite":
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER desk_audit_no_{operation.lower()} BEFORE {operation} ON desk_audit "
                f"BEGIN SELECT RAISE(ABORT, 'desk_audit is append-only: {operation} refused'); END"
            )


def downgrade() -> None:
    for table in (
        "desk_audit",
        "desk_approvals",
        "desk_comments",
        "desk_cases",
        "desk_decisions",
        "desk_api_tokens",
        "desk_web_sessions",
        "desk_users",
    ):
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS desk_audit_refuse_change()")
