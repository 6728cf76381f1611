"""Full-text search: ranking, snippets, hostile queries, and the index kept right by every write."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from chatdesk.domain import ImportedChat, Message, Session, content_text
from chatdesk.sessions import SessionManager
from chatdesk.storage import open_database
from chatdesk.storage.content_codec import decode_content, image_refs
from chatdesk.storage.database import MIGRATIONS
from chatdesk.storage.search import match_expression
from tests.core.conftest import png_data_url, query


def index_problems(db_path: Path) -> list[str]:
    """Differences between the index and the rows it should describe (empty when right)."""
    connection = sqlite3.connect(db_path)
    try:
        connection.execute("INSERT INTO search_fts (search_fts) VALUES ('integrity-check')")
        docs = {
            doc_id: (session_id, title, body)
            for doc_id, session_id, title, body in connection.execute(
                "SELECT doc_id, session_id, title, body FROM search_docs"
            )
        }
        expected = {
            sid: (sid, title, "")
            for sid, title in connection.execute("SELECT id, title FROM sessions")
        }
        for mid, sid, content_type, cell in connection.execute(
            "SELECT id, session_id, content_type, content FROM messages"
        ):
            # Images are not needed for the text: give every referenced image as missing
            # bytes would make decoding fail, so compare with the text parts directly.
            if content_type == "blocks":
                content, _ = decode_content("blocks", cell, {h: _PNG for h in image_refs(cell)})
            else:
                content = cell
            expected[mid] = (sid, "", content_text(content))
    finally:
        connection.close()
    problems = [
        f"{k}: index {docs.get(k)!r} != rows {v!r}" for k, v in expected.items() if docs.get(k) != v
    ]
    problems += [f"{k}: indexed but not stored" for k in docs.keys() - expected.keys()]
    return problems


_PNG = __import__("base64").b64decode(png_data_url().split(",", 1)[1])


async def test_ranking_snippets_and_highlights(manager: SessionManager, db_path: Path) -> None:
    once = await manager.create_session("Gardening")
    await manager.add_message(once.id, "user", "The tomato plants need water every morning.")
    many = await manager.create_session("Cooking")
    await manager.add_message(
        many.id, "assistant", "Tomato sauce: tomato, garlic, more tomato and olive oil."
    )
    await manager.add_message(many.id, "user", "Something unrelated entirely.")

    hits = await manager.search("tomato")
    assert [h.session_id for h in hits] == [many.id, once.id]
    best = hits[0]
    assert best.message_id == many.history[0].id
    assert best.title == "Cooking"
    assert best.created_at == many.history[0].created_at
    marked = [best.snippet[a:b] for a, b in best.highlights]
    assert marked == ["Tomato", "tomato", "tomato"]
    assert index_problems(db_path) == []


async def test_titles_are_found_and_weigh_more(manager: SessionManager) -> None:
    titled = await manager.create_session("Holiday in Portugal")
    other = await manager.create_session("Chat")
    await manager.add_message(other.id, "user", "portugal " + "filler words " * 30)
    hits = await manager.search("portugal")
    assert hits[0].session_id == titled.id and hits[0].message_id is None
    assert hits[0].snippet == "Holiday in Portugal"
    titles = await manager.search("portug", titles_only=True)
    assert [h.session_id for h in titles] == [titled.id]


async def test_diacritics_prefix_and_all_words(manager: SessionManager) -> None:
    session = await manager.create_session()
    await manager.add_message(session.id, "user", "Crème brûlée au café, s'il vous plaît")
    await manager.add_message(session.id, "user", "creme only")
    assert len(await manager.search("CREME brulee")) == 1
    assert len(await manager.search("brûl")) == 1  # prefix on the last word
    assert len(await manager.search("bru cafe")) == 0  # but not on the others
    assert len(await manager.search("creme")) == 2
    assert await manager.search("creme zzzunknown") == []


async def test_only_the_text_parts_of_a_multimodal_message_are_indexed(
    manager: SessionManager, db_path: Path
) -> None:
    session = await manager.create_session()
    image = png_data_url()
    await manager.add_message(
        session.id,
        "user",
        [
            {"type": "text", "text": "what colour is this square"},
            {"type": "image_url", "image_url": {"url": image}},
            {"type": "text", "text": "second part"},
        ],
    )
    assert len(await manager.search("colour square")) == 1
    assert len(await manager.search("second")) == 1
    for not_text in ("image_url", "chatdesk", "png", "iVBORw0KGgo", "type"):
        assert await manager.search(not_text) == [], not_text
    assert query(db_path, "SELECT body FROM search_docs WHERE doc_id != session_id") == [
        ("what colour is this square\nsecond part",)
    ]


HOSTILE = [
    '"',
    '""',
    'say "hi',
    "*",
    "foo*",
    "-foo",
    "foo -bar",
    "NEAR(a b, 2)",
    "NEAR",
    "a AND",
    "OR",
    "NOT x",
    "(",
    "((a)",
    ")]}",
    "title:foo",
    "{title}: foo",
    "^start",
    "a + b",
    "'; DROP TABLE messages; --",
    "\x00",
    "col : x",
    "🙂",
    "x" * 5000,
    "  ",
    "",
]


@pytest.mark.parametrize("hostile", HOSTILE)
async def test_any_query_text_is_safe(manager: SessionManager, hostile: str) -> None:
    session = await manager.create_session("AND OR NOT")
    await manager.add_message(session.id, "user", 'say "hi there" -foo NEAR(a b) 🙂 foo*bar')
    hits = await manager.search(hostile)
    assert isinstance(hits, list)
    assert query(Path(str(manager.database_path)), "SELECT count(*) FROM messages") == [(1,)]


async def test_words_with_fts_syntax_are_matched_literally(manager: SessionManager) -> None:
    session = await manager.create_session()
    await manager.add_message(session.id, "user", "the NEAR keyword and OR operators")
    assert len(await manager.search("NEAR")) == 1
    assert len(await manager.search("OR operators")) == 1
    assert len(await manager.search("-keyword")) == 1  # "-" is not NOT
    assert match_expression('a "b') == '"a" """b"*'
    assert match_expression("* - ()") is None


