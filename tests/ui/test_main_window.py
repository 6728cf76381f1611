"""The main window driven like a user would, against a real database and model server."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QLabel, QLineEdit, QPushButton, QToolButton, QWidget
from pytestqt.qtbot import QtBot

from chatdesk.domain import Message, content_text
from chatdesk.ui.main_window import MainWindow
from chatdesk.ui.message_model import ImageCountRole
from chatdesk.ui.message_parts import MessageText
from tests.ui.harness import Harness, run, wait_for

LONG_REPLY = " ".join(f"word{i}" for i in range(60))


def visible_text(window: MainWindow) -> str:
    """All text the chat view's message widgets show right now."""
    texts = []
    for widget in window.chat_view.message_widgets():
        texts += [p.toPlainText() for p in widget.part_widgets() if isinstance(p, MessageText)]
    return "\n".join(texts)


def model_text(window: MainWindow) -> str:
    """The text of every row the chat view's model holds."""
    model = window.pane.messages
    return "\n".join(content_text(model.message(row).content) for row in range(model.rowCount()))


def history(qtbot: QtBot, window: MainWindow, session_id: str) -> list[Message]:
    """The stored history of ``session_id``."""
    return run(qtbot, window.manager.require_session(session_id)).history


def write_png(path: Path, width: int = 64, height: int = 48) -> Path:
    """A real PNG file of one colour."""
    image = QImage(width, height, QImage.Format.Format_RGB32)
    image.fill(QColor(30, 120, 200))
    assert image.save(str(path), "PNG")
    return path


def test_every_control_has_an_object_and_accessible_name(harness: Harness) -> None:
    window = harness.window()
    for name in (
        "sessionList",
        "newSessionButton",
        "sessionFilter",
        "chatView",
        "composer",
        "sendButton",
        "stopButton",
        "attachButton",
        "modelSelector",
        "settingsButton",
    ):
        widget = window.findChild(QWidget, name)
        assert widget is not None, name
        assert widget.accessibleName() == name


def test_sent_message_streams_its_reply_into_the_chat_view(
    harness: Harness, openai_server, qtbot: QtBot
) -> None:
    openai_server.reply = LONG_REPLY
    openai_server.chunk_delay = 0.01
    window = harness.window()
    session_id = window.current_session_id
    assert session_id is not None

    window.composer.edit.setPlainText("Tell me something")
    qtbot.mouseClick(window.findChild(QPushButton, "sendButton"), Qt.MouseButton.LeftButton)

    wait_for(
        qtbot, lambda: "word3" in visible_text(window) and "word59" not in visible_text(window)
    )
    assert window.findChild(QPushButton, "stopButton").isVisible()
    wait_for(qtbot, lambda: window.turn_task(session_id) is None)
    wait_for(qtbot, lambda: "word59" in visible_text(window))
    assert "Tell me something" in visible_text(window)
    stored = history(qtbot, window, session_id)
    assert [m.role for m in stored] == ["user", "assistant"]
    assert stored[1].status == "complete"
    assert content_text(stored[1].content) == LONG_REPLY
    assert window.findChild(QPushButton, "sendButton").isVisible()
    assert window.composer.text() == ""


