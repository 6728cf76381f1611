"""Reading ChatGPT's data export (``conversations.json``, alone or in the zip it comes in).

Each conversation is a tree (``mapping``: node id -> ``{message, parent, children}``)
because every edit or regenerated reply starts a new branch; ``current_node`` is the leaf
the user last saw. The path from the root to it becomes the chat; every other leaf
becomes a branch chat (its whole path), linked to the chat at the message where it forks.
Internal messages (hidden context, reasoning, tool calls and their output) are left out;
images found in the zip are imported, others leave an "[image]" note.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from chatdesk.domain import (
    ImportedChat,
    Message,
    Session,
    image_data_url,
    new_id,
    sniff_image_format,
)
from chatdesk.interchange.common import InterchangeError, from_epoch

# Content types that are the conversation itself; the rest are the model's internals.
_SHOWN_CONTENT = {"text", "multimodal_text", "code"}
_COMPLETE_STATUSES = {"finished_successfully", "finished_partial_completion", None}
IMAGE_PLACEHOLDER = "[image]"


def read_chatgpt(
    conversations: list[dict[str, Any]],
    images: Mapping[str, bytes] | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> list[ImportedChat]:
    """Every conversation's chat and branches; InterchangeError names a malformed one."""
    images = images or {}
    chats: list[ImportedChat] = []
    for index, conversation in enumerate(conversations):
        chats.extend(_conversation(conversation, index, images))
        if progress is not None:
            progress(index + 1, len(conversations))
    return chats


def _fail(index: int, conversation: dict[str, Any], what: str) -> InterchangeError:
    title = conversation.get("title")
    name = f"conversation {index + 1}" + (f" ({title!r})" if isinstance(title, str) else "")
    return InterchangeError(
        f"{name}: {what}. This is not a valid ChatGPT export; nothing was imported."
    )


def _conversation(
    conversation: dict[str, Any], index: int, images: Mapping[str, bytes]
) -> list[ImportedChat]:
    mapping = conversation.get("mapping")
    if not isinstance(mapping, dict) or not all(isinstance(n, dict) for n in mapping.values()):
        raise _fail(index, conversation, "'mapping' is not an object of message nodes")
    for node_id, node in mapping.items():
        parent = node.get("parent")
        children = node.get("children", [])
        if parent is not None and parent not in mapping:
            raise _fail(index, conversation, f"node {node_id!r} has an unknown parent")
        if not isinstance(children, list) or any(c not in mapping for c in children):
            raise _fail(index, conversation, f"node {node_id!r} has unknown children")
        message = node.get("message")
        if message is not None and not isinstance(message, dict):
            raise _fail(index, conversation, f"node {node_id!r} has a malformed message")
    conversation_key = conversation.get("conversation_id") or conversation.get("id")
    if not isinstance(conversation_key, str) or not conversation_key:
        digest = hashlib.sha256(
            repr(
                (conversation.get("title"), conversation.get("create_time"), sorted(mapping))
            ).encode()
        ).hexdigest()
        conversation_key = f"sha256-{digest[:32]}"
    created = from_epoch(conversation.get("create_time"), datetime.now(UTC))
    updated = from_epoch(conversation.get("update_time"), created)
    title = conversation.get("title")
    title = title.strip() if isinstance(title, str) and title.strip() else "ChatGPT chat"

    leaves = [node_id for node_id, node in mapping.items() if not node.get("children")]
    current = conversation.get("current_node")
    if current not in mapping:
        # No (or an unknown) current node: the most recently written leaf stands for it.
        current = max(leaves, key=lambda n: _time_of(mapping[n]), default=None)
    if current is None:
        return []
    main_path = _path(mapping, current, index, conversation)
    main_messages = _messages(mapping, main_path, images, created)
    main = Session(
        title=title,
        created_at=created,
        updated_at=updated,
        history=[m for _, m in main_messages],
        archived_at=updated if conversation.get("is_archived") else None,
    )
    chats = [ImportedChat(session=main, import_key=f"chatgpt:{conversation_key}")]
    on_main = {node_id: position for position, node_id in enumerate(main_path)}
    message_of_node = dict(main_messages)
    branch_number = 0
    for leaf in sorted(leaves, key=lambda n: _time_of(mapping[n])):
        if leaf in on_main:
            continue
        path = _path(mapping, leaf, index, conversation)
        fork = max((on_main[n] for n in path if n in on_main), default=-1)
        # The branch hangs off the last message of the main chat it shares.
        shared = [message_of_node[n] for n in main_path[: fork + 1] if n in message_of_node]
        branch_messages = [m for _, m in _messages(mapping, path, images, created)]
        if not branch_messages:
            continue
        branch_number += 1
        branch = Session(
            title=f"{title} (branch {branch_number})",
            created_at=created,
            updated_at=max([m.created_at for m in branch_messages] + [created]),
            history=branch_messages,
            archived_at=main.archived_at,
            parent_session_id=main.id,
            parent_message_id=shared[-1].id if shared else None,
        )
        chats.append(ImportedChat(session=branch, import_key=f"chatgpt:{conversation_key}:{leaf}"))
    return chats


