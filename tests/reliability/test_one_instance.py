"""One process per data folder: a second one is refused (or hands over to the window),
and the lock never outlives the process that held it."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import qasync
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from chatdesk.app import bring_forward
from chatdesk.instance import (
    DataFolderInUseError,
    InstanceLock,
    ask_to_activate,
    hold_data_folder,
    read_holder,
)
from chatdesk.sessions import SessionManager
from chatdesk.settings import sqlite_url
from tests.e2e.api_process import ServeProcess
from tests.openai_test_server import OpenAITestServer
from tests.reliability.processes import child_env, kill, read_line, start
from tests.ui.harness import run

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")


def test_a_second_lock_on_the_same_folder_is_refused_until_released(tmp_path: Path) -> None:
    first = InstanceLock(tmp_path)
    first.acquire()
    try:
        with (
            pytest.raises(DataFolderInUseError, match="in use by another ChatDesk") as refused,
            hold_data_folder(tmp_path, "import chats"),
        ):
            pass
        assert "Close it before you import chats" in str(refused.value)
    finally:
        first.release()
    with hold_data_folder(tmp_path, "export"):
        assert read_holder(tmp_path)["pid"] > 0


def test_a_sigkilled_holder_never_blocks_the_next_process(tmp_path: Path) -> None:
    for _ in range(3):
        holder = start("-m", "tests.reliability.lock_holder", str(tmp_path))
        try:
            assert read_line(holder, 30) == "locked\n"
            with pytest.raises(DataFolderInUseError, match=f"process {holder.pid}") as refused:
                InstanceLock(tmp_path).acquire("serve")
            assert refused.value.pid == holder.pid
        finally:
            kill(holder)
        # At once: the operating system dropped the lock with the process.
        with hold_data_folder(tmp_path, "serve"):
            pass


def wait_for_socket(data_dir: Path, child: subprocess.Popen[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while read_holder(data_dir).get("pid") != child.pid or "socket" not in read_holder(data_dir):
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            _, stderr = child.communicate(timeout=10)
            raise AssertionError(f"the first window never listened; stderr:\n{stderr}")
        time.sleep(0.1)


def test_a_second_window_launch_brings_the_first_forward_and_exits(
    tmp_path: Path, openai_server: OpenAITestServer
) -> None:
    data_dir = tmp_path / "data"
    args = ["-m", "chatdesk", "--data-dir", str(data_dir), "--base-url", openai_server.base_url]
    first = start(*args)
    try:
        wait_for_socket(data_dir, first, 60)
        began = time.monotonic()
        second = subprocess.run(
            [sys.executable, *args], capture_output=True, text=True, timeout=60, env=child_env()
        )
        handed_over_in = time.monotonic() - began
        assert second.returncode == 0, second.stderr
        assert "its window was brought forward" in second.stdout
        assert first.poll() is None, "the first window must keep running"
        # Only the first process ever opened the database: no second writer.
        assert read_holder(data_dir)["pid"] == first.pid
    finally:
        kill(first)
    print(f"hand-over took {handed_over_in:.2f} s")

    # The killed window leaves its lock file and socket behind; neither blocks a new start.
    third = start(*args)
    try:
        wait_for_socket(data_dir, third, 60)
        assert read_holder(data_dir)["pid"] == third.pid
        assert ask_to_activate(data_dir, timeout=10)
    finally:
        kill(third)


async def test_opening_the_database_of_a_folder_another_process_holds_is_refused(
    tmp_path: Path,
) -> None:
    holder = start("-m", "tests.reliability.lock_holder", str(tmp_path))
    try:
        assert read_line(holder, 30) == "locked\n"
        with pytest.raises(DataFolderInUseError, match=f"process {holder.pid}"):
            await SessionManager.open(sqlite_url(tmp_path / "chat.db"))
        assert not (tmp_path / "chat.db").exists(), "nothing may be written beside it"
    finally:
        kill(holder)
    # The process holding the folder itself opens it normally.
    with hold_data_folder(tmp_path, "open"):
        manager = await SessionManager.open(sqlite_url(tmp_path / "chat.db"))
        await manager.close()


def test_an_activation_request_brings_a_minimised_window_forward(
    qloop: qasync.QEventLoop, qtbot: QtBot, tmp_path: Path
) -> None:
    window = QWidget()
    qtbot.addWidget(window)
    window.showMinimized()
    assert window.isMinimized()
    lock = InstanceLock(tmp_path)
    lock.acquire()
    try:
        run(qtbot, lock.serve_activation(lambda: bring_forward(window)))
        asked = asyncio.ensure_future(asyncio.to_thread(ask_to_activate, tmp_path, 10))
        qtbot.waitUntil(asked.done, timeout=10_000)
        assert asked.result() is True
        assert window.isVisible() and not window.isMinimized()
    finally:
        lock.release()
    assert not (tmp_path / "chatdesk.sock").exists()


def test_serve_and_a_window_refuse_each_others_folder(
    tmp_path: Path, openai_server: OpenAITestServer
) -> None:
    data_dir = tmp_path / "data"
    serving = ServeProcess("--data-dir", str(data_dir), "--base-url", openai_server.base_url)
    try:
        began = time.monotonic()
        window = subprocess.run(
            [sys.executable, "-m", "chatdesk", "--data-dir", str(data_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            env=child_env(),
        )
        assert window.returncode == 1
        assert "in use by another ChatDesk (`chatdesk serve`)" in window.stderr
        assert time.monotonic() - began < 30, "the refusal must not wait for an answer"
        second = subprocess.run(
            [sys.executable, "-m", "chatdesk", "serve", "--port", "0", "--data-dir", str(data_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            env=child_env(),
        )
        assert second.returncode == 1
        assert "chatdesk serve: The data folder" in second.stderr
        assert serving.process.poll() is None
    finally:
        serving.close()

    args = ["-m", "chatdesk", "--data-dir", str(data_dir), "--base-url", openai_server.base_url]
    first = start(*args)
    try:
        wait_for_socket(data_dir, first, 60)
        refused = subprocess.run(
            [sys.executable, "-m", "chatdesk", "serve", "--port", "0", "--data-dir", str(data_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            env=child_env(),
        )
        assert refused.returncode == 1
        assert "in use by another ChatDesk (a window)" in refused.stderr
    finally:
        kill(first)
