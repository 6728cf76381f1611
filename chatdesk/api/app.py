"""The FastAPI application: routes, the body-size cap and error bodies."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from chatdesk import __version__
from chatdesk.api import openai_routes, sessions_routes
from chatdesk.api.context import ApiContext
from chatdesk.api.limits import MAX_BODY_BYTES, BodySizeLimit


def create_app(context: ApiContext, *, max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    """The ASGI application of the local API over ``context``."""
    app = FastAPI(
        title="ChatDesk local API",
        version=__version__,
        description="Sessions with owners, and an OpenAI-compatible endpoint.",
    )
    app.state.context = context
    app.include_router(sessions_routes.router)
    app.include_router(openai_routes.router)
    app.add_middleware(BodySizeLimit, limit=max_body_bytes)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """Errors as ``{"detail"}``, and under /v1 also the way OpenAI words them."""
        body: dict[str, object] = {"detail": exc.detail}
        if request.url.path.startswith("/v1/"):
            kind = "invalid_request_error" if exc.status_code < 500 else "server_error"
            body["error"] = {
                "message": exc.detail,
                "type": kind,
                "param": getattr(exc, "param", None),
                "code": getattr(exc, "code", None),
            }
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        """A body that does not fit the schema: each problem in words; 422, or under /v1
        a 400 as OpenAI answers (its SDK has no retry or type of its own for a 422)."""
        errors = exc.errors()
        problems = [f"{_where(error['loc'])}: {error['msg']}" for error in errors]
        body: dict[str, object] = {"detail": "; ".join(problems) or "Invalid request."}
        if not request.url.path.startswith("/v1/"):
            return JSONResponse(body, status_code=422)
        body["error"] = {
            "message": body["detail"],
            "type": "invalid_request_error",
            "param": _where(errors[0]["loc"]) if errors else None,
            "code": None,
        }
        return JSONResponse(body, status_code=400)

    return app


def _where(location: Sequence[object]) -> str:
    """A validation error's location as OpenAI names a parameter: ``messages[0].role``
    (FastAPI's leading "body" left out)."""
    parts = list(location)
    if parts and parts[0] == "body":
        parts = parts[1:]
    named = ""
    for part in parts:
        if isinstance(part, int):
            named += f"[{part}]"
        else:
            named += f".{part}" if named else str(part)
    return named or "body"
