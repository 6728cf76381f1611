"""Fixtures for the window tests: a qasync loop on pytest-qt's QApplication and a factory
that builds the real main window over a SQLite file and the OpenAI-compatible test server.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import qasync
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from tests.ui.harness import Harness


@pytest.fixture
def qloop(qapp: QApplication) -> Iterator[qasync.QEventLoop]:
    """A qasync loop on the test QApplication, marked running so tasks can start.

    Nothing calls ``run_forever``: ``qtbot.waitUntil`` processes Qt events, and with them
    the loop's callbacks.
    """
    loop = qasync.QEventLoop(qapp, already_running=True)
    asyncio.set_event_loop(loop)
    yield loop
    # Not loop.stop(): it calls QApplication.exit(), which would make every later
    # QEventLoop (qtbot.wait) return at once. Only the "running" mark is undone.
    loop._QEventLoop__is_running = False  # type: ignore[attr-defined]
    asyncio.events._set_running_loop(None)
    loop.close()
    # qasync's close() only marks its timer object stopped: Qt timers of callbacks still
    # scheduled (e.g. an HTTP client's timeouts) stay registered and would fire into that
    # object after Python has freed it, crashing a later test. Kill them now.
    timers = loop._timer  # type: ignore[attr-defined]
    for timer_id in list(timers._SimpleTimer__callbacks):  # type: ignore[attr-defined]
        timers.killTimer(timer_id)
    timers._SimpleTimer__callbacks.clear()  # type: ignore[attr-defined]
    asyncio.set_event_loop(None)


@pytest.fixture
def harness(
    qloop: qasync.QEventLoop, qtbot: QtBot, tmp_path: Path, openai_server: Any
) -> Iterator[Harness]:
    """Windows over a database in ``tmp_path``, answering from the test server."""
    built = Harness(qtbot, tmp_path, openai_server.base_url, openai_server.model)
    yield built
    built.close_all()
