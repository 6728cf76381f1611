"""Full-text search: the FTS5 index over message text and session titles, and its queries.

The index is kept by SQLite triggers on ``messages`` and ``sessions``, so it changes in
the same transaction as the rows it describes, whichever code path writes them (add,
the flushes and final text of a streamed reply, replace, truncate, delete, compaction,
import). ``search_docs`` holds one row per message (its text parts, images left out) and
one per session (its title); ``search_fts`` is an external-content FTS5 table over it.
``search_docs`` has its own INTEGER PRIMARY KEY, so its rowids survive a VACUUM (the
implicit rowids of ``messages`` would not).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection

# Marks the matched words in a snippet; stripped again before a hit leaves this module.
_MARK_START = "\x02"
_MARK_END = "\x03"
SNIPPET_WORDS = 16


def _text_of(row: str) -> str:
    """SQL for the searchable text of a ``messages`` row (``new`` or ``old``)."""
    # Plain content is its own text; block content contributes its text blocks only.
    # A blocks cell that is not valid JSON is indexed as it is rather than failing the
    # write: the message is still stored, and still found.
    return (
        f"CASE WHEN {row}.content_type = 'blocks' AND json_valid({row}.content) THEN "
        "coalesce((SELECT group_concat(json_extract(CASE WHEN type = 'object' THEN value END,"
        " '$.text'), char(10)) FROM json_each("
        f"{row}.content) WHERE json_extract(CASE WHEN type = 'object' THEN value END, '$.type')"
        f" = 'text'), '') ELSE {row}.content END"
    )


# Part of the schema migration that adds search; also run to rebuild a damaged index.
SEARCH_SCHEMA = (
    "CREATE TABLE search_docs (rowid INTEGER PRIMARY KEY, doc_id VARCHAR NOT NULL, "
    "session_id VARCHAR NOT NULL, title TEXT NOT NULL DEFAULT '', body TEXT NOT NULL DEFAULT '')",
    "CREATE UNIQUE INDEX ux_search_docs_doc_id ON search_docs (doc_id)",
    "CREATE VIRTUAL TABLE search_fts USING fts5(title, body, content='search_docs', "
    "content_rowid='rowid', tokenize='unicode61 remove_diacritics 2')",
    # search_docs -> search_fts, the documented external-content pattern.
    "CREATE TRIGGER search_docs_ai AFTER INSERT ON search_docs BEGIN "
    "INSERT INTO search_fts (rowid, title, body) VALUES (new.rowid, new.title, new.body); END",
    "CREATE TRIGGER search_docs_ad AFTER DELETE ON search_docs BEGIN "
    "INSERT INTO search_fts (search_fts, rowid, title, body) "
    "VALUES ('delete', old.rowid, old.title, old.body); END",
    "CREATE TRIGGER search_docs_au AFTER UPDATE ON search_docs BEGIN "
    "INSERT INTO search_fts (search_fts, rowid, title, body) "
    "VALUES ('delete', old.rowid, old.title, old.body); "
    "INSERT INTO search_fts (rowid, title, body) VALUES (new.rowid, new.title, new.body); END",
    # messages -> search_docs (a cascade from a deleted session fires these too).
    "CREATE TRIGGER messages_search_ai AFTER INSERT ON messages BEGIN "
    "INSERT INTO search_docs (doc_id, session_id, body) "
    f"VALUES (new.id, new.session_id, {_text_of('new')}); END",
    "CREATE TRIGGER messages_search_ad AFTER DELETE ON messages BEGIN "
    "DELETE FROM search_docs WHERE doc_id = old.id; END",
    "CREATE TRIGGER messages_search_au AFTER UPDATE OF content, content_type ON messages "
    "WHEN old.content IS NOT new.content OR old.content_type IS NOT new.content_type BEGIN "
    f"UPDATE search_docs SET body = {_text_of('new')} WHERE doc_id = new.id; END",
    # sessions -> search_docs: the title.
    "CREATE TRIGGER sessions_search_ai AFTER INSERT ON sessions BEGIN "
    "INSERT INTO search_docs (doc_id, session_id, title) VALUES (new.id, new.id, new.title); END",
    "CREATE TRIGGER sessions_search_ad AFTER DELETE ON sessions BEGIN "
    "DELETE FROM search_docs WHERE doc_id = old.id; END",
    "CREATE TRIGGER sessions_search_au AFTER UPDATE OF title ON sessions "
    "WHEN old.title IS NOT new.title BEGIN "
    "UPDATE search_docs SET title = new.title WHERE doc_id = new.id; END",
)

# Fills search_docs from the rows already there (a migrated database).
_FILL_FROM_EXISTING = (
    "INSERT INTO search_docs (doc_id, session_id, title) SELECT id, id, title FROM sessions",
    "INSERT INTO search_docs (doc_id, session_id, body) "
    f"SELECT new.id, new.session_id, {_text_of('new')} FROM messages AS new",
)


def create_search_index(connection: Connection) -> None:
    """Create the index and its triggers, and index every row already stored."""
    for statement in (*SEARCH_SCHEMA, *_FILL_FROM_EXISTING):
        connection.execute(text(statement))


# -- queries ------------------------------------------------------------------------------

_WORD = re.compile(r"\w", re.UNICODE)


def match_expression(query: str, *, column: str | None = None) -> str | None:
    """An FTS5 MATCH expression for what a person typed, or None if it has no words.

    Every whitespace-separated term is quoted (so ``"``, ``*``, ``-``, ``NEAR``, ``AND``,
    brackets and the like are plain text, never FTS syntax) and all must match; the last
    term also matches as a prefix, so results come as the user types.
    """
    terms = [t for t in query.split() if _WORD.search(t)]
    if not terms:
        return None
    quoted = ['"' + t.replace('"', '""') + '"' for t in terms]
    quoted[-1] += "*"
    expression = " ".join(quoted)
    if column is not None:
        expression = f"{{{column}}} : ({expression})"
    return expression


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One search result: a message (or a title, when ``message_id`` is None)."""

    session_id: str
    message_id: str | None
    title: str
    snippet: str
    created_at: datetime
    # (start, end) character offsets in ``snippet`` of the words that matched.
    highlights: tuple[tuple[int, int], ...] = ()


