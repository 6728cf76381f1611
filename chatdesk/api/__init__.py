"""The local HTTP API: sessions with owners and an OpenAI-compatible endpoint.

FastAPI routes (``app.py``, ``*_routes.py``) over the one SessionManager and ChatEngine
of the process; uvicorn serves them on the process's own asyncio loop (plain asyncio for
``chatdesk serve``, qasync in the window: ``server.py``). ``service.py`` is the window's
on/off switch. Nothing here imports Qt, and this package imports nothing on its own, so
the window starts without loading FastAPI until the API is turned on.
"""
