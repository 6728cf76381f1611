"""The local HTTP API: sessions with owners and an OpenAI-compatible endpoint.

FastAPI routes over the one SessionManager and ChatEngine of the process; uvicorn serves
them on the process's own asyncio loop (plain asyncio for ``chatdesk serve``, qasync in
the window). Nothing here imports Qt.
"""

from chatdesk.api.app import ApiContext, create_app
from chatdesk.api.server import ApiServer

__all__ = ["ApiContext", "ApiServer", "create_app"]
