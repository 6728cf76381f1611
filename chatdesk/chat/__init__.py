"""The chat engine: a turn of a chat, from the user's message to the stored reply.

Callers import from here (``from chatdesk.chat import ChatEngine``); the modules of this
package are the engine's parts, one idea each:

- ``engine``: ChatEngine, the turn (claim the session, the loop of rounds, Stop);
- ``turn``: a turn and its rounds, as the parts share them;
- ``fitting``: the context measured against the model's window and compacted;
- ``reply``: one request streamed into a stored reply, flushed and ended;
- ``tool_rounds``: tools offered to a model, and its calls run and answered;
- ``titles``: a new chat named after its first reply.
"""

from __future__ import annotations

from chatdesk.chat.engine import ChatEngine, ProviderResolver
from chatdesk.chat.fitting import EMPTY_REPLY_MESSAGE, EmptyReplyError
from chatdesk.chat.titles import TITLE_MAX_TOKENS, TITLE_PROMPT
from chatdesk.chat.tool_rounds import MAX_TOOL_ROUNDS
from chatdesk.sessions import SessionBusyError

__all__ = [
    "EMPTY_REPLY_MESSAGE",
    "MAX_TOOL_ROUNDS",
    "TITLE_MAX_TOKENS",
    "TITLE_PROMPT",
    "ChatEngine",
    "EmptyReplyError",
    "ProviderResolver",
    "SessionBusyError",
]
