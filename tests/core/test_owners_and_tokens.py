"""Owners of sessions as the API sees them, and the API token store."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatdesk.sessions import SessionManager
from chatdesk.storage.api_tokens import TokenNameError, TokenStore, hash_token
from tests.core.conftest import query


async def test_an_owners_list_includes_its_memory_only_sessions_in_activity_order(
    manager: SessionManager, db_path: Path
) -> None:
    older = await manager.create_session("older", owner="alice")
    ghost = await manager.create_session("ghost", owner="alice")
    await manager.create_session("bob's", owner="bob")
    await manager.create_session("desktop")
    newest = await manager.create_session("newest", owner="alice")
    query(db_path, "DELETE FROM sessions WHERE id = ?", (ghost.id,))

    listed = await manager.list_owned_sessions("alice")
    assert [s.id for s in listed] == [newest.id, ghost.id, older.id]
    assert [s.title for s in await manager.list_sessions(owner="alice")] == ["newest", "older"]
    assert [s.title for s in await manager.list_owned_sessions("bob")] == ["bob's"]


async def test_an_owned_lookup_trusts_the_row_and_falls_back_to_memory(
    manager: SessionManager, db_path: Path
) -> None:
    stored = await manager.create_session("stored", owner="alice")
    ghost = await manager.create_session("ghost", owner="alice")
    query(db_path, "DELETE FROM sessions WHERE id = ?", (ghost.id,))
    query(db_path, "UPDATE sessions SET owner = 'bob' WHERE id = ?", (stored.id,))

    assert await manager.get_owned_session(stored.id, "alice") is None
    assert await manager.get_owned_session(stored.id, "bob") is stored
    assert await manager.get_owned_session(ghost.id, "alice") is ghost
    assert await manager.get_owned_session(ghost.id, "bob") is None
    assert await manager.get_owned_session("no-such-id", "alice") is None


async def test_tokens_are_kept_as_hashes_and_map_to_their_names(
    manager: SessionManager, db_path: Path
) -> None:
    tokens = TokenStore(manager.engine)
    token = await tokens.create("alice")
    assert await tokens.owner_of(token) == "alice"
    assert await tokens.owner_of(token + "x") is None
    assert await tokens.owner_of("") is None
    assert query(db_path, "SELECT name, token_hash FROM api_tokens") == [
        ("alice", hash_token(token))
    ]
    assert token.encode() not in db_path.read_bytes()
    with pytest.raises(TokenNameError):
        await tokens.create("alice")
    assert await tokens.revoke("alice") is True
    assert await tokens.revoke("alice") is False
    assert await tokens.owner_of(token) is None
    assert await tokens.list() == []


@pytest.mark.parametrize("name", ["", "local", "Local", "two words", "-dash", "x" * 65, "ä"])
async def test_a_token_cannot_be_named_after_the_desktop_user_or_oddly(
    manager: SessionManager, name: str
) -> None:
    with pytest.raises(TokenNameError):
        await TokenStore(manager.engine).create(name)


async def test_a_hand_written_local_token_row_reaches_nothing(
    manager: SessionManager, db_path: Path
) -> None:
    query(
        db_path,
        "INSERT INTO api_tokens (name, token_hash, created_at) VALUES ('local', ?, 0)",
        (hash_token("cd_sneaky"),),
    )
    assert await TokenStore(manager.engine).owner_of("cd_sneaky") is None


async def test_housekeeping_leaves_empty_sessions_of_api_owners_alone(
    manager: SessionManager, db_path: Path
) -> None:
    mine = await manager.create_session("desktop, empty")
    theirs = await manager.create_session("script's, empty", owner="alice")
    query(db_path, "UPDATE sessions SET created_at = created_at - 7200")
    assert await manager.cleanup_empty_sessions() == 1
    assert await manager.get_session(mine.id) is None
    assert await manager.get_owned_session(theirs.id, "alice") is theirs
