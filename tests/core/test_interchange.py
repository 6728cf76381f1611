"""Export and import: round trips, the ChatGPT format, idempotence and bad files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from chatdesk.interchange import InterchangeError, export_sessions, import_file
from chatdesk.interchange.chatgpt import IMAGE_PLACEHOLDER
from chatdesk.sessions import SessionManager
from chatdesk.settings import sqlite_url
from tests.core.conftest import make_png, png_data_url, query

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "chatgpt"
REPO_ROOT = Path(__file__).resolve().parents[2]


async def fill(manager: SessionManager) -> list[str]:
    """A few chats covering text, images, statuses, a system prompt, pin and archive."""
    first = await manager.create_session("Multimodal", system_prompt="be kind", model="m")
    await manager.add_message(
        first.id,
        "user",
        [
            {"type": "text", "text": "two pictures"},
            {"type": "image_url", "image_url": {"url": png_data_url()}},
            {"type": "image_url", "image_url": {"url": png_data_url(rgb=(0, 0, 255))}},
        ],
    )
    await manager.add_message(first.id, "assistant", "half a repl", status="cancelled")
    await manager.add_message(first.id, "assistant", "", status="error", error="server said no")
    second = await manager.create_session("Plain")
    question = await manager.add_message(second.id, "user", "Ünïcödé and\nnew lines")
    await manager.set_pinned(second.id, True)
    await manager.set_archived(first.id, True)
    branch = await manager.branch_session(second.id, question.id)
    return [first.id, second.id, branch.id]


async def test_json_round_trip_into_a_fresh_database(
    manager: SessionManager, tmp_path: Path
) -> None:
    ids = await fill(manager)
    out = tmp_path / "export.json"
    seen: list[tuple[int, int]] = []
    await export_sessions(manager, None, out, fmt="json", progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (3, 3)
    document = json.loads(out.read_text("utf-8"))
    assert document["format"] == "chatdesk-export" and document["version"] == 1

    fresh = await SessionManager.open(sqlite_url(tmp_path / "fresh.db"))
    try:
        result = await import_file(fresh, out)
        assert sorted(result.added) == sorted(ids) and result.skipped == 0
        for session_id in ids:
            original = await manager.require_session(session_id)
            copy = await fresh.require_session(session_id)
            assert copy.history == original.history  # id, role, content, time, status, error
            assert (copy.title, copy.system_prompt, copy.model, copy.pinned) == (
                original.title,
                original.system_prompt,
                original.model,
                original.pinned,
            )
            assert (copy.archived_at is None) == (original.archived_at is None)
            assert copy.parent_session_id == original.parent_session_id
            assert copy.parent_message_id == original.parent_message_id
        assert len(await fresh.search("pictures")) == 1

        # The same file again adds nothing; nor does importing into the source database.
        again = await import_file(fresh, out)
        assert again.added == [] and again.skipped == 3
        assert (await import_file(manager, out)).added == []
    finally:
        await fresh.close()


async def test_an_import_never_changes_an_existing_chat(
    manager: SessionManager, tmp_path: Path
) -> None:
    session = await manager.create_session("mine")
    await manager.add_message(session.id, "user", "original")
    out = tmp_path / "export.json"
    await export_sessions(manager, [session.id], out, fmt="json")
    await manager.add_message(session.id, "user", "added after the export")
    await manager.update_session(session.id, title="renamed")
    result = await import_file(manager, out)
    assert result.added == []
    stored = await manager.require_session(session.id)
    assert stored.title == "renamed" and len(stored.history) == 2


async def test_a_branch_follows_its_parents_message_when_an_import_renames_it(
    manager: SessionManager, tmp_path: Path
) -> None:
    parent = await manager.create_session("parent")
    await manager.add_message(parent.id, "user", "question")
    asked = await manager.add_message(parent.id, "assistant", "answer")
    branch = await manager.branch_session(parent.id, asked.id)
    out = tmp_path / "export.json"
    await export_sessions(manager, [parent.id, branch.id], out, fmt="json")
    # The same chats as new ones (other session ids) into the database that holds their
    # message ids already: the parent's messages get new ids, and the branch follows.
    document = json.loads(out.read_text("utf-8"))
    for record in document["sessions"]:
        record["id"] = "copy-" + record["id"]
        if record.get("parent_session_id"):
            record["parent_session_id"] = "copy-" + record["parent_session_id"]
    out.write_text(json.dumps(document), "utf-8")
    result = await import_file(manager, out)
    assert len(result.added) == 2
    parent_copy = await manager.require_session("copy-" + parent.id)
    branch_copy = await manager.require_session("copy-" + branch.id)
    assert asked.id not in [m.id for m in parent_copy.history]  # renamed
    assert branch_copy.parent_session_id == parent_copy.id
    assert branch_copy.parent_message_id == parent_copy.history[-1].id


def zipped_export(tmp_path: Path) -> Path:
    """The fixture in a zip as ChatGPT ships it, with the one uploaded image it includes."""
    archive = tmp_path / "chatgpt-export.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.write(FIXTURES / "conversations.json", "conversations.json")
        out.writestr("file-Red8Pixel-square.png", make_png(rgb=(255, 0, 0)))
        out.writestr("chat.html", "<html></html>")
    return archive


async def test_chatgpt_import_current_path_and_branches(
    manager: SessionManager, tmp_path: Path
) -> None:
    result = await import_file(manager, zipped_export(tmp_path))
    assert result.source == "chatgpt"
    assert len(result.added) == 4  # two chats, two branches of the first
    listed = {s.title: s for s in await manager.list_sessions()}
    main = await manager.require_session(listed["Crème brûlée at home"].id)
    assert [(m.role, m.content) for m in main.history] == [
        ("user", "How do I make crème brûlée?"),
        (
            "assistant",
            "Whisk yolks with sugar, add warm cream and vanilla, bake in a water bath.",
        ),
        ("user", "Can I use a blowtorch for the top?"),
        ("assistant", "Yes, a kitchen blowtorch caramelises the sugar best."),
    ]
    assert all(m.status == "complete" for m in main.history)
    first_branch = await manager.require_session(listed["Crème brûlée at home (branch 1)"].id)
    assert [m.content for m in first_branch.history][2:] == [
        "How long should it bake?",
        "About 40 minutes at 150 °C.",
    ]
    assert first_branch.parent_session_id == main.id
    assert first_branch.parent_message_id == main.history[1].id  # forks after the answer
    second_branch = await manager.require_session(listed["Crème brûlée at home (branch 2)"].id)
    assert second_branch.history[-1].content.startswith("Yes: a thin layer")
    assert second_branch.parent_message_id == main.history[2].id
    assert {s.id for s in await manager.branches_of(main.id)} == {
        first_branch.id,
        second_branch.id,
    }

    # The archived conversation: hidden context, reasoning and tool calls left out; the
    # uploaded image that is in the zip imported, the one that is not noted.
    picture = listed["What is in this picture?"]
    assert picture.archived_at is not None
    chat = await manager.require_session(picture.id)
    assert [m.role for m in chat.history] == ["user", "assistant"]
    blocks = chat.history[0].content
    assert isinstance(blocks, list)
    assert blocks[0] == {
        "type": "text",
        "text": f"{IMAGE_PLACEHOLDER}\n\nDescribe this image and count its pixels.",
    }
    assert blocks[1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert chat.history[1].content == "A red square of \n\n4 pixels."
    assert chat.created_at.timestamp() == 1717001000.0
    assert await manager.search("secret reasoning") == []
    assert len(await manager.search("blowtorch")) == 3

    again = await import_file(manager, zipped_export(tmp_path))
    assert again.added == [] and again.skipped == 4
    assert len(await manager.list_sessions()) == 4


async def test_plain_conversations_json_imports_with_image_notes(
    manager: SessionManager,
) -> None:
    result = await import_file(manager, FIXTURES / "conversations.json")
    assert len(result.added) == 4
    hits = await manager.search("describe image")
    chat = await manager.require_session(hits[0].session_id)
    assert chat.history[0].content == (
        f"{IMAGE_PLACEHOLDER}\n\n{IMAGE_PLACEHOLDER}\n\nDescribe this image and count its pixels."
    )


def malformed_exports(tmp_path: Path) -> list[Path]:
    """Files that are not valid exports, each of which must write nothing."""
    good = json.loads((FIXTURES / "conversations.json").read_text("utf-8"))
    broken_later = json.loads(json.dumps(good))
    broken_later[1]["mapping"]["a"]["parent"] = "missing-node"  # the first one is fine
    cycle = json.loads(json.dumps(good))
    cycle[0]["mapping"]["root-1"]["parent"] = "a2b2"
    bad_chatdesk = {"format": "chatdesk-export", "version": 1, "sessions": [{"id": "x"}]}
    bad_image = {
        "format": "chatdesk-export",
        "version": 1,
        "sessions": [
            {
                "id": "s",
                "title": "t",
                "owner": "local",
                "created_at": "2024-01-01T00:00:00+00:00",
                "updated_at": "2024-01-01T00:00:00+00:00",
                "messages": [
                    {
                        "id": "m",
                        "role": "user",
                        "status": "complete",
                        "created_at": "2024-01-01T00:00:00+00:00",
                        "content": [
                            {
                                "type": "image_url",
                                "image_url": {"url": "data:image/png;base64,AAAA"},
                            }
                        ],
                    }
                ],
            }
        ],
    }
    files = {
        "truncated.json": (FIXTURES / "conversations.json").read_bytes()[:3000],
        "later.json": json.dumps(broken_later).encode(),
        "cycle.json": json.dumps(cycle).encode(),
        "other.json": json.dumps({"hello": "world"}).encode(),
        "chatdesk.json": json.dumps(bad_chatdesk).encode(),
        "image.json": json.dumps(bad_image).encode(),
        "future.json": json.dumps({"format": "chatdesk-export", "version": 99}).encode(),
        "binary.json": bytes(range(256)),
        "broken.zip": b"PK\x03\x04" + b"\x00" * 100,
    }
    paths = []
    for name, data in files.items():
        path = tmp_path / name
        path.write_bytes(data)
        paths.append(path)
    empty_zip = tmp_path / "nothing-inside.zip"
    with zipfile.ZipFile(empty_zip, "w") as out:
        out.writestr("readme.txt", "hi")
    return [*paths, empty_zip]


async def test_a_file_that_is_not_a_valid_export_writes_nothing(
    manager: SessionManager, tmp_path: Path, db_path: Path
) -> None:
    for path in malformed_exports(tmp_path):
        with pytest.raises(InterchangeError) as raised:
            await import_file(manager, path)
        assert "Nothing was imported" in str(raised.value) or "nothing was imported" in str(
            raised.value
        ), path.name
        assert query(db_path, "SELECT count(*) FROM sessions") == [(0,)], path.name
    with pytest.raises(InterchangeError, match="no such file"):
        await import_file(manager, tmp_path / "absent.json")


async def test_markdown_export_writes_images_beside_it(
    manager: SessionManager, tmp_path: Path
) -> None:
    ids = await fill(manager)
    single = tmp_path / "one" / "chat.md"
    written = await export_sessions(manager, [ids[0]], single, fmt="markdown")
    assert written == [single]
    text = single.read_text("utf-8")
    assert text.startswith("# Multimodal\n")
    assert "**System prompt:**" in text and "## You" in text and "## Assistant" in text
    assert "*(error: server said no)*" in text and "*(cancelled)*" in text
    images = sorted((tmp_path / "one" / "chat-images").iterdir())
    assert len(images) == 2 and all(p.read_bytes().startswith(b"\x89PNG") for p in images)
    for image in images:
        assert f"![image](chat-images/{image.name})" in text

    folder = tmp_path / "all"
    written = await export_sessions(manager, None, folder, fmt="markdown")
    assert len(written) == 3 and all(p.parent == folder and p.suffix == ".md" for p in written)


def run_cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    """``python -m chatdesk`` in a real process, over ``data_dir``."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env.pop("CHATDESK_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "chatdesk", *args, "--data-dir", str(data_dir)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_export_and_import_from_the_command_line(tmp_path: Path) -> None:
    source, target = tmp_path / "source", tmp_path / "target"
    imported = run_cli("import", str(FIXTURES / "conversations.json"), data_dir=source)
    assert imported.returncode == 0, imported.stderr
    assert "Imported 4 new chat(s)" in imported.stdout

    out = tmp_path / "all.json"
    exported = run_cli("export", "--format", "json", "--all", str(out), data_dir=source)
    assert exported.returncode == 0, exported.stderr
    assert len(json.loads(out.read_text("utf-8"))["sessions"]) == 4

    assert "Imported 4 new" in run_cli("import", str(out), data_dir=target).stdout
    assert "Imported 0 new chat(s) from all.json; 4 already there" in (
        run_cli("import", str(out), data_dir=target).stdout
    )
    session_id = json.loads(out.read_text("utf-8"))["sessions"][0]["id"]
    md = tmp_path / "one.md"
    one = run_cli(
        "export", "--format", "markdown", "--session", session_id, str(md), data_dir=target
    )
    assert one.returncode == 0, one.stderr
    assert md.read_text("utf-8").startswith("# ")

    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2", "utf-8")
    failed = run_cli("import", str(bad), data_dir=target)
    assert failed.returncode == 1
    assert "not valid JSON" in failed.stderr and "Traceback" not in failed.stderr
    missing = run_cli(
        "export", "--format", "json", "--session", "nope", str(tmp_path / "x.json"), data_dir=target
    )
    assert missing.returncode == 1 and "no chat with id" in missing.stderr
    assert not (tmp_path / "x.json").exists()


