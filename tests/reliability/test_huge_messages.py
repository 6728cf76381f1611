"""Huge messages in the window: one unbroken 1 MiB line, or a chat holding 10 MB of text,
opens without freezing it; long messages show collapsed, with "Show more"."""

from __future__ import annotations

import time

from PySide6.QtCore import QElapsedTimer, QTimer
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from chatdesk.domain import Message, Session
from chatdesk.ui.chat_view import ChatView
from chatdesk.ui.message_model import PAGE_CHARS, MessageListModel
from chatdesk.ui.message_widget import MessageWidget
from chatdesk.ui.rendering import COLLAPSED_CHARS, SHOW_MORE_CHARS

MIB = 1024 * 1024
# Before the fix: an unbroken 64 KiB line took 2.9 s to show, 1 MiB over 100 s, and a
# 10 MB chat 25 s. What is shown is bounded now, so the same work takes milliseconds;
# the bound below leaves a wide margin for a loaded machine and still fails the old code.
MAX_OPEN_SECONDS = 2.0


def open_chat(qapp: QApplication, qtbot: QtBot, messages: list[Message]) -> tuple[ChatView, float]:
    """A chat view showing ``messages``; the time it took to show them."""
    session = Session(title="Huge")
    session.history.extend(messages)
    model = MessageListModel()
    view = ChatView(model)
    qtbot.addWidget(view)
    view.resize(900, 700)
    started = time.perf_counter()
    model.set_session(session)
    view.show()
    qapp.processEvents()
    return view, time.perf_counter() - started


def longest_stall(qapp: QApplication, work: object) -> float:
    """The longest gap between ticks of a 5 ms Qt timer while ``work()`` and the events it
    queues run: how long input would have waited."""
    gaps: list[float] = []
    clock = QElapsedTimer()
    clock.start()
    last = [clock.nsecsElapsed()]

    def tick() -> None:
        now = clock.nsecsElapsed()
        gaps.append((now - last[0]) / 1e9)
        last[0] = now

    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(tick)
    timer.start()
    qapp.processEvents()
    work()  # type: ignore[operator]
    for _ in range(5):
        qapp.processEvents()
    timer.stop()
    tick()
    return max(gaps)


def test_one_unbroken_mebibyte_line_opens_collapsed_and_at_once(
    qapp: QApplication, qtbot: QtBot
) -> None:
    line = "x" * MIB
    view, took = open_chat(qapp, qtbot, [Message.create("user", line)])

    assert took < MAX_OPEN_SECONDS, f"showing a 1 MiB line took {took:.2f} s"
    qtbot.waitUntil(lambda: bool(view.message_widgets()), timeout=5000)
    widget = view.message_widgets()[0]
    more = widget.findChild(type(widget._copy), "show moreMessageButton")
    assert more is not None and more.isVisible()
    assert f"{MIB - COLLAPSED_CHARS:,} more characters" in more.text()
    # The line wraps inside the bubble instead of running off the side.
    layout = view.renderer.layout(view.model().message(0), 0, view.row_width())
    assert layout.bubble_width <= view.row_width()
    assert layout.height > 200

    # "Show more" reveals the next part, without freezing either.
    stall = longest_stall(qapp, more.click)
    assert stall < MAX_OPEN_SECONDS, f"Show more stalled the window for {stall:.2f} s"
    assert f"{MIB - COLLAPSED_CHARS - SHOW_MORE_CHARS:,} more characters" in more.text()
    print(f"1 MiB line: shown in {took * 1000:.0f} ms; Show more stalled {stall * 1000:.0f} ms")


def test_a_chat_holding_ten_megabytes_of_text_opens_without_freezing(
    qapp: QApplication, qtbot: QtBot
) -> None:
    paragraph = "All work and no play makes Jack a dull boy. " * 20
    text = (paragraph + "\n\n") * (100_000 // len(paragraph))
    messages = [Message.create("user" if i % 2 == 0 else "assistant", text) for i in range(100)]
    total = sum(len(m.content) for m in messages)
    assert total >= 9_500_000

    opened: list[ChatView] = []
    stall = longest_stall(qapp, lambda: opened.append(open_chat(qapp, qtbot, messages)[0]))

    assert stall < MAX_OPEN_SECONDS, f"opening a {total / 1e6:.0f} MB chat stalled {stall:.2f} s"
    # The first page stops at PAGE_CHARS of shown text; older messages page in on scrolling.
    model = opened[0].model()
    assert isinstance(model, MessageListModel)
    assert model.rowCount() == PAGE_CHARS // COLLAPSED_CHARS
    assert model.can_load_older()
    assert model.load_older() == PAGE_CHARS // COLLAPSED_CHARS
    print(f"{total / 1e6:.1f} MB chat: longest stall while opening {stall * 1000:.0f} ms")


def test_a_short_message_is_never_collapsed(qapp: QApplication, qtbot: QtBot) -> None:
    view, _ = open_chat(qapp, qtbot, [Message.create("assistant", "short " * 100)])
    qtbot.waitUntil(lambda: bool(view.message_widgets()), timeout=5000)
    widget: MessageWidget = view.message_widgets()[0]
    assert not widget._more.isVisible()
