"""The SessionManager offers each of its parts' operations, exactly as the part takes them.

Callers see one flat API; the parts (chatdesk/sessions/*.py) do the work. A parameter
added to a part but not to the manager's method would be unreachable for every caller.
"""

from __future__ import annotations

import inspect

import pytest

from chatdesk.sessions import SessionManager
from chatdesk.sessions.compaction import Compactions
from chatdesk.sessions.importing import ChatImport
from chatdesk.sessions.keeping import ChatKeeping
from chatdesk.sessions.messages import SessionMessages
from chatdesk.sessions.owners import OwnedSessions
from chatdesk.sessions.tasks import TaskSessions
from chatdesk.sessions.versions import TurnVersions

PARTS = (
    SessionMessages,
    TurnVersions,
    Compactions,
    ChatKeeping,
    ChatImport,
    TaskSessions,
    OwnedSessions,
)


def public_operations(part: type) -> list[str]:
    """The names of the coroutine methods a part offers."""
    return [
        name
        for name, _ in inspect.getmembers(part, inspect.iscoroutinefunction)
        if not name.startswith("_")
    ]


@pytest.mark.parametrize("part", PARTS, ids=lambda part: part.__name__)
def test_the_manager_offers_every_operation_of_a_part_with_its_signature(part: type) -> None:
    operations = public_operations(part)
    assert operations, f"{part.__name__} has no operations"
    for name in operations:
        offered = getattr(SessionManager, name, None)
        assert offered is not None, f"SessionManager has no {name}() for {part.__name__}"
        assert inspect.signature(offered) == inspect.signature(getattr(part, name)), name