async def test_json_export_keeps_tool_calls_and_compacted_originals(
    manager: SessionManager, tmp_path: Path, db_path: Path
) -> None:
    session = await manager.create_session("Compacted")
    first = await manager.add_message(session.id, "user", "an old question about owls")
    second = await manager.add_message(session.id, "assistant", "an old answer about owls")
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    await manager.add_message(session.id, "assistant", "", tool_calls=[call])
    await manager.add_message(session.id, "tool", "tool output", tool_call_id="call_1")
    await manager.compact_messages(session.id, [first.id, second.id], "Summary: owls.")
    # The index follows compaction too: the originals left the chat, the summary came.
    assert await manager.search("old question") == []
    assert len(await manager.search("summary owls")) == 1

    out = tmp_path / "export.json"
    await export_sessions(manager, [session.id], out, fmt="json")
    record = json.loads(out.read_text("utf-8"))["sessions"][0]
    assert [m["content"] for m in record["compacted_messages"]] == [
        "an old question about owls",
        "an old answer about owls",
    ]
    assert record["messages"][0]["compacted_count"] == 2
    assert record["messages"][1]["tool_calls"] == [call]
    assert record["messages"][2]["tool_call_id"] == "call_1"

    fresh = await SessionManager.open(sqlite_url(tmp_path / "fresh.db"))
    try:
        await import_file(fresh, out)
        copy = await fresh.require_session(session.id)
        original = await manager.require_session(session.id)
        assert [(m.role, m.content, m.tool_calls, m.tool_call_id) for m in copy.history] == [
            (m.role, m.content, m.tool_calls, m.tool_call_id) for m in original.history
        ]
        assert copy.history[0].compaction_id == original.history[0].compaction_id
        assert await fresh.compacted_messages(session.id) == [first, second]
    finally:
        await fresh.close()
