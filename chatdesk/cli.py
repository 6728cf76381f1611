"""The ``chatdesk`` subcommands that run without a window (Qt-free).

``chatdesk serve`` runs the local HTTP API headless; ``chatdesk token`` creates, lists
and revokes its tokens; ``chatdesk export`` and ``chatdesk import`` take chats out and
in. ``chatdesk`` without a subcommand starts the window (see :mod:`chatdesk.app`). A
subcommand is one entry of SUBCOMMANDS: a function of its arguments that returns the
exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatdesk.instance import DataFolderInUseError, hold_data_folder
from chatdesk.settings import LOCAL_PROVIDER, StartupOptions, parse_startup_options
from chatdesk.storage.errors import StorageError

if TYPE_CHECKING:
    from chatdesk.runtime import Core

log = logging.getLogger(__name__)


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """``--data-dir`` and ``--database-url``, as the window takes them."""
    parser.add_argument("--data-dir", type=Path, help="folder for the database and settings")
    parser.add_argument("--database-url", help="SQLAlchemy SQLite URL of the database")


def add_provider_options(parser: argparse.ArgumentParser) -> None:
    """``--provider``, ``--base-url`` and ``--model``, as the window takes them."""
    parser.add_argument(
        "--provider", choices=(LOCAL_PROVIDER, "openai"), help="default model backend"
    )
    parser.add_argument("--base-url", help="base URL of an OpenAI-compatible server")
    parser.add_argument("--model", help="model name (or a .gguf path for the local provider)")


def startup_options(args: argparse.Namespace) -> StartupOptions:
    """The StartupOptions of a subcommand's arguments (environment applied as for the window)."""
    argv: list[str] = []
    for flag, name in (
        ("--data-dir", "data_dir"),
        ("--database-url", "database_url"),
        ("--provider", "provider"),
        ("--base-url", "base_url"),
        ("--model", "model"),
    ):
        value = getattr(args, name, None)
        if value is not None:
            argv += [flag, str(value)]
    return parse_startup_options(argv)


# -- serve -----------------------------------------------------------------------------


