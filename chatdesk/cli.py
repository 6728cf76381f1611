"""The ``chatdesk`` subcommands that run without a window (Qt-free).

``chatdesk export`` and ``chatdesk import`` take chats out and in; ``chatdesk`` without
a subcommand starts the window (see :mod:`chatdesk.app`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from chatdesk.settings import DATABASE_FILE, default_data_dir, sqlite_url
from chatdesk.storage.database import StorageError


def _database_url(args: argparse.Namespace) -> str:
    if args.database_url:
        return str(args.database_url)
    if args.data_dir is None and os.environ.get("CHATDESK_DATABASE_URL"):
        return os.environ["CHATDESK_DATABASE_URL"]
    data_dir = (args.data_dir or default_data_dir()).expanduser()
    return sqlite_url(data_dir / DATABASE_FILE)


def _add_database_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help="folder for the database and settings")
    parser.add_argument("--database-url", help="SQLAlchemy SQLite URL of the database")


def _progress_printer(verb: str) -> Callable[[int, int], None]:
    def report(done: int, total: int) -> None:
        if sys.stderr.isatty() or done == total:
            end = "\n" if done == total else "\r"
            print(f"{verb} {done}/{total} chats", end=end, file=sys.stderr, flush=True)

    return report


async def _export(args: argparse.Namespace) -> int:
    from chatdesk.interchange import export_sessions
    from chatdesk.sessions import SessionManager

    manager = await SessionManager.open(_database_url(args))
    try:
        ids = None if args.all else [args.session]
        written = await export_sessions(
            manager, ids, args.out, fmt=args.format, progress=_progress_printer("Exported")
        )
    finally:
        await manager.close()
    print(f"Wrote {len(written)} file(s) to {args.out}")
    return 0


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
    _add_database_options(parser)
    return _run(_export(parser.parse_args(argv)))


async def _import(args: argparse.Namespace) -> int:
    from chatdesk.interchange import import_file
    from chatdesk.sessions import SessionManager

    manager = await SessionManager.open(_database_url(args))
    try:
        result = await import_file(manager, args.file, progress=_progress_printer("Imported"))
    finally:
        await manager.close()
    print(
        f"Imported {len(result.added)} new chat(s) from {args.file.name}; "
        f"{result.skipped} already there."
    )
    return 0


def import_command(argv: Sequence[str]) -> int:
    """``chatdesk import FILE``: a ChatGPT export (JSON or zip) or a ChatDesk JSON export."""
    parser = argparse.ArgumentParser(prog="chatdesk import", description="Import chats.")
    parser.add_argument("file", type=Path, help="conversations.json, its zip, or ChatDesk JSON")
    _add_database_options(parser)
    return _run(_import(parser.parse_args(argv)))


def _run(work: object) -> int:
    from chatdesk.interchange import InterchangeError

    try:
        return asyncio.run(work)  # type: ignore[arg-type]
    except (InterchangeError, StorageError, OSError) as exc:
        print(f"chatdesk: {exc}", file=sys.stderr)
        return 1


SUBCOMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "export": export_command,
    "import": import_command,
}


def run_subcommand(argv: Sequence[str]) -> int | None:
    """Run the subcommand ``argv`` starts with; None when it starts with none (the window)."""
    if argv and argv[0] in SUBCOMMANDS:
        return SUBCOMMANDS[argv[0]](list(argv[1:]))
    return None
