"""The window in daily use: versions arrows, reply facts, narrow windows, drafts per chat,
keyboard-only use."""

from __future__ import annotations

import itertools

from PySide6.QtWidgets import QLabel, QToolButton
from pytestqt.qtbot import QtBot

from chatdesk.domain import Session, content_text
from chatdesk.ui.main_window import MainWindow
from chatdesk.ui.message_parts import MessageText
from chatdesk.ui.message_widget import MessageWidget
from tests.ui.harness import Harness, run, wait_for


def send(qtbot: QtBot, window: MainWindow, text: str) -> None:
    task = window.send_text(text)
    assert task is not None
    wait_for(qtbot, task.done)


def last_widget(window: MainWindow) -> MessageWidget:
    widgets = window.chat_view.message_widgets()
    assert widgets
    return widgets[-1]


def answer_in_versions(qtbot: QtBot, window: MainWindow, server, replies: list[str]) -> Session:
    """Ask "Question", answered by ``replies[0]``, then regenerate once per further reply."""
    server.reply = replies[0]
    send(qtbot, window, "Question")
    for reply in replies[1:]:
        server.reply = reply
        task = window.retry_current()
        assert task is not None
        wait_for(qtbot, task.done)
    session = window.chat.current
    assert session is not None
    return session


def test_regenerate_shows_arrows_that_switch_versions(
    harness: Harness, openai_server, qtbot: QtBot
) -> None:
    window = harness.window()
    session = answer_in_versions(qtbot, window, openai_server, ["First answer.", "Second answer."])
    wait_for(qtbot, lambda: last_widget(window).findChild(QLabel, "versionLabel").isVisible())
    reply = last_widget(window)
    assert reply.findChild(QLabel, "versionLabel").text() == "2/2"
    previous = reply.findChild(QToolButton, "previousVersionButton")
    wait_for(qtbot, previous.isEnabled)  # once the reply is no longer streaming
    previous.click()
    wait_for(qtbot, lambda: content_text(session.history[-1].content) == "First answer.")
    wait_for(qtbot, lambda: last_widget(window).findChild(QLabel, "versionLabel").text() == "1/2")


def test_quick_clicks_on_the_version_arrows_each_take_effect(
    harness: Harness, openai_server, qtbot: QtBot
) -> None:
    window = harness.window()
    session = answer_in_versions(
        qtbot, window, openai_server, ["First answer.", "Second answer.", "Third answer."]
    )
    shown = session.history[-1]
    # Two clicks on ‹ before the first switch is done: 3/3 -> 2/3 -> 1/3.
    first = window.chat.select_version(shown.id, 2)
    second = window.chat.select_version(shown.id, 1)
    assert first is not None and second is not None
    wait_for(qtbot, second.done)
    assert second.exception() is None
    assert content_text(session.history[-1].content) == "First answer."
    wait_for(qtbot, lambda: last_widget(window).findChild(QLabel, "versionLabel").text() == "1/3")


def test_cancelling_a_queued_version_switch_leaves_the_one_before_it(
    harness: Harness, openai_server, qtbot: QtBot
) -> None:
    window = harness.window()
    session = answer_in_versions(qtbot, window, openai_server, ["First answer.", "Second answer."])
    shown = session.history[-1]
    first = window.chat.select_version(shown.id, 1)
    second = window.chat.select_version(shown.id, 2)
    assert first is not None and second is not None
    qtbot.wait(1)  # the second is now waiting for the first
    assert not first.done()
    second.cancel()  # e.g. shut-down drained the tasks
    wait_for(qtbot, first.done)
    wait_for(qtbot, second.done)
    assert not first.cancelled() and first.exception() is None
    assert content_text(session.history[-1].content) == "First answer."


def test_a_reply_shows_its_model_and_speed(harness: Harness, openai_server, qtbot: QtBot) -> None:
    window = harness.window()
    send(qtbot, window, "Question")
    facts = last_widget(window).findChild(QLabel, "replyFacts")
    wait_for(qtbot, facts.isVisible)
    assert openai_server.model in facts.text()
    assert "tokens/s" in facts.text()


