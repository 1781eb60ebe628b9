"""Fixtures of the desk's tests: the same tests run against SQLite and a real PostgreSQL server
(`database_url` is parametrised), and pages and API are exercised over HTTP against a real uvicorn."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from paysentry.desk.app import create_app
from paysentry.desk.approvals import ApprovalConfig, load_approvals
from paysentry.desk.db import open_database
from paysentry.desk.settings import DeskSettings
from tests.desk.support import LiveServer

REPO = Path(__file__).resolve().parents[2]
APPROVALS = REPO / "config" / "approvals.yaml"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/desk.db"
    return str(request.getfixturevalue("postgres_database_url"))


@pytest.fixture
def approvals_path(tmp_path: Path) -> Path:
    path = tmp_path / "approvals.yaml"
    shutil.copy(APPROVALS, path)
    return path


@pytest.fixture
def approvals(approvals_path: Path) -> ApprovalConfig:
    return load_approvals(approvals_path)


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine, factory = open_database(database_url)
    yield factory
    engine.dispose()


@pytest.fixture
def db(sessions: sessionmaker[Session]) -> Iterator[Session]:
    with sessions() as session:
        yield session


@pytest.fixture
def desk_settings(database_url: str, approvals_path: Path) -> DeskSettings:
    return DeskSettings(database_url=database_url, approvals_path=approvals_path)


@pytest.fixture
def desk_app(desk_settings: DeskSettings) -> Iterator[FastAPI]:
    app = create_app(desk_settings)
    yield app
    app.state.engine.dispose()


@pytest.fixture
def live_desk(desk_app: FastAPI) -> Iterator[LiveServer]:
    with LiveServer(desk_app) as server:
        yield server


@pytest.fixture
def http(live_desk: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_desk.url, timeout=30) as client:
        yield client
