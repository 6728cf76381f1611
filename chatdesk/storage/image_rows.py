"""SQL over the ``images`` and ``message_images`` tables: the image store.

Image bytes are stored once per SHA-256 and linked to each message that shows them; an
image no message links to any more is deleted by :func:`delete_orphan_images`, which
every write that can unlink one calls before it commits.
"""

from __future__ import annotations

from sqlalchemy import Table, delete, exists, insert, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from chatdesk.storage import tables
from chatdesk.storage.database import in_chunks


async def store_images(
    conn: AsyncConnection,
    message_id: str,
    found: dict[str, bytes],
    *,
    links: Table = tables.message_images,
) -> None:
    """Store the images ``found`` (by hash) not stored yet, and link them to the message.

    ``links`` is the table of links: ``compacted_message_images`` for an archived message.
    """
    if not found:
        return
    await conn.execute(
        sqlite_insert(tables.images).on_conflict_do_nothing(),
        [{"sha256": h, "data": data, "size": len(data)} for h, data in found.items()],
    )
    await conn.execute(insert(links), [{"message_id": message_id, "sha256": h} for h in found])


async def unlink_images(conn: AsyncConnection, message_id: str) -> None:
    """Drop the links from message ``message_id`` to its images."""
    await conn.execute(
        delete(tables.message_images).where(tables.message_images.c.message_id == message_id)
    )


async def load_images(conn: AsyncConnection, hashes: set[str]) -> dict[str, bytes]:
    """The stored bytes of each image in ``hashes`` that exists, by hash."""
    found: dict[str, bytes] = {}
    i = tables.images.c
    for chunk in in_chunks(sorted(hashes)):
        rows = await conn.execute(select(i.sha256, i.data).where(i.sha256.in_(chunk)))
        found.update({h: bytes(d) for h, d in rows})
    return found


async def delete_orphan_images(conn: AsyncConnection) -> None:
    """Delete every image no message links to (compacted messages and stored versions
    of turns included)."""
    i, mi = tables.images.c, tables.message_images.c
    ci = tables.compacted_message_images.c
    vi = tables.turn_version_images.c
    await conn.execute(
        delete(tables.images).where(
            ~exists().where(mi.sha256 == i.sha256),
            ~exists().where(ci.sha256 == i.sha256),
            ~exists().where(vi.sha256 == i.sha256),
        )
    )