def test_a_narrow_window_keeps_the_buttons_after_an_interrupted_note_on_screen(
    harness: Harness, openai_server, qtbot: QtBot
) -> None:
    window = harness.window()
    send(qtbot, window, "Question")
    session = window.chat.current
    assert session is not None
    reply = session.history[-1]
    run(qtbot, window.manager.update_message(session.id, reply.id, status="interrupted"))
    window.resize(640, 480)
    wait_for(qtbot, lambda: last_widget(window).findChild(QLabel, "messageStatus").isVisible())
    widget = last_widget(window)
    view_width = window.chat_view.viewport().width()
    for name in ("copyMessageButton", "regenerateMessageButton"):
        button = widget.findChild(QToolButton, name)
        assert button.isVisible()
        right = button.mapTo(window.chat_view.viewport(), button.rect().topRight()).x()
        assert right <= view_width, name
    status = widget.findChild(QLabel, "messageStatus")
    assert status.text().endswith("…")
    assert status.toolTip().startswith("Interrupted")


def test_a_long_title_is_elided_and_never_vanishes(harness: Harness, qtbot: QtBot) -> None:
    window = harness.window()
    session = window.chat.current
    assert session is not None
    title = "A rather long title for a chat about planning the spring garden"
    run(qtbot, window.manager.update_session(session.id, title=title))
    wait_for(qtbot, lambda: window.pane.title.text() == title)
    window.resize(640, 480)
    wait_for(qtbot, lambda: window.pane.title.elided_text().endswith("…"))
    assert window.pane.title.toolTip() == title
    window.resize(window.minimumSizeHint())
    qtbot.wait(50)
    assert window.pane.title.width() > 0
    assert len(window.pane.title.elided_text()) >= 2


def test_each_chat_keeps_its_own_draft_across_restarts(harness: Harness, qtbot: QtBot) -> None:
    window = harness.window()
    send(qtbot, window, "A first question")  # an empty chat would be reused as the new one
    first = window.chat.current
    assert first is not None
    window.composer.edit.setPlainText("draft for the first chat")
    window.new_session()
    wait_for(qtbot, lambda: window.chat.current is not None and window.chat.current.id != first.id)
    second = window.chat.current
    assert window.composer.text() == ""  # the draft did not follow to the new chat
    window.composer.edit.setPlainText("draft for the second chat")
    run(qtbot, window.open_session(first.id))
    assert window.composer.text() == "draft for the first chat"
    harness.close(window)

    again = harness.window()
    wait_for(qtbot, lambda: again.chat.current is not None)
    assert again.chat.current.id == first.id
    assert again.composer.text() == "draft for the first chat"
    run(qtbot, again.open_session(second.id))
    assert again.composer.text() == "draft for the second chat"


def test_sending_an_edit_gives_the_draft_back(
    harness: Harness, openai_server, qtbot: QtBot
) -> None:
    window = harness.window()
    send(qtbot, window, "Question")
    session = window.chat.current
    assert session is not None
    window.composer.edit.setPlainText("next question, half typed")
    window.composer.begin_edit(session.history[0].id, "Question, edited")
    task = window.send_current()
    assert task is not None
    wait_for(qtbot, task.done)
    assert window.composer.text() == "next question, half typed"
    assert content_text(session.history[0].content) == "Question, edited"


