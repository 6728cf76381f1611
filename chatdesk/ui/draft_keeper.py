"""Each chat's unsent draft: kept while the user switches chats, its text stored too.

The composer is shared by every chat, so what it holds is put aside when another chat
opens and put back when this one does. The images of a draft stay for this run only;
its text is written with the chat (through the manager), so it survives a restart.
"""

from __future__ import annotations

from chatdesk.domain import Content, Session, content_text
from chatdesk.sessions import SessionManager
from chatdesk.ui.async_tasks import TaskSet
from chatdesk.ui.composer import Composer


class DraftKeeper:
    """Keeps what the composer holds per chat, and stores each draft's text."""

    def __init__(self, composer: Composer, manager: SessionManager, tasks: TaskSet) -> None:
        """Drafts of ``composer``'s chats, written through ``manager`` in ``tasks``."""
        self._composer = composer
        self._manager = manager
        self._tasks = tasks
        # Each chat's unsent draft (with its images) for this run; its text is stored too.
        self._drafts: dict[str, Content | None] = {}

    def put_aside(self, session: Session) -> None:
        """Keep what the composer holds as ``session``'s draft (an edit in progress is
        abandoned; the draft typed before it is kept)."""
        composer = self._composer
        if composer.editing_message_id is not None:
            draft = composer.take_draft_before_edit()
            composer.finish_edit()
        else:
            draft = composer.content()
        self._drafts[session.id] = draft
        self.store(session, draft)

    def store(self, session: Session | None, draft: Content | None) -> None:
        """Write the text of ``draft`` with the chat (images stay for this run only)."""
        if session is None:
            return
        self._drafts[session.id] = draft
        text = content_text(draft).strip() if draft else ""
        if text != (session.draft or ""):
            self._tasks.start(self._manager.update_session(session.id, draft=text or None))

    def show(self, session: Session) -> None:
        """Put ``session``'s draft in the composer (or empty it when there is none)."""
        draft = self._drafts.get(session.id, session.draft)
        if draft:
            self._composer.set_content(draft)
        else:
            self._composer.clear()
