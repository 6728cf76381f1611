"""A disk that fills up: nothing committed is lost, and memory never claims more than is
on disk without saying so. Needs a small tmpfs (root or CAP_SYS_ADMIN); skipped, saying
why, where one cannot be mounted."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import qasync
from pytestqt.qtbot import QtBot

from chatdesk.chat import ChatEngine
from chatdesk.providers.openai_compat import OpenAICompatibleProvider
from chatdesk.sessions import SessionManager
from chatdesk.settings import sqlite_url
from chatdesk.storage import StorageError
from tests.core.conftest import stored_messages
from tests.openai_test_server import OpenAITestServer
from tests.ui.harness import Harness, run, wait_for

REPLY = " ".join(f"word{i}" for i in range(3000))


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs, unmounted after the test."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if not sys.platform.startswith("linux") or shutil.which("mount") is None:
        pytest.skip("the disk-full tests need Linux and mount(8) to make a small tmpfs")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(
            "the disk-full tests need a small tmpfs, and mounting one failed "
            f"({done.stderr.strip() or done.returncode}); run them as root or with "
            "CAP_SYS_ADMIN to cover a full disk"
        )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Fill ``disk`` to the last byte, then free about ``leave`` bytes; the filler file."""
    filler = disk / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    block = b"\0" * 4096
    try:
        while True:
            os.write(descriptor, block)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(descriptor)
    os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


@pytest.fixture
async def full_disk_manager(small_disk: Path) -> AsyncIterator[SessionManager]:
    manager = await SessionManager.open(sqlite_url(small_disk / "chat.db"))
    yield manager
    await manager.close()


async def test_a_reply_that_fills_the_disk_says_how_much_of_it_is_saved(
    small_disk: Path, full_disk_manager: SessionManager, openai_server: OpenAITestServer
) -> None:
    manager = full_disk_manager
    db_path = small_disk / "chat.db"
    session = await manager.create_session("Filling up")
    await manager.add_message(session.id, "user", "committed before the disk filled")
    await manager.add_message(session.id, "assistant", "and this answer too")
    openai_server.reply = REPLY
    openai_server.chunk_delay = 0.002
    provider = OpenAICompatibleProvider(openai_server.base_url, None, openai_server.model)
    engine = ChatEngine(manager, provider, flush_interval=0.02, auto_title=False)
    filler = fill(small_disk, leave=96 * 1024)
    try:
        with pytest.raises(StorageError, match=r"disk holding .* is full"):
            async for _ in engine.send(session.id, "Tell me everything"):
                pass
    finally:
        await engine.close()
        await provider.close()

    reply = (await manager.require_session(session.id)).history[-1]
    filler.unlink()  # room again, so the file can be read back
    on_disk = stored_messages(db_path, session.id)
    assert on_disk[:2] == [
        ("user", "committed before the disk filled", "complete", None),
        ("assistant", "and this answer too", "complete", None),
    ]
    stored_text = on_disk[-1][1]
    assert len(stored_text) < len(REPLY), "the disk was meant to fill mid-reply"
    assert REPLY.startswith(stored_text)
    # Memory keeps the whole text, but as an error saying how much of it is saved.
    assert (reply.content, reply.status) == (REPLY, "error")
    assert f"Only the first {len(stored_text)} of {len(REPLY)} characters" in reply.error
    print(f"disk full: {len(stored_text)} of {len(REPLY)} characters were saved")


async def test_a_message_sent_to_a_full_disk_is_refused_and_nothing_is_lost(
    small_disk: Path, full_disk_manager: SessionManager, openai_server: OpenAITestServer
) -> None:
    manager = full_disk_manager
    session = await manager.create_session("Already full")
    await manager.add_message(session.id, "user", "kept")
    provider = OpenAICompatibleProvider(openai_server.base_url, None, openai_server.model)
    engine = ChatEngine(manager, provider, auto_title=False)
    filler = fill(small_disk, leave=0)
    try:
        with pytest.raises(StorageError, match="is full"):
            async for _ in engine.send(session.id, "x" * 200_000):
                pass
    finally:
        await engine.close()
        await provider.close()
    assert [m.content for m in (await manager.require_session(session.id)).history] == ["kept"]
    assert openai_server.requests == [], "nothing is sent that could not be stored"
    filler.unlink()
    assert [row[1] for row in stored_messages(small_disk / "chat.db", session.id)] == ["kept"]


def test_a_message_the_full_disk_refused_goes_back_to_the_composer(
    small_disk: Path, qloop: qasync.QEventLoop, qtbot: QtBot, openai_server: OpenAITestServer
) -> None:
    harness = Harness(qtbot, small_disk, openai_server.base_url, openai_server.model)
    try:
        window = harness.window()
        session_id = window.current_session_id
        assert session_id is not None
        run(qtbot, window.manager.add_message(session_id, "user", "kept"))
        filler = fill(small_disk, leave=0)
        typed = "a long thought I do not want to type again " * 2000
        task = window.send_text(typed)
        assert task is not None
        wait_for(qtbot, task.done)

        assert window.composer.edit.toPlainText() == typed.strip()
        assert "is full" in (window.error_text(session_id) or "")
        assert openai_server.requests == []
        filler.unlink()
    finally:
        harness.close_all()
