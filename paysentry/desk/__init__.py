"""The review desk: where people resolve the payments the engine stopped.

- `db.py`, `migrations/`: the tables (SQLAlchemy 2) and their Alembic migrations, applied on start.
- `importer.py`: `import_decision`, idempotent by decision event id; `cases.py`: the case state
  machine; `queries.py`: the queue's filters, a vendor's history, the ERP's question.
- `approvals.py`: per-company approval policies (`config/approvals.yaml`) and separation of duties.
- `security.py`: users, roles, passwords, TOTP, lockout, sessions, API tokens; `audit.py`: the
  append-only audit log; `labels.py`: `label.confirmed` events and `case.resolved` records.
- `app.py`, `web.py`, `api.py`: the ASGI app (pages and /api/v1); `cli.py`: the commands.
"""