async def test_the_trash_and_other_owners_are_left_out(manager: SessionManager) -> None:
    mine = await manager.create_session("mine")
    await manager.add_message(mine.id, "user", "zebra stripes")
    theirs = await manager.create_session("theirs", owner="api-user")
    await manager.add_message(theirs.id, "user", "zebra crossing")
    assert len(await manager.search("zebra")) == 2
    assert [h.session_id for h in await manager.search("zebra", owner="api-user")] == [theirs.id]
    await manager.trash_session(mine.id)
    assert [h.session_id for h in await manager.search("zebra")] == [theirs.id]
    await manager.restore_session(mine.id)
    assert len(await manager.search("zebra")) == 2


async def test_limit_and_search_within_one_chat(manager: SessionManager) -> None:
    session = await manager.create_session()
    for i in range(12):
        await manager.add_message(session.id, "user", f"apple number {i}")
    other = await manager.create_session()
    await manager.add_message(other.id, "user", "apple elsewhere")
    assert len(await manager.search("apple", limit=5)) == 5
    within = await manager.matching_message_ids(session.id, "apple")
    assert within == {m.id for m in session.history}


async def test_every_kind_of_write_keeps_the_index_right(
    manager: SessionManager, db_path: Path
) -> None:
    session = await manager.create_session("first title")
    user = await manager.add_message(session.id, "user", "alpha question")
    assert index_problems(db_path) == []

    # A streamed reply: flushes while streaming, then the final text.
    reply = await manager.add_message(session.id, "assistant", "", status="streaming")
    await manager.update_message(session.id, reply.id, content="partial beta", persist=True)
    assert len(await manager.search("beta")) == 1
    await manager.update_message(session.id, reply.id, content="in memory only", persist=False)
    assert await manager.search("memory") == []
    await manager.update_message(
        session.id, reply.id, content="final gamma answer", status="complete"
    )
    assert await manager.search("beta") == []
    assert [h.message_id for h in await manager.search("gamma")] == [reply.id]
    assert index_problems(db_path) == []

    await manager.update_session(session.id, title="renamed delta")
    assert [h.session_id for h in await manager.search("delta")] == [session.id]
    assert await manager.search("first title") == []

    # Replace (what edit, regenerate and compaction do) and truncate.
    await manager.replace_messages(
        session.id,
        [
            user,
            {"role": "assistant", "content": [{"type": "text", "text": "summary epsilon"}]},
        ],
    )
    assert await manager.search("gamma") == []
    assert len(await manager.search("epsilon")) == 1
    assert index_problems(db_path) == []
    await manager.truncate_messages(session.id, 1)
    assert await manager.search("epsilon") == []
    assert len(await manager.search("alpha")) == 1
    assert index_problems(db_path) == []

    branch = await manager.branch_session(session.id, user.id)
    assert len(await manager.search("alpha")) == 2
    await manager.import_chats(
        [
            ImportedChat(
                Session(title="imported zeta", history=[Message("user", "imported eta")]),
                "test:1",
            )
        ]
    )
    assert len(await manager.search("eta")) == 1
    assert index_problems(db_path) == []

    await manager.delete_session(branch.id)
    await manager.delete_session(session.id)
    assert await manager.search("alpha") == []
    empty = await manager.create_session("empty theta")
    from datetime import timedelta

    assert await manager.cleanup_empty_sessions(min_age=timedelta(0)) >= 1
    assert await manager.search("theta") == []
    assert await manager.get_session(empty.id) is None
    assert index_problems(db_path) == []