def split_marks(marked: str) -> tuple[str, tuple[tuple[int, int], ...]]:
    """Strip the highlight marks from a snippet, returning the text and the marked spans."""
    out: list[str] = []
    spans: list[tuple[int, int]] = []
    length = 0
    start: int | None = None
    for char in marked:
        if char == _MARK_START:
            start = length
        elif char == _MARK_END:
            if start is not None and length > start:
                spans.append((start, length))
            start = None
        else:
            out.append(char)
            length += 1
    return "".join(out), tuple(spans)


_SEARCH_SQL = f"""
SELECT d.session_id, d.doc_id, s.title, s.created_at AS session_created,
       m.created_at AS message_created,
       CASE WHEN d.doc_id = d.session_id
            THEN snippet(search_fts, 0, '{_MARK_START}', '{_MARK_END}', '…', {SNIPPET_WORDS})
            ELSE snippet(search_fts, 1, '{_MARK_START}', '{_MARK_END}', '…', {SNIPPET_WORDS})
       END AS marked
FROM search_fts
JOIN search_docs AS d ON d.rowid = search_fts.rowid
JOIN sessions AS s ON s.id = d.session_id
LEFT JOIN messages AS m ON m.id = d.doc_id AND d.doc_id != d.session_id
WHERE search_fts MATCH :match
  AND s.trashed_at IS NULL
  AND (:owner IS NULL OR s.owner = :owner)
  AND (:session IS NULL OR d.session_id = :session)
ORDER BY bm25(search_fts, 2.0, 1.0)
LIMIT :limit
"""


async def search(
    conn: AsyncConnection,
    query: str,
    *,
    owner: str | None,
    limit: int,
    session_id: str | None = None,
    titles_only: bool = False,
) -> list[SearchHit]:
    """The best ``limit`` hits for ``query`` (bm25, titles weighted double), trash left out."""
    expression = match_expression(query, column="title" if titles_only else None)
    if expression is None or limit <= 0:
        return []
    rows = await conn.execute(
        text(_SEARCH_SQL),
        {"match": expression, "owner": owner, "limit": limit, "session": session_id},
    )
    hits = []
    for row in rows:
        snippet, spans = split_marks(row.marked or "")
        is_title = row.doc_id == row.session_id
        stamp = row.session_created if is_title else row.message_created
        hits.append(
            SearchHit(
                session_id=row.session_id,
                message_id=None if is_title else row.doc_id,
                title=row.title,
                snippet=snippet,
                created_at=datetime.fromtimestamp(stamp or 0.0, UTC),
                highlights=spans,
            )
        )
    return hits


async def matching_message_ids(conn: AsyncConnection, session_id: str, query: str) -> set[str]:
    """The ids of the messages of one session whose text matches ``query``."""
    expression = match_expression(query, column="body")
    if expression is None:
        return set()
    rows = await conn.execute(
        text(
            "SELECT d.doc_id FROM search_fts JOIN search_docs AS d ON d.rowid = search_fts.rowid "
            "WHERE search_fts MATCH :match AND d.session_id = :session "
            "AND d.doc_id != d.session_id"
        ),
        {"match": expression, "session": session_id},
    )
    return {r[0] for r in rows}
