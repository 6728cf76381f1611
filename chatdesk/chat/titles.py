"""Chat titles: a new chat is named after its first reply, by its model or from its words.

When a turn's reply completed in a chat still called DEFAULT_TITLE, the chat's model is
asked for a short title in a background task kept here (``wait``, ``close``), after the
turn has released the session; its answer is cleaned of preambles and code, and when it
gives none the question's first words are used. A reply that was stopped or failed names
the chat from the question's words at once, without asking a model, so a reply cut short
does not leave the chat untitled.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Any

from chatdesk.domain import DEFAULT_TITLE, Session, content_text
from chatdesk.providers.base import Provider, ProviderError
from chatdesk.sessions import SessionManager, SessionNotFoundError
from chatdesk.storage.errors import StorageError

log = logging.getLogger(__name__)

TITLE_PROMPT = (
    "Write a short title (at most six words) for the conversation above. "
    "Reply with the title only, no quotes."
)
# Room for a short preamble line before the title itself (see _TITLE_PREAMBLE).
TITLE_MAX_TOKENS = 32
_TITLE_MAX_CHARS = 60
_TITLE_FALLBACK_WORDS = 6
# Small models often introduce the title instead of giving just the title.
_TITLE_PREAMBLE = re.compile(
    r"^(here('s| is| are)|sure|certainly|of course|okay|ok)\b|:$", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class TitleJob:
    """What titling a chat needs, taken when its first reply completed."""

    provider: Provider
    model: str | None
    context: list[dict[str, Any]]
    first_words: str


class ChatTitles:
    """Names the chats of one engine; keeps the background tasks doing it."""

    def __init__(self, manager: SessionManager, *, enabled: bool) -> None:
        """Write titles through ``manager``; ``enabled`` False names no chat at all."""
        self._manager = manager
        self._enabled = enabled
        self._tasks: set[asyncio.Task[None]] = set()

    def job_for(self, session: Session, provider: Provider, model: str | None) -> TitleJob | None:
        """What naming ``session`` by ``model`` needs, or None when it is not to be named."""
        if self._enabled and session.title == DEFAULT_TITLE:
            first_user = next((m for m in session.history if m.role == "user"), None)
            if first_user is not None:
                return TitleJob(
                    provider,
                    model,
                    session.context_messages(),
                    content_text(first_user.content),
                )
        return None

    def start(self, session_id: str, job: TitleJob) -> None:
        """Make the title of ``session_id`` in the background."""
        task = asyncio.create_task(
            self._title_if_default(session_id, job), name=_task_name(session_id)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def is_making(self, session_id: str) -> bool:
        """Whether the model is naming ``session_id`` right now."""
        return any(task.get_name() == _task_name(session_id) for task in self._tasks)

    async def wait(self) -> None:
        """Wait until every chat title being made has been written or given up."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def close(self) -> None:
        """Stop making titles and wait for them to end."""
        tasks = set(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    async def from_question(self, session: Session) -> None:
        """Name a chat whose first reply was stopped or failed after its question's words.

        Written within the turn (no model asked), so a reply cut short does not leave the
        chat called DEFAULT_TITLE.
        """
        if not self._enabled or session.title != DEFAULT_TITLE:
            return
        first_user = next((m for m in session.history if m.role == "user"), None)
        title = _title_from_text(content_text(first_user.content)) if first_user else None
        if title:
            try:
                await self._manager.update_session(session.id, title=title)
            except (SessionNotFoundError, StorageError) as exc:
                log.info("could not title session %s: %s", session.id, exc)

    async def _title_if_default(self, session_id: str, job: TitleJob) -> None:
        """Give a chat still called DEFAULT_TITLE a title; failures are logged, never raised."""
        try:
            title = await _title_from_model(job)
            title = title or _title_from_text(job.first_words)
            session = await self._manager.get_session(session_id)
            if title and session is not None and session.title == DEFAULT_TITLE:
                await self._manager.update_session(session_id, title=title)
        except SessionNotFoundError:
            log.info("session %s was deleted before its title was written", session_id)
        except Exception:
            log.exception("could not title session %s", session_id)


def _task_name(session_id: str) -> str:
    return f"chatdesk-title-{session_id}"


async def _title_from_model(job: TitleJob) -> str | None:
    context = [*job.context, {"role": "user", "content": TITLE_PROMPT}]
    text = ""
    try:
        async with asyncio.timeout(15):
            stream = job.provider.stream(
                context, model=job.model, max_tokens=TITLE_MAX_TOKENS, temperature=0.2
            )
            try:
                async for delta in stream:
                    text += delta
            finally:
                await stream.aclose()
    except (ProviderError, TimeoutError) as exc:
        log.info("no title from the model (%s); using the first words", exc)
        return None
    return _clean_title(text)


def _clean_title(text: str) -> str | None:
    """The title in a model's answer, skipping a preamble such as "Here's a title:".

    Code is never a title: a small model that answers with a code block (its fence's
    language would become the title, "python") gets the first words instead.
    """
    in_code = False
    for raw in text.splitlines():
        if raw.strip().startswith(("```", "~~~")):
            in_code = not in_code
            continue
        if in_code:
            continue
        line = re.sub(r"^(title\s*:\s*)", "", raw.strip(), flags=re.IGNORECASE)
        line = line.strip(" \"'`*#.").strip()
        if not line or _TITLE_PREAMBLE.search(line):
            continue
        return _shorten(line) if len(line) <= _TITLE_MAX_CHARS * 2 else None
    return None


def _title_from_text(text: str) -> str | None:
    words = text.split()
    if not words:
        return None
    title = " ".join(words[:_TITLE_FALLBACK_WORDS])
    if len(words) > _TITLE_FALLBACK_WORDS:
        title += "…"
    return _shorten(title)


def _shorten(title: str) -> str:
    return title if len(title) <= _TITLE_MAX_CHARS else title[: _TITLE_MAX_CHARS - 1] + "…"
