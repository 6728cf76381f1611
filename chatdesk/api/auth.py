"""Who is calling: a bearer token maps to its owner; no or an unknown token is a 403."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from chatdesk.storage.api_tokens import TokenStore

NO_ACCESS = "A valid API token is required: send 'Authorization: Bearer TOKEN'."

_bearer = HTTPBearer(
    auto_error=False,
    description="A token made with `chatdesk token create NAME` or in Settings → Local API.",
)


async def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The owner (token name) of the request's token; 403 without a valid one."""
    if credentials is None:
        raise HTTPException(status_code=403, detail=NO_ACCESS)
    tokens: TokenStore = request.app.state.context.tokens
    owner = await tokens.owner_of(credentials.credentials)
    if owner is None:
        raise HTTPException(status_code=403, detail=NO_ACCESS)
    return owner


Caller = Annotated[str, Depends(caller)]
