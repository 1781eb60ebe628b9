"""Run by Alembic: migrate over the connection `upgrade_to_head` hands in."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
# Batch mode lets later revisions alter SQLite tables (which cannot ALTER most things in place).
context.configure(connection=connection, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