async def test_a_failed_write_leaves_the_index_as_it_was(
    manager: SessionManager, db_path: Path
) -> None:
    session = await manager.create_session()
    await manager.add_message(session.id, "user", "kept words")
    with pytest.raises(ValueError):
        await manager.replace_messages(
            session.id, [{"role": "user", "content": "lost words"}, {"role": "bad", "content": ""}]
        )
    assert len(await manager.search("kept")) == 1
    assert await manager.search("lost") == []
    assert index_problems(db_path) == []


async def test_the_migration_indexes_an_existing_database(db_url: str, db_path: Path) -> None:
    engine = await open_database(db_url, migrations=MIGRATIONS[:1])
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO sessions (id, title, created_at, updated_at, message_count) "
                "VALUES ('s1', 'Old chat about herons', 1.0, 2.0, 2)"
            )
        )
        await conn.execute(
            text(
                "INSERT INTO messages (id, session_id, position, role, content_type, content, "
                "created_at) VALUES ('m1', 's1', 0, 'user', 'text', 'grey heron by the lake', 1.0),"
                " ('m2', 's1', 1, 'assistant', 'blocks', "
                """'[{"type": "text", "text": "a wading bird"}]', 1.5)"""
            )
        )
    await engine.dispose()

    manager = await SessionManager.open(db_url)
    try:
        assert [h.message_id for h in await manager.search("lake")] == ["m1"]
        assert [h.message_id for h in await manager.search("wading")] == ["m2"]
        assert [h.message_id for h in await manager.search("herons")] == [None]
        assert index_problems(db_path) == []
    finally:
        await manager.close()


async def test_a_blocks_cell_that_is_not_json_is_indexed_as_text(
    manager: SessionManager, db_path: Path
) -> None:
    session = await manager.create_session()
    query(
        db_path,
        "INSERT INTO messages (id, session_id, position, role, content_type, content, created_at)"
        " VALUES ('broken', ?, 0, 'user', 'blocks', 'not json kiwi', 1.0)",
        (session.id,),
    )
    assert [h.message_id for h in await manager.search("kiwi")] == ["broken"]


async def test_a_long_message_gives_a_snippet_around_the_match(manager: SessionManager) -> None:
    session = await manager.create_session()
    words = [f"filler{i}" for i in range(200)]
    words[120] = "Mañana"
    await manager.add_message(session.id, "user", " ".join(words))
    (hit,) = await manager.search("manana")
    assert hit.snippet.startswith("…") and hit.snippet.endswith("…")
    assert len(hit.snippet.split()) <= 16
    assert [hit.snippet[a:b] for a, b in hit.highlights] == ["Mañana"]


async def test_the_best_hits_are_chosen_among_the_newest_matches(
    manager: SessionManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chatdesk.storage import search as search_storage

    session = await manager.create_session()
    best = await manager.add_message(session.id, "user", "heron heron heron heron")
    for i in range(5):
        await manager.add_message(session.id, "user", f"heron and {i} other words here")
    assert (await manager.search("heron"))[0].message_id == best.id
    monkeypatch.setattr(search_storage, "RANK_WINDOW", 3)
    hits = await manager.search("heron")
    assert len(hits) == 3 and best.id not in {h.message_id for h in hits}


async def test_a_query_matching_very_many_messages_lists_the_newest_first(
    manager: SessionManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chatdesk.storage import search as search_storage

    session = await manager.create_session()
    best = await manager.add_message(session.id, "user", "otter otter otter otter")
    newer = [
        await manager.add_message(session.id, "user", f"otter and {i} more words here")
        for i in range(4)
    ]
    monkeypatch.setattr(search_storage, "COMMON_MATCHES", 3)
    hits = await manager.search("otter")
    assert [h.message_id for h in hits] == [m.id for m in reversed(newer)] + [best.id]