def _time_of(node: dict[str, Any]) -> float:
    message = node.get("message") or {}
    stamp = message.get("create_time") if isinstance(message, dict) else None
    return float(stamp) if isinstance(stamp, int | float) else 0.0


def _path(
    mapping: dict[str, Any], leaf: str, index: int, conversation: dict[str, Any]
) -> list[str]:
    path: list[str] = []
    seen: set[str] = set()
    node_id: str | None = leaf
    while node_id is not None:
        if node_id in seen:
            raise _fail(index, conversation, "its message tree has a cycle")
        seen.add(node_id)
        path.append(node_id)
        node_id = mapping[node_id].get("parent")
    path.reverse()
    return path


def _messages(
    mapping: dict[str, Any], path: list[str], images: Mapping[str, bytes], created: datetime
) -> list[tuple[str, Message]]:
    found = []
    for node_id in path:
        message = _message(mapping[node_id].get("message"), images, created)
        if message is not None:
            found.append((node_id, message))
    return found


def _message(
    raw: dict[str, Any] | None, images: Mapping[str, bytes], fallback: datetime
) -> Message | None:
    if not raw:
        return None
    author = raw.get("author") or {}
    role = author.get("role") if isinstance(author, dict) else None
    metadata = raw.get("metadata") or {}
    if isinstance(metadata, dict) and metadata.get("is_visually_hidden_from_conversation"):
        return None
    content = raw.get("content") or {}
    if not isinstance(content, dict) or content.get("content_type") not in _SHOWN_CONTENT:
        return None
    texts, pictures = _parts(content, images)
    if role == "tool":
        # Tool output is the model's working; only the pictures it made are the chat's.
        if not pictures:
            return None
        role, texts = "assistant", []
    elif role not in ("user", "assistant", "system"):
        return None
    if raw.get("recipient") not in (None, "all"):
        return None  # a call to a tool (code, browsing), not a message to the user
    text = "\n\n".join(t for t in texts if t.strip())
    if not text.strip() and not pictures:
        return None
    body: str | list[dict[str, Any]]
    if pictures:
        body = ([{"type": "text", "text": text}] if text else []) + [
            {"type": "image_url", "image_url": {"url": url}} for url in pictures
        ]
    else:
        body = text
    status = raw.get("status")
    return Message(
        role=role,
        content=body,
        id=new_id(),
        created_at=from_epoch(raw.get("create_time"), fallback),
        status="complete" if status in _COMPLETE_STATUSES else "interrupted",
    )


def _parts(content: dict[str, Any], images: Mapping[str, bytes]) -> tuple[list[str], list[str]]:
    kind = content.get("content_type")
    if kind == "code":
        code = content.get("text")
        language = content.get("language") or ""
        if language == "unknown":
            language = ""
        return ([f"```{language}\n{code}\n```"] if isinstance(code, str) else []), []
    texts: list[str] = []
    pictures: list[str] = []
    parts = content.get("parts")
    for part in parts if isinstance(parts, list) else []:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict) and part.get("content_type") == "image_asset_pointer":
            data = _image_for(part.get("asset_pointer"), images)
            if data is None:
                texts.append(IMAGE_PLACEHOLDER)
            else:
                pictures.append(image_data_url(data))
    return texts, pictures


def _image_for(pointer: object, images: Mapping[str, bytes]) -> bytes | None:
    # "file-service://file-AbC" or "sediment://file_AbC": the zip names the file after
    # that id, often followed by "-<original name>".
    if not isinstance(pointer, str) or "://" not in pointer:
        return None
    file_id = pointer.split("://", 1)[1]
    if not file_id:
        return None
    for name in images:
        if name.startswith(file_id):
            data = images[name]  # read only now: an export's images can be gigabytes
            if sniff_image_format(data) is not None:
                return data
    return None
