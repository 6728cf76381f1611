"""Huge messages: how long the window stalls showing them (issue #12's figures).

Usage: ``python bench/bench_huge_messages.py``. Runs offscreen unless ``DISPLAY`` is set
and ``QT_QPA_PLATFORM`` is not. Prints the time to show one unbroken 1 MiB line, each
"Show more" after it, and the longest stall while opening a chat holding 10 MB of text.

Target: no stall over 100 ms (input waits no longer than that).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QElapsedTimer, QTimer
from PySide6.QtWidgets import QApplication

from chatdesk.domain import Message, Session
from chatdesk.ui.chat_view import ChatView
from chatdesk.ui.message_model import MessageListModel

MIB = 1024 * 1024


def longest_stall(app: QApplication, work: Callable[[], object]) -> float:
    """The longest gap between ticks of a 5 ms timer while ``work`` and its events run."""
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
    app.processEvents()
    work()
    for _ in range(5):
        app.processEvents()
    timer.stop()
    tick()
    return max(gaps)


def show(app: QApplication, messages: list[Message]) -> ChatView:
    session = Session(title="Huge")
    session.history.extend(messages)
    model = MessageListModel()
    view = ChatView(model)
    view.resize(900, 700)
    model.set_session(session)
    view.show()
    app.processEvents()
    return view


def main() -> None:
    """Print the figures."""
    app = QApplication([])
    started = time.perf_counter()
    view = show(app, [Message.create("user", "x" * MIB)])
    print(f"unbroken 1 MiB line shown in {(time.perf_counter() - started) * 1000:.0f} ms")
    message_id = view.model().message(0).id
    for click in range(1, 6):
        stall = longest_stall(app, lambda: view.show_more(message_id))
        print(f"  Show more #{click}: stall {stall * 1000:.0f} ms")
    paragraph = "All work and no play makes Jack a dull boy. " * 20
    text = (paragraph + "\n\n") * (100_000 // len(paragraph))
    messages = [Message.create("user" if i % 2 else "assistant", text) for i in range(100)]
    total = sum(len(m.content) for m in messages)
    stall = longest_stall(app, lambda: show(app, messages))
    print(f"{total / 1e6:.1f} MB chat (100 messages): longest stall opening {stall * 1000:.0f} ms")


if __name__ == "__main__":
    main()