def serve_command(argv: Sequence[str]) -> int:
    """``chatdesk serve [--host H] [--port P] [--allow-remote] [data and provider options]``."""
    from chatdesk.api.server import DEFAULT_HOST, DEFAULT_PORT, is_loopback

    parser = argparse.ArgumentParser(
        prog="chatdesk serve", description="Run the local HTTP API without a window."
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (0: any free one)")
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host other machines can reach (anyone with a token can then use it)",
    )
    add_data_options(parser)
    add_provider_options(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not is_loopback(args.host):
        if not args.allow_remote:
            print(
                f"chatdesk serve: {args.host} can be reached from other machines; add "
                "--allow-remote to serve there anyway.",
                file=sys.stderr,
            )
            return 2
        log.warning(
            "serving on %s: other machines can reach the API; anyone with a token can read "
            "and write that token's chats, and traffic is not encrypted",
            args.host,
        )
    options = startup_options(args)
    try:
        # Held while serving: a window or a second `serve` on this folder is refused.
        with hold_data_folder(options.data_dir, "serve its chats", role="serve"):
            return asyncio.run(serve(options, args.host, args.port))
    except DataFolderInUseError as exc:
        print(f"chatdesk serve: {exc}", file=sys.stderr)
        return 1


async def serve(options: StartupOptions, host: str, port: int) -> int:
    """Run the API and the scheduled tasks until SIGTERM or SIGINT; replies in flight end
    stored as cancelled."""
    from chatdesk.api.context import ApiContext
    from chatdesk.api.server import ApiServer
    from chatdesk.runtime import open_core
    from chatdesk.scheduler import TaskScheduler
    from chatdesk.storage.api_tokens import TokenStore

    try:
        core = await open_core(options)
    except StorageError as exc:
        print(f"chatdesk serve: {exc}", file=sys.stderr)
        return 1
    await offer_command_line_server(core)
    tokens = TokenStore(core.manager.engine)
    server = ApiServer(
        ApiContext(core.manager, core.engine, core.registry, tokens), host, port, access_log=True
    )
    scheduler = TaskScheduler(core.manager, core.engine)
    try:
        try:
            await server.start()
        except OSError as exc:
            print(f"chatdesk serve: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
            return 1
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        log.info("ChatDesk API serving on %s (database %s)", server.url, options.database_url)
        try:
            await scheduler.start()
        except StorageError as exc:  # the API still serves; the tasks wait for a restart
            log.error("scheduled tasks could not start: %s", exc)
        else:
            log.info("%d scheduled task(s) loaded", len(scheduler.list_tasks()))
        if not await tokens.list():
            log.warning("no API tokens yet: make one with `chatdesk token create NAME`")
        waiting = asyncio.ensure_future(stopping.wait())
        await asyncio.wait(
            (waiting, asyncio.ensure_future(server.wait_stopped())),
            return_when=asyncio.FIRST_COMPLETED,
        )
        if not stopping.is_set():
            waiting.cancel()
            log.error("the API server stopped on its own")
            return 1
        log.info("stopping: replies in flight are stored as cancelled")
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    finally:
        await scheduler.stop()  # task runs end their replies before the database closes
        await server.stop()
        await core.close()
    log.info("stopped")
    return 0


async def offer_command_line_server(core: Core) -> None:
    """A server given by ``--base-url`` but not added in Settings offers all its models to
    API clients (for this run only), as the server's models a client can name."""
    from chatdesk.providers.base import ProviderError
    from chatdesk.settings import ServerConfig

    provider_id, model = core.registry.default_choice()
    if provider_id == LOCAL_PROVIDER or core.preferences.server(provider_id) is not None:
        return
    try:
        models = await core.registry.provider(provider_id, model).list_models()
    except ProviderError as exc:  # the API still serves; the server may come up later
        log.warning("could not list the models of %s: %s", provider_id, exc)
        return
    core.preferences.servers.append(ServerConfig(provider_id, models=sorted(models)))


# -- token -----------------------------------------------------------------------------


def token_command(argv: Sequence[str]) -> int:
    """``chatdesk token create NAME | list | revoke NAME`` (works while ``serve`` runs)."""
    parser = argparse.ArgumentParser(
        prog="chatdesk token", description="Create, list or revoke local API tokens."
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="create|list|revoke")
    create = actions.add_parser("create", help="make a token; it is printed once")
    create.add_argument("name", help="the token's name: the owner of the sessions it makes")
    add_data_options(create)
    listing = actions.add_parser("list", help="the tokens' names")
    add_data_options(listing)
    revoke = actions.add_parser("revoke", help="delete a token (its sessions stay)")
    revoke.add_argument("name")
    add_data_options(revoke)
    return asyncio.run(_token(parser.parse_args(argv)))


async def _token(args: argparse.Namespace) -> int:
    from chatdesk.storage.api_tokens import TokenNameError, TokenStore
    from chatdesk.storage.database import open_database

    options = startup_options(args)
    try:
        engine = await open_database(options.database_url)
    except StorageError as exc:
        print(f"chatdesk token: {exc}", file=sys.stderr)
        return 1
    store = TokenStore(engine)
    try:
        if args.action == "create":
            try:
                token = await store.create(args.name)
            except TokenNameError as exc:
                print(f"chatdesk token create: {exc}", file=sys.stderr)
                return 1
            print(token)
            print(
                f"Token {args.name!r} created. It is shown only this once; sessions made "
                f"with it belong to {args.name!r}.",
                file=sys.stderr,
            )
        elif args.action == "list":
            for info in await store.list():
                print(f"{info.name}\t{info.created_at.isoformat(timespec='seconds')}")
        elif not await store.revoke(args.name):
            print(f"chatdesk token revoke: no token called {args.name!r}", file=sys.stderr)
            return 1
        else:
            print(f"Token {args.name!r} revoked.", file=sys.stderr)
    except StorageError as exc:
        print(f"chatdesk token: {exc}", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()
    return 0


# -- export and import -------------------------------------------------------------------


def _progress_printer(verb: str) -> Callable[[int, int], None]:
    def report(done: int, total: int) -> None:
        if sys.stderr.isatty() or done == total:
            end = "\n" if done == total else "\r"
            print(f"{verb} {done}/{total} chats", end=end, file=sys.stderr, flush=True)

    return report


def export_command(argv: Sequence[str]) -> int:
    """``chatdesk export --format markdown|json (--session ID | --all) OUT``."""
    parser = argparse.ArgumentParser(prog="chatdesk export", description="Export chats.")
    parser.add_argument("--format", choices=("markdown", "json"), required=True)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--session", help="id of the chat to export")
    which.add_argument("--all", action="store_true", help="every chat not in the Trash")
    parser.add_argument(
        "out", type=Path, help="JSON file, or Markdown file (one chat) or folder (several)"
    )
    add_data_options(parser)
    return _run_interchange("export", _export(parser.parse_args(argv)))


async def _export(args: argparse.Namespace) -> int:
    from chatdesk.interchange import export_sessions
    from chatdesk.sessions import SessionManager

    manager = await SessionManager.open(startup_options(args).database_url)
    try:
        ids = None if args.all else [args.session]
        written = await export_sessions(
            manager, ids, args.out, fmt=args.format, progress=_progress_printer("Exported")
        )
    finally:
        await manager.close()
    print(f"Wrote {len(written)} file(s) to {args.out}")
    return 0


def import_command(argv: Sequence[str]) -> int:
    """``chatdesk import FILE``: a ChatGPT export (JSON or zip) or a ChatDesk JSON export."""
    parser = argparse.ArgumentParser(prog="chatdesk import", description="Import chats.")
    parser.add_argument("file", type=Path, help="conversations.json, its zip, or ChatDesk JSON")
    add_data_options(parser)
    return _run_interchange("import", _import(parser.parse_args(argv)))


async def _import(args: argparse.Namespace) -> int:
    from chatdesk.interchange import import_file
    from chatdesk.sessions import SessionManager

    manager = await SessionManager.open(startup_options(args).database_url)
    try:
        result = await import_file(manager, args.file, progress=_progress_printer("Imported"))
    finally:
        await manager.close()
    print(
        f"Imported {len(result.added)} new chat(s) from {args.file.name}; "
        f"{result.skipped} already there."
    )
    return 0


def _run_interchange(name: str, work: Coroutine[Any, Any, int]) -> int:
    from chatdesk.interchange import InterchangeError

    try:
        return asyncio.run(work)
    except (InterchangeError, StorageError, OSError) as exc:
        print(f"chatdesk {name}: {exc}", file=sys.stderr)
        return 1


SUBCOMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "serve": serve_command,
    "token": token_command,
    "export": export_command,
    "import": import_command,
}


def run_subcommand(argv: Sequence[str]) -> int | None:
    """Run the subcommand ``argv`` starts with; None when it starts with none (the window)."""
    if argv and argv[0] in SUBCOMMANDS:
        return SUBCOMMANDS[argv[0]](list(argv[1:]))
    return None
