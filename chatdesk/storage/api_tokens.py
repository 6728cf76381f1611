"""Tokens of the local HTTP API: created once, stored as hashes, looked up per request.

A token is a long random string shown to the user exactly once; the database keeps only
its SHA-256 hash. A random token of 256 bits needs no slow password hash: nobody can
guess one from its hash, and the lookup by hash is a single indexed read, cheap enough
to do on every request (so a token revoked by another process stops working at once).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from chatdesk.domain import utcnow
from chatdesk.storage import tables
from chatdesk.storage.database import storage_error

# The owner of the desktop user's own sessions: never a token's name, so no token can
# reach them.
LOCAL_OWNER = "local"
TOKEN_PREFIX = "cd_"
MAX_NAME_LENGTH = 64
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class TokenNameError(ValueError):
    """A token name that cannot be used (empty, reserved, taken or with odd characters)."""


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What is known of a stored token (never the token itself)."""

    name: str
    created_at: datetime


def hash_token(token: str) -> str:
    """The stored form of ``token``."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_token_name(name: str) -> str:
    """``name`` if it can name a token (and so own sessions); else TokenNameError."""
    if not name:
        raise TokenNameError("a token needs a name")
    if len(name) > MAX_NAME_LENGTH:
        raise TokenNameError(f"a token name has at most {MAX_NAME_LENGTH} characters")
    if not _NAME.fullmatch(name):
        raise TokenNameError(
            f"token name {name!r}: use letters, digits, '.', '_' and '-', starting with a "
            "letter or digit"
        )
    if name.lower() == LOCAL_OWNER:
        raise TokenNameError(f"{LOCAL_OWNER!r} is the desktop user's own name; choose another")
    return name


class TokenStore:
    """Creates, lists, revokes and checks API tokens in the ChatDesk database."""

    def __init__(self, engine: AsyncEngine) -> None:
        """``engine`` is an open, migrated database (the SessionManager's)."""
        self._engine = engine

    async def create(self, name: str) -> str:
        """Store a new token called ``name`` and return it (the only time it is seen)."""
        check_token_name(name)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = {"name": name, "token_hash": hash_token(token), "created_at": utcnow()}
        try:
            async with self._engine.begin() as conn:
                await conn.execute(insert(tables.api_tokens).values(**row))
        except IntegrityError:
            raise TokenNameError(f"a token called {name!r} exists already") from None
        except DBAPIError as exc:
            raise storage_error(None, exc) from exc
        return token

    async def list(self) -> list[TokenInfo]:
        """Every token's name and creation time, by name."""
        t = tables.api_tokens.c
        try:
            async with self._engine.connect() as conn:
                rows = await conn.execute(select(t.name, t.created_at).order_by(t.name))
                return [TokenInfo(name, created) for name, created in rows]
        except DBAPIError as exc:
            raise storage_error(None, exc) from exc

    async def revoke(self, name: str) -> bool:
        """Delete the token called ``name``; False when there was none.

        The sessions it made stay (their owner keeps the name).
        """
        try:
            async with self._engine.begin() as conn:
                result = await conn.execute(
                    delete(tables.api_tokens).where(tables.api_tokens.c.name == name)
                )
        except DBAPIError as exc:
            raise storage_error(None, exc) from exc
        return result.rowcount > 0

    async def owner_of(self, token: str) -> str | None:
        """The name (owner) of ``token``, or None when it is unknown or revoked."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        t = tables.api_tokens.c
        try:
            async with self._engine.connect() as conn:
                name: str | None = (
                    await conn.execute(select(t.name).where(t.token_hash == hash_token(token)))
                ).scalar()
        except DBAPIError as exc:
            raise storage_error(None, exc) from exc
        # A name that slipped past check_token_name (written by hand) never reaches "local".
        if name is None or name.lower() == LOCAL_OWNER:
            return None
        return name