def test_enter_sends_and_shift_enter_adds_a_line(harness: Harness, qtbot: QtBot) -> None:
    window = harness.window()
    session_id = window.current_session_id
    edit = window.composer.edit
    qtbot.keyClicks(edit, "first line")
    qtbot.keyClick(edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(edit, "second line")
    assert edit.toPlainText() == "first line\nsecond line"
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    wait_for(qtbot, lambda: window.turn_task(session_id) is None and visible_text(window))
    stored = history(qtbot, window, session_id)
    assert stored[0].content == "first line\nsecond line"


def test_stop_keeps_the_partial_reply_marked_cancelled(
    harness: Harness, openai_server, qtbot: QtBot
) -> None:
    openai_server.reply = LONG_REPLY
    openai_server.chunk_delay = 0.05
    window = harness.window()
    session_id = window.current_session_id
    window.send_text("Talk slowly")
    wait_for(qtbot, lambda: "word2" in visible_text(window))

    qtbot.mouseClick(window.findChild(QPushButton, "stopButton"), Qt.MouseButton.LeftButton)
    wait_for(qtbot, lambda: window.turn_task(session_id) is None)

    reply = history(qtbot, window, session_id)[-1]
    assert reply.status == "cancelled"
    text = content_text(reply.content)
    assert text and LONG_REPLY.startswith(text) and text != LONG_REPLY
    wait_for(qtbot, lambda: "Stopped" in [w.text() for w in window.findChildren(QLabel)])
    assert text.strip() in visible_text(window)
    assert not window.findChild(QWidget, "errorBanner").isVisible()


def test_switching_sessions_mid_stream_never_shows_the_reply_elsewhere(
    harness: Harness, openai_server, qtbot: QtBot
) -> None:
    openai_server.reply = "ALPHA " + LONG_REPLY
    openai_server.chunk_delay = 0.02
    window = harness.window()
    first = window.current_session_id
    window.send_text("Question for the first chat")
    wait_for(qtbot, lambda: "word1" in visible_text(window))

    qtbot.mouseClick(window.findChild(QPushButton, "newSessionButton"), Qt.MouseButton.LeftButton)
    wait_for(qtbot, lambda: window.current_session_id not in (None, first))
    second = window.current_session_id
    seen_in_second: list[str] = []

    def first_reply_finished() -> bool:
        seen_in_second.append(visible_text(window) + model_text(window))
        return window.turn_task(first) is None

    wait_for(qtbot, first_reply_finished)
    assert window.current_session_id == second
    assert not any("ALPHA" in text or "word" in text for text in seen_in_second)
    assert history(qtbot, window, second) == []

    window.sidebar.select_session(first)
    wait_for(qtbot, lambda: window.current_session_id == first)
    wait_for(qtbot, lambda: "word59" in visible_text(window))
    assert history(qtbot, window, first)[-1].status == "complete"


def test_attached_image_is_sent_and_shown_as_an_image_even_after_a_restart(
    harness: Harness, openai_server, qtbot: QtBot, tmp_path: Path
) -> None:
    window = harness.window()
    session_id = window.current_session_id
    assert window.composer.attach_file(write_png(tmp_path / "photo.png", 64, 48))
    assert len(window.composer.findChildren(QWidget, "attachmentChip")) == 1
    window.composer.edit.setPlainText("What is in this picture?")
    window.send_current()
    wait_for(qtbot, lambda: window.turn_task(session_id) is None)

    sent = history(qtbot, window, session_id)[0].content
    assert isinstance(sent, list)
    assert sent[0] == {"type": "text", "text": "What is in this picture?"}
    assert sent[1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert not window.composer.attachments()

    def images_shown(w: MainWindow) -> list[QLabel]:
        return [
            label
            for label in w.chat_view.findChildren(QLabel, "messageImage")
            if label.isVisible() and label.pixmap() is not None and not label.pixmap().isNull()
        ]

    wait_for(qtbot, lambda: images_shown(window))
    label = images_shown(window)[0]
    assert label.width() == 64 and label.height() == 48
    first_row = window.pane.messages.index(0)
    assert first_row.data(ImageCountRole) == 1
    user_widget = next(w for w in window.chat_view.message_widgets() if w.message.role == "user")
    kinds = [type(p).__name__ for p in user_widget.part_widgets()]
    assert kinds == ["MessageText", "ImageThumbnail"]

    harness.close(window)
    reopened = harness.window()
    assert reopened.current_session_id == session_id
    wait_for(qtbot, lambda: images_shown(reopened))
    assert "What is in this picture?" in visible_text(reopened)


def test_a_file_that_is_not_an_image_is_refused_and_nothing_is_sent(
    harness: Harness, openai_server, qtbot: QtBot, tmp_path: Path
) -> None:
    window = harness.window()
    session_id = window.current_session_id
    notes = tmp_path / "notes.txt"
    notes.write_text("just some text")

    assert not window.composer.attach_file(notes)

    notice = window.findChild(QLabel, "composerMessage")
    assert notice.isVisible()
    assert "notes.txt" in notice.text() and "not an image" in notice.text()
    assert window.composer.attachments() == []
    assert window.send_current() is None
    assert history(qtbot, window, session_id) == []
    assert openai_server.requests == []


def test_rename_filter_and_delete_sessions_from_the_sidebar(harness: Harness, qtbot: QtBot) -> None:
    window = harness.window()
    manager = window.manager
    for title in ("Holiday plans", "Tax questions", "Holiday budget"):
        run(qtbot, manager.create_session(title))
    sidebar = window.sidebar
    wait_for(qtbot, lambda: sidebar.proxy.rowCount() == 4)

    # Rename in place: F2 on the current row, type, Enter.
    target = next(s for s in run(qtbot, manager.list_sessions()) if s.title == "Tax questions")
    sidebar.select_session(target.id)
    qtbot.keyClick(sidebar.list, Qt.Key.Key_F2)
    editor = sidebar.list.findChild(QLineEdit)
    assert editor is not None
    editor.setText("Renamed chat")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    wait_for(
        qtbot,
        lambda: any(s.title == "Renamed chat" for s in run(qtbot, manager.list_sessions())),
    )

    # The filter narrows the list as you type.
    qtbot.keyClicks(window.findChild(QLineEdit, "sessionFilter"), "holiday")
    titles = [sidebar.proxy.index(r, 0).data() for r in range(sidebar.proxy.rowCount())]
    assert sorted(titles) == ["Holiday budget", "Holiday plans"]
    window.findChild(QLineEdit, "sessionFilter").clear()
    assert sidebar.proxy.rowCount() == 4

    # Delete moves the chat to the Trash at once, without a question (Undo is offered).
    sidebar.select_session(target.id)
    qtbot.keyClick(sidebar.list, Qt.Key.Key_Delete)
    wait_for(qtbot, lambda: sidebar.model.row_of(target.id) is None)
    assert harness.confirmations == []
    remaining = {s.id for s in run(qtbot, manager.list_sessions())}
    assert target.id not in remaining and len(remaining) == 3
    trashed = run(qtbot, manager.list_sessions(trashed_only=True))
    assert [s.id for s in trashed] == [target.id]


def test_a_server_error_shows_a_banner_and_retry_recovers(
    harness: Harness, openai_server, qtbot: QtBot
) -> None:
    openai_server.status = 500
    window = harness.window()
    session_id = window.current_session_id
    window.send_text("Hello?")
    wait_for(qtbot, lambda: window.turn_task(session_id) is None)

    banner = window.findChild(QWidget, "errorBanner")
    assert banner.isVisible()
    error = window.error_text(session_id)
    assert error and "500" in error
    assert banner.findChild(QLabel, "errorText").text() == error

    openai_server.status = 200
    openai_server.reply = "Recovered fine."
    qtbot.mouseClick(banner.findChild(QPushButton, "retryButton"), Qt.MouseButton.LeftButton)
    wait_for(qtbot, lambda: "Recovered fine." in visible_text(window))
    wait_for(qtbot, lambda: window.turn_task(session_id) is None)
    assert not banner.isVisible()
    stored = history(qtbot, window, session_id)
    assert [m.role for m in stored] == ["user", "assistant"]
    assert stored[-1].status == "complete"


def test_window_remembers_its_size_splitter_and_last_session(
    harness: Harness, qtbot: QtBot
) -> None:
    window = harness.window()
    other = run(qtbot, window.manager.create_session("Not the last one"))
    chosen = window.current_session_id
    # Smaller than the offscreen screen (800x600), which restoreGeometry clamps to.
    window.resize(720, 520)
    window.splitter.setSizes([300, 420])
    sizes = window.splitter.sizes()
    assert other.id != chosen
    harness.close(window)

    reopened = harness.window()
    assert reopened.current_session_id == chosen
    assert reopened.splitter.sizes() == sizes
    assert (reopened.width(), reopened.height()) == (720, 520)


def test_a_long_session_opens_at_its_end_and_loads_older_messages_without_jumping(
    harness: Harness, qtbot: QtBot
) -> None:
    window = harness.window()
    manager = window.manager
    session = run(qtbot, manager.create_session("Long"))
    messages = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"message number {i}"}
        for i in range(2000)
    ]
    run(qtbot, manager.replace_messages(session.id, messages))
    window.sidebar.select_session(session.id)
    wait_for(qtbot, lambda: window.current_session_id == session.id)

    model = window.pane.messages
    assert model.rowCount() == 50
    wait_for(qtbot, lambda: "message number 1999" in visible_text(window))
    assert window.chat_view.is_at_bottom()

    view = window.chat_view
    bar = view.verticalScrollBar()
    top = QPoint(view.viewport().width() // 2, 2)
    bar.setValue(0)
    wait_for(qtbot, lambda: model.rowCount() == 100)
    # The message the user was looking at stays put: older rows went in above it.
    assert view.indexAt(top).data() == "message number 1950"
    assert bar.value() > 0
    wait_for(qtbot, lambda: "message number 1950" in visible_text(window))
    assert "message number 1999" not in visible_text(window)


def test_edit_and_resend_replaces_the_question_and_regenerate_replaces_the_reply(
    harness: Harness, openai_server, qtbot: QtBot
) -> None:
    openai_server.reply = "First answer."
    window = harness.window()
    session_id = window.current_session_id
    window.send_text("Original question")
    wait_for(qtbot, lambda: "First answer." in visible_text(window))
    wait_for(qtbot, lambda: window.turn_task(session_id) is None)

    openai_server.reply = "Answer to the edit."
    user_widget = next(w for w in window.chat_view.message_widgets() if w.message.role == "user")
    user_widget.findChild(QToolButton, "editMessageButton").click()
    assert window.composer.text() == "Original question"
    window.composer.edit.setPlainText("Edited question")
    window.send_current()
    wait_for(qtbot, lambda: "Answer to the edit." in visible_text(window))
    wait_for(qtbot, lambda: window.turn_task(session_id) is None)
    stored = history(qtbot, window, session_id)
    assert [(m.role, content_text(m.content)) for m in stored] == [
        ("user", "Edited question"),
        ("assistant", "Answer to the edit."),
    ]

    openai_server.reply = "A fresh take."
    reply_widget = next(
        w for w in window.chat_view.message_widgets() if w.message.role == "assistant"
    )
    regenerate = reply_widget.findChild(QToolButton, "regenerateMessageButton")
    assert not regenerate.isHidden()
    regenerate.click()
    wait_for(qtbot, lambda: "A fresh take." in visible_text(window))
    wait_for(qtbot, lambda: window.turn_task(session_id) is None)
    stored = history(qtbot, window, session_id)
    assert [content_text(m.content) for m in stored] == ["Edited question", "A fresh take."]
