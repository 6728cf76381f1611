"""The context meter and compacted chats in the real window (offscreen, real test server)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QMenu
from pytestqt.qtbot import QtBot

from chatdesk.context import ContextWindows
from chatdesk.domain import Message, content_text
from chatdesk.interchange import export_sessions
from chatdesk.sessions import SessionManager
from chatdesk.settings import sqlite_url
from chatdesk.ui.context_meter import ALARM_COLOUR, WARN_COLOUR, ContextMeter, short_tokens
from chatdesk.ui.main_window import MainWindow
from chatdesk.ui.message_parts import MessageText
from chatdesk.ui.message_widget import MessageWidget
from tests.openai_test_server import OpenAITestServer
from tests.ui.harness import Harness, run, wait_for


def _fill(qtbot: QtBot, window: MainWindow, pairs: int, words: int = 20) -> str:
    """Add ``pairs`` questions and answers to the chat shown; its id."""
    session_id = window.current_session_id
    assert session_id is not None
    for i in range(pairs):
        run(qtbot, _add(window, i, words))
    return session_id


async def _add(window: MainWindow, i: int, words: int) -> None:
    session_id = window.current_session_id
    assert session_id is not None
    await window.manager.add_message(session_id, "user", f"question {i} " + "lorem " * words)
    await window.manager.add_message(session_id, "assistant", f"answer {i} " + "ipsum " * words)


def _summary_widget(window: MainWindow) -> MessageWidget:
    for widget in window.chat_view.message_widgets():
        if widget.message is not None and widget.message.is_summary:
            return widget
    raise AssertionError("no summary row in view")


def _shown_text(widget: MessageWidget) -> str:
    return "\n".join(
        part.toPlainText() for part in widget.part_widgets() if isinstance(part, MessageText)
    )


def test_short_tokens_reads_like_a_context_size() -> None:
    assert short_tokens(512) == "512"
    assert short_tokens(3174) == "3.1k"
    assert short_tokens(8192) == "8k"
    assert short_tokens(131072) == "128k"


def test_the_meter_shows_the_chat_against_its_window_and_warns_near_the_limit(
    harness: Harness, qtbot: QtBot, openai_server: OpenAITestServer
) -> None:
    key = f"{openai_server.base_url} {openai_server.model}"
    window = harness.window(context_windows=ContextWindows({key: 2048}))
    meter: ContextMeter = window.pane.context_meter
    wait_for(qtbot, lambda: meter.budget is not None)
    assert meter.text().endswith("/ 2k")
    assert not meter.undo_action.isEnabled()

    _fill(qtbot, window, 6)
    wait_for(qtbot, lambda: meter.budget is not None and meter.budget.messages > 300)
    budget = meter.budget
    assert budget is not None
    assert meter.text() == f"{short_tokens(budget.used)} / 2k"
    tip = meter.toolTip()
    for part in ("System prompt", "Summary", "Messages", "Images (0)", "reply"):
        assert part in tip
    colour_low = meter.bar_colour()

    _fill(qtbot, window, 8)
    wait_for(qtbot, lambda: meter.fill() >= 0.75)
    assert meter.bar_colour() in (WARN_COLOUR, ALARM_COLOUR)
    assert meter.bar_colour() != colour_low
    menu = meter.menu()
    assert isinstance(menu, QMenu)
    assert [a.text() for a in menu.actions()] == [
        "Compact now",
        "Keep the first N messages…",
        "Undo compaction",
    ]


def test_compact_now_then_expand_edit_and_undo_the_summary(
    harness: Harness, qtbot: QtBot, openai_server: OpenAITestServer
) -> None:
    window = harness.window()
    session_id = _fill(qtbot, window, 4, words=5)
    originals = list(run(qtbot, window.manager.require_session(session_id)).history)
    meter: ContextMeter = window.pane.context_meter
    wait_for(qtbot, lambda: meter.isEnabled())
    openai_server.reply = "The user asked four questions about lorem."

    meter.compact_action.trigger()

    wait_for(
        qtbot,
        lambda: any(w.message and w.message.is_summary for w in window.chat_view.message_widgets()),
    )
    summary = _summary_widget(window)
    assert "6 earlier messages, summarised" in _shown_text(summary)
    assert "four questions about lorem" in _shown_text(summary)
    wait_for(qtbot, lambda: meter.undo_action.isEnabled())

    # Expand: the originals appear in the row, in order.
    toggle = summary.summary_button("toggle")
    assert toggle.isVisible() and toggle.text() == "Show messages"
    toggle.click()
    wait_for(qtbot, lambda: "question 0" in _shown_text(_summary_widget(window)))
    text = _shown_text(_summary_widget(window))
    assert text.index("question 0") < text.index("answer 0") < text.index("answer 2")
    assert _summary_widget(window).summary_button("toggle").text() == "Hide messages"
    _summary_widget(window).summary_button("toggle").click()
    wait_for(qtbot, lambda: "question 0" not in _shown_text(_summary_widget(window)))

    # Edit: what the model will be told changes, on disk too.
    window.context.edit_text = lambda _parent, _text: "Four questions, all about lorem."
    _summary_widget(window).summary_button("edit").click()
    wait_for(qtbot, lambda: "all about lorem" in _shown_text(_summary_widget(window)))
    history = run(qtbot, window.manager.require_session(session_id)).history
    assert content_text(history[0].content) == "Four questions, all about lorem."

    # Undo: the originals are back, exactly.
    _summary_widget(window).summary_button("undo").click()
    wait_for(
        qtbot,
        lambda: run(qtbot, window.manager.require_session(session_id)).history == originals,
    )
    wait_for(qtbot, lambda: not meter.undo_action.isEnabled())
    assert not any(w.message and w.message.is_summary for w in window.chat_view.message_widgets())


def test_keep_the_first_n_messages_asks_then_truncates(harness: Harness, qtbot: QtBot) -> None:
    window = harness.window()
    session_id = _fill(qtbot, window, 3, words=2)
    window.context.ask_count = lambda _parent, total: 2
    meter: ContextMeter = window.pane.context_meter
    wait_for(qtbot, lambda: meter.isEnabled())

    meter.keep_first_action.trigger()

    wait_for(
        qtbot, lambda: len(run(qtbot, window.manager.require_session(session_id)).history) == 2
    )
    assert "Delete the last 4 messages" in harness.confirmations[-1]
    wait_for(qtbot, lambda: window.pane.messages.rowCount() == 2)


def test_declining_to_keep_the_first_n_changes_nothing(harness: Harness, qtbot: QtBot) -> None:
    harness.confirm_answer = False
    window = harness.window()
    session_id = _fill(qtbot, window, 2, words=2)
    window.context.ask_count = lambda _parent, total: 1
    window.pane.context_meter.keep_first_action.trigger()
    qtbot.wait(100)
    assert len(run(qtbot, window.manager.require_session(session_id)).history) == 4


def test_tool_calls_render_as_words_not_json(
    harness: Harness, qtbot: QtBot, openai_server: OpenAITestServer
) -> None:
    window = harness.window()
    openai_server.tool_call_script = [
        [{"name": "manage_session", "arguments": '{"action": "rename", "title": "Lisbon trip"}'}]
    ]
    openai_server.reply = "Renamed."
    task = window.send_text("name this chat Lisbon trip")
    assert task is not None
    wait_for(qtbot, task.done)
    wait_for(qtbot, lambda: len(window.chat_view.message_widgets()) == 4)
    texts = [_shown_text(w) for w in window.chat_view.message_widgets()]
    assert "Renaming the chat to “Lisbon trip”" in texts[1]
    assert "Renamed the chat to “Lisbon trip”" in texts[2]
    assert not any("{" in t for t in texts)
    assert window.pane.title.text() == "Lisbon trip"


def test_a_context_window_set_in_settings_is_used_and_saved(
    harness: Harness, qtbot: QtBot, openai_server: OpenAITestServer
) -> None:
    window = harness.window()
    meter: ContextMeter = window.pane.context_meter
    wait_for(qtbot, lambda: meter.budget is not None)
    assert meter.text().endswith("/ 8k")
    dialog = window.open_settings()
    box = dialog.model_context  # type: ignore[attr-defined]
    labels = [box.model_choice.itemText(i) for i in range(box.model_choice.count())]
    box.model_choice.setCurrentIndex(
        labels.index(f"{openai_server.model} — {openai_server.base_url}")
    )
    assert box.window_spin.value() == 0 and box.tools_check.isChecked()

    box.window_spin.setValue(3072)
    box.window_spin.editingFinished.emit()
    box.tools_check.setChecked(False)
    dialog.close()

    key = f"{openai_server.base_url} {openai_server.model}"
    assert window.preferences.context_windows == {key: 3072}
    assert window.preferences.tools_off == [key]
    window.context.refresh()
    wait_for(qtbot, lambda: meter.text().endswith("/ 3k"))
    # The next request offers no tools.
    task = window.send_text("hello")
    assert task is not None
    wait_for(qtbot, task.done)
    assert "tools" not in openai_server.requests[-1]
    saved = (harness.data_dir / "settings.json").read_text()
    assert '"context_windows"' in saved and "3072" in saved


def test_a_too_small_context_window_is_refused_in_words(harness: Harness, qtbot: QtBot) -> None:
    window = harness.window()
    dialog = window.open_settings()
    box = dialog.model_context  # type: ignore[attr-defined]
    box.window_spin.setValue(100)
    box.window_spin.editingFinished.emit()
    assert "too small" in box.status.text()
    assert box.window_spin.value() == 0
    assert window.preferences.context_windows == {}
    dialog.close()


def test_sending_in_a_full_chat_compacts_it_and_the_reply_still_streams_in(
    harness: Harness, qtbot: QtBot, openai_server: OpenAITestServer
) -> None:
    key = f"{openai_server.base_url} {openai_server.model}"
    window = harness.window(context_windows=ContextWindows({key: 1024}))
    session_id = _fill(qtbot, window, 10, words=30)
    openai_server.reply = "Short summary and answer."
    meter: ContextMeter = window.pane.context_meter
    wait_for(qtbot, lambda: meter.budget is not None and not meter.budget.fits)

    task = window.send_text("what now?")
    assert task is not None
    wait_for(qtbot, task.done)

    history = run(qtbot, window.manager.require_session(session_id)).history
    assert history[0].is_summary and history[-1].content == "Short summary and answer."
    assert window.error_text(session_id) is None
    wait_for(qtbot, lambda: meter.budget is not None and meter.budget.fits)
    assert meter.undo_action.isEnabled()
    window.chat_view.scroll_to_newest()
    wait_for(
        qtbot,
        lambda: any(
            w.message is not None and w.message.content == "Short summary and answer."
            for w in window.chat_view.message_widgets()
        ),
    )


async def _export_compacted_chat(path: Path, out: Path) -> tuple[str, list[Message]]:
    """A chat compacted in another database, exported as JSON to ``out``."""
    source = await SessionManager.open(sqlite_url(path))
    try:
        session = await source.create_session("Compacted elsewhere")
        for i in range(3):
            await source.add_message(session.id, "user", f"question {i} about owls")
            await source.add_message(session.id, "assistant", f"answer {i} about owls")
        history = list((await source.require_session(session.id)).history)
        await source.compact_messages(session.id, [m.id for m in history[:4]], "Owls, twice.")
        await export_sessions(source, [session.id], out, fmt="json")
    finally:
        await source.close()
    return session.id, history


def test_an_imported_summary_shows_its_messages_and_undoes(
    harness: Harness, qtbot: QtBot, tmp_path: Path
) -> None:
    out = tmp_path / "export.json"
    session_id, originals = run(qtbot, _export_compacted_chat(tmp_path / "elsewhere.db", out))
    window = harness.window()
    assert run(qtbot, window.findkeep.import_from(out)).startswith("Imported 1 chat(s)")
    run(qtbot, window.open_session(session_id))
    wait_for(
        qtbot,
        lambda: any(w.message and w.message.is_summary for w in window.chat_view.message_widgets()),
    )
    summary = _summary_widget(window)
    assert "4 earlier messages, summarised" in _shown_text(summary)

    toggle = summary.summary_button("toggle")
    assert toggle.isVisible() and toggle.text() == "Show messages"
    toggle.click()
    wait_for(qtbot, lambda: "question 0 about owls" in _shown_text(_summary_widget(window)))
    text = _shown_text(_summary_widget(window))
    assert text.index("question 0") < text.index("answer 0") < text.index("answer 1")

    _summary_widget(window).summary_button("undo").click()
    wait_for(
        qtbot,
        lambda: run(qtbot, window.manager.require_session(session_id)).history == originals,
    )
