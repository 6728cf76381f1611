"""Fixtures of the reliability suite: the core's real database and engine fixtures, and
the qasync loop of the window tests."""

from __future__ import annotations

from tests.core.conftest import db_path, db_url, engine, manager, provider
from tests.ui.conftest import qloop

__all__ = ["db_path", "db_url", "engine", "manager", "provider", "qloop"]
