"""The window's local API: turned on in Settings, served from the window's own manager.

A session made through the API appears in the open window's sidebar at once, marked with
its owner (the token's name); the window keeps working while the API serves.
"""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from chatdesk.api.service import LocalApiService
from chatdesk.settings import Preferences
from chatdesk.ui.local_api_settings import LocalApiGroup
from chatdesk.ui.session_model import OwnerRole, SessionIdRole
from tests.ui.harness import Harness, run, wait_for


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def sidebar_row(window: object, session_id: str) -> dict[str, object] | None:
    """What the sidebar shows of ``session_id`` (None while it is not listed)."""
    model = window.sidebar.model  # type: ignore[attr-defined]
    for row in range(model.rowCount()):
        index = model.index(row, 0)
        if index.data(SessionIdRole) == session_id:
            return {
                "row": row,
                "title": index.data(),
                "owner": index.data(OwnerRole),
                "tooltip": index.data(Qt.ItemDataRole.ToolTipRole),
            }
    return None


def test_a_session_made_through_the_api_appears_in_the_sidebar_with_its_owner(
    harness: Harness, qtbot: QtBot, tmp_path: Path
) -> None:
    window = harness.window()
    api = LocalApiService(window.manager, window.engine, window.registry)
    window.api = api
    try:
        dialog = window.open_settings()
        group = dialog.findChild(LocalApiGroup)
        assert group is not None
        dialog.pages.setCurrentWidget(group.parentWidget())
        assert not group.enabled.isChecked() and "Off" in group.status.text()
        port = free_port()
        group.port.setValue(port)
        group.enabled.setChecked(True)
        wait_for(qtbot, lambda: api.url == f"http://127.0.0.1:{port}")
        wait_for(qtbot, lambda: "Serving on" in group.status.text())
        assert Preferences.load(tmp_path / "settings.json").api_enabled is True

        run(qtbot, group.create_token("alice"))
        token = group.new_token.text()
        assert token.startswith("cd_") and group.new_token.isVisible()
        assert [
            group.tokens.item(i).data(Qt.ItemDataRole.UserRole) for i in range(group.tokens.count())
        ] == ["alice"]
        dialog.close()

        async def make_session() -> str:
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(headers=headers, timeout=30) as client:
                made = await client.post(f"{api.url}/api/sessions", json={"title": "From a script"})
                assert made.status_code == 201, made.text
                session_id: str = made.json()["id"]
                sent = await client.post(
                    f"{api.url}/api/sessions/{session_id}/messages", json={"content": "hello"}
                )
                assert sent.status_code == 200, sent.text
                return session_id

        session_id = run(qtbot, make_session())
        wait_for(qtbot, lambda: sidebar_row(window, session_id) is not None)
        shown = sidebar_row(window, session_id)
        assert shown is not None
        assert (shown["row"], shown["title"], shown["owner"]) == (0, "From a script", "alice")
        assert "alice" in str(shown["tooltip"])
        # The desktop user's own chat is still there, unmarked.
        own = sidebar_row(window, window.current_session_id or "")
        assert own is not None and own["owner"] == "local"
        window.sidebar.list.viewport().grab().save(str(tmp_path / "sidebar.png"))
    finally:
        run(qtbot, api.stop())
