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
import unicodedata
from datetime import UTC, datetime

from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection

from chatdesk.domain import SearchHit as SearchHit  # re-exported: what search returns

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
    # Prefix indexes for 2 to 4 characters: the last word of a query is matched as a
    # prefix, and without them a short prefix merges thousands of words' lists.
    "CREATE VIRTUAL TABLE search_fts USING fts5(title, body, content='search_docs', "
    "content_rowid='rowid', tokenize='unicode61 remove_diacritics 2', prefix='2 3 4')",
    # Titles weigh double in the ranking.
    "INSERT INTO search_fts (search_fts, rank) VALUES ('rank', 'bm25(2.0, 1.0)')",
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


def match_expression(query: str, *, column: str | None = None, prefix: bool = True) -> str | None:
    """An FTS5 MATCH expression for what a person typed, or None if it has no words.

    Every whitespace-separated term is quoted (so ``"``, ``*``, ``-``, ``NEAR``, ``AND``,
    brackets and the like are plain text, never FTS syntax) and all must match; the last
    term also matches as a prefix, so results come as the user types.
    """
    # FTS5 ends a quoted string at a NUL character ("unterminated string"); no word
    # contains one, so it separates terms like a space.
    terms = [t for t in query.replace("\x00", " ").split() if _WORD.search(t)]
    if not terms:
        return None
    quoted = ['"' + t.replace('"', '""') + '"' for t in terms]
    if prefix:
        quoted[-1] += "*"
    expression = " ".join(quoted)
    if column is not None:
        expression = f"{{{column}}} : ({expression})"
    return expression


# bm25 needs every match's statistics, so ranking all matches of a word found in most
# messages costs seconds over a million messages. The best matches are therefore chosen
# among the newest RANK_WINDOW matches (all of them for any less common word), which is
# also what a person looking for "that answer" usually means.
RANK_WINDOW = 2000
# bm25 also weighs each word by how rare it is, which means reading every match of each
# word: for a query matching more than this many messages that alone takes a tenth of a
# second, and relevance among so many says little, so the newest matches come first.
COMMON_MATCHES = 20_000

_PROBE_SQL = """
SELECT rowid FROM search_fts WHERE search_fts MATCH :match
ORDER BY rowid DESC LIMIT 1 OFFSET :common
"""

_NEWEST_SQL = """
SELECT rowid FROM search_fts WHERE search_fts MATCH :match ORDER BY rowid DESC LIMIT :candidates
"""

_CANDIDATES_SQL = """
SELECT newest.rowid FROM (
    SELECT rowid, rank FROM search_fts WHERE search_fts MATCH :match
    ORDER BY rowid DESC LIMIT :window
) AS newest ORDER BY newest.rank LIMIT :candidates
"""

_DOCS_SQL = """
SELECT d.rowid, d.session_id, d.doc_id, d.title AS doc_title, d.body, s.title,
       s.created_at AS session_created, m.created_at AS message_created
FROM search_docs AS d
JOIN sessions AS s ON s.id = d.session_id
LEFT JOIN messages AS m ON m.id = d.doc_id AND d.doc_id != d.session_id
WHERE d.rowid IN ({rowids})
  AND s.trashed_at IS NULL
  AND (:owner IS NULL OR s.owner = :owner)
  AND (:session IS NULL OR d.session_id = :session)
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
    # Hits in the Trash or of other owners are dropped after ranking: ask for spares.
    spare = 4 if owner is None and session_id is None else 20
    # When the words as typed (the last one whole) are already that common, the newest of
    # those matches are the answer: the prefix would only add the cost of merging every
    # longer word's list (FTS5 reads all of them for a word beyond the prefix indexes).
    exact = match_expression(query, column="title" if titles_only else None, prefix=False)
    common = await _is_common(conn, exact)
    if common:
        expression = exact or expression
    else:
        common = await _is_common(conn, expression)
    ranked = [
        row[0]
        for row in await conn.execute(
            text(_NEWEST_SQL if common else _CANDIDATES_SQL),
            {"match": expression, "window": RANK_WINDOW, "candidates": limit * spare},
        )
    ]
    if not ranked:
        return []
    placeholders = ", ".join(str(int(rowid)) for rowid in ranked)
    rows = {
        row.rowid: row
        for row in await conn.execute(
            text(_DOCS_SQL.format(rowids=placeholders)),
            {"owner": owner, "session": session_id},
        )
    }
    terms, prefix = query_terms(query)
    hits = []
    for rowid in ranked:
        row = rows.get(rowid)
        if row is None:
            continue
        is_title = row.doc_id == row.session_id
        snippet, spans = make_snippet(row.doc_title if is_title else row.body, terms, prefix)
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
        if len(hits) == limit:
            break
    return hits


async def _is_common(conn: AsyncConnection, expression: str | None) -> bool:
    if expression is None:
        return False
    found = await conn.execute(text(_PROBE_SQL), {"match": expression, "common": COMMON_MATCHES})
    return found.first() is not None


# Tokens as FTS5's unicode61 tokenizer sees them: runs of letters and digits.
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


def _fold(word: str) -> str:
    if word.isascii():
        return word.lower()  # nothing to decompose: the common case, kept cheap
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def query_terms(query: str) -> tuple[list[str], str | None]:
    """The folded words of ``query`` matched whole, and the last one matched as a prefix."""
    words = [_fold(t) for term in query.split() for t in _TOKEN.findall(term)]
    if not words:
        return [], None
    return words[:-1], words[-1]


def make_snippet(
    text_: str, terms: list[str], prefix: str | None, words: int = SNIPPET_WORDS
) -> tuple[str, tuple[tuple[int, int], ...]]:
    """About ``words`` words of ``text_`` around its first match, and the matched spans."""
    tokens = list(_TOKEN.finditer(text_))

    def matches(token: str) -> bool:
        folded = _fold(token)
        return folded in terms or (prefix is not None and folded.startswith(prefix))

    hit_positions = [i for i, t in enumerate(tokens) if matches(t.group())]
    if not tokens:
        return text_[:200], ()
    first = hit_positions[0] if hit_positions else 0
    start_token = max(0, min(first - words // 4, len(tokens) - words))
    end_token = min(len(tokens), start_token + words)
    start = 0 if start_token == 0 else tokens[start_token].start()
    end = len(text_) if end_token == len(tokens) else tokens[end_token - 1].end()
    lead = "…" if start > 0 else ""
    tail = "…" if end < len(text_) else ""
    body = " ".join(text_[start:end].split())  # one line, single spaces
    snippet = lead + body + tail
    spans = []
    for match in _TOKEN.finditer(snippet):
        if matches(match.group()):
            spans.append((match.start(), match.end()))
    return snippet, tuple(spans)


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
