"""Any text a person can type into search is safe: no error, no FTS syntax let through."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatdesk.sessions import SessionManager
from chatdesk.settings import sqlite_url

WORDS = ("heron", "lake", "near", "not", "and", "or", "café", "naïve", "data")


class _SeededSearch:
    """One manager over a small real database, shared by every Hypothesis example."""

    def __init__(self, folder: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.manager = self.run(SessionManager.open(sqlite_url(folder / "chat.db")))
        self.message_ids: dict[str, str] = {}
        for word in WORDS:
            session = self.run(self.manager.create_session(f"About {word}"))
            message = self.run(
                self.manager.add_message(session.id, "user", f"a note on {word} today")
            )
            self.message_ids[word] = message.id

    def run(self, awaitable):  # type: ignore[no-untyped-def]
        return self.loop.run_until_complete(awaitable)

    def close(self) -> None:
        self.run(self.manager.close())
        self.loop.close()


@pytest.fixture(scope="module")
def seeded() -> Iterator[_SeededSearch]:
    with tempfile.TemporaryDirectory() as folder:
        search = _SeededSearch(Path(folder))
        try:
            yield search
        finally:
            search.close()


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.text()
    | st.lists(
        st.sampled_from(['"', "*", "-", "(", ")", "NEAR", "NOT", "AND", "OR", ":", "^", "heron"])
    ).map(" ".join)
)
def test_any_query_text_searches_without_error(seeded: _SeededSearch, query: str) -> None:
    hits = seeded.run(seeded.manager.search(query))
    assert len(hits) <= 50
    known = set(seeded.message_ids.values())
    assert all(hit.message_id is None or hit.message_id in known for hit in hits)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.sampled_from(WORDS), st.sampled_from(['"', "*", "-", "(", ")", "^", ":", ""]))
def test_a_word_is_found_literally_whatever_surrounds_it(
    seeded: _SeededSearch, word: str, noise: str
) -> None:
    hits = seeded.run(seeded.manager.search(f"{noise}{word}{noise}"))
    assert seeded.message_ids[word] in {hit.message_id for hit in hits}
