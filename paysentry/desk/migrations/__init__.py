"""Alembic migrations of the desk's schema, configured in code (no alembic.ini to ship or find).

`upgrade_to_head(engine)` brings any database to the newest revision; the web app and the CLI call it
on start. A new revision: `alembic_config(engine)` with `alembic.command.revision(...)`.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

SCRIPT_LOCATION = Path(__file__).parent


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("path_separator", "os")
    return config


def upgrade_to_head(engine: Engine) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
