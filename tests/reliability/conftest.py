"""Fixtures of the reliability suite: the core's real database and engine fixtures."""

from __future__ import annotations

from tests.core.conftest import db_path, db_url, engine, manager, provider

__all__ = ["db_path", "db_url", "engine", "manager", "provider"]