def test_dragging_the_sidebar_divider_leaves_no_gap_between_messages(
    harness: Harness, qtbot: QtBot
) -> None:
    from chatdesk.domain import Message

    window = harness.window()
    window.resize(1100, 700)
    session = window.chat.current
    assert session is not None
    messages = [
        Message.create("user" if i % 2 == 0 else "assistant", "word " * 80 + f"end{i}")
        for i in range(12)
    ]
    run(qtbot, window.manager.replace_messages(session.id, messages))
    view, model = window.chat_view, window.pane.messages
    wait_for(qtbot, lambda: len(view.message_widgets()) > 2)
    for shift in (250, -400):
        window.splitter.moveSplitter(window.splitter.sizes()[0] + shift, 1)
        qtbot.wait(50)
        rects = [view.visualRect(model.index(row)) for row in range(model.rowCount())]
        for above, below in itertools.pairwise(rects):
            assert below.top() == above.bottom() + 1, "rows overlap or leave a gap"
        for widget in view.message_widgets():
            assert widget.message is not None
            row = model.row_of(widget.message.id)
            assert row is not None
            assert widget.geometry() == view.visualRect(model.index(row))


def test_removing_a_server_asks_and_its_chats_fall_back_to_the_default(
    harness: Harness, openai_server, qtbot: QtBot
) -> None:
    from chatdesk.settings import ServerConfig

    window = harness.window()
    other = "http://127.0.0.1:9/v1"  # a second server, never asked: its chats move away
    window.registry.preferences.servers.append(ServerConfig(base_url=other, models=["gone"]))
    session = window.chat.current
    assert session is not None
    run(qtbot, window.manager.update_session(session.id, provider=other, model="gone"))
    dialog = window.open_settings()
    dialog.server_list.setCurrentRow(
        next(
            i
            for i in range(dialog.server_list.count())
            if other in dialog.server_list.item(i).text()
        )
    )
    harness.confirm_answer = False
    dialog.remove_button.click()
    assert harness.confirmations and "Remove" in harness.confirmations[-1]
    assert window.registry.preferences.server(other) is not None  # the user said no
    harness.confirm_answer = True
    dialog.remove_button.click()
    assert window.registry.preferences.server(other) is None
    dialog.close()
    # The chat set to it is answered by the default model, and the window says so.
    send(qtbot, window, "Still there?")
    assert session.history[-1].status == "complete"
    assert openai_server.requests[-1]["model"] == openai_server.model
    assert "was removed" in window.composer.notice.text()


def test_an_image_for_a_text_only_model_is_warned_about_before_sending(
    harness: Harness, openai_server, qtbot: QtBot
) -> None:
    from tests.core.conftest import make_png

    window = harness.window()
    session = window.chat.current
    assert session is not None
    run(qtbot, window.manager.update_session(session.id, provider="local", model=None))
    window.composer.edit.setPlainText("What is in this picture?")
    assert window.composer.attach_image_bytes("photo.png", make_png())
    harness.confirm_answer = False
    assert window.send_current() is None
    assert any("reads text only" in c for c in harness.confirmations)
    assert window.composer.attachments() and session.history == []
    # A server model is not second-guessed.
    harness.confirmations.clear()
    run(qtbot, window.manager.update_session(session.id, provider=None, model=None))
    task = window.send_current()
    assert task is not None
    wait_for(qtbot, task.done)
    assert harness.confirmations == []


def test_a_failed_retry_leaves_the_earlier_partial_reply_in_the_window(
    harness: Harness, openai_server, qtbot: QtBot
) -> None:
    window = harness.window()
    openai_server.reply = "A partial answer that will be cut"
    openai_server.hang_up_after = 3
    send(qtbot, window, "Question")
    session = window.chat.current
    assert session is not None
    partial = session.history[-1]
    assert partial.status == "error"
    wait_for(qtbot, window.pane.banner.isVisible)
    openai_server.hang_up_after = None
    openai_server.status = 500
    task = window.retry_current()  # the banner's Retry
    assert task is not None
    wait_for(qtbot, task.done)
    assert [m.id for m in session.history][-1] == partial.id

    def shown() -> str:
        return " ".join(
            p.toPlainText()
            for w in window.chat_view.message_widgets()
            for p in w.part_widgets()
            if isinstance(p, MessageText)
        )

    wait_for(qtbot, lambda: content_text(partial.content).strip() in shown())
