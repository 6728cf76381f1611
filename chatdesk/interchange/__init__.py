"""Taking chats in and out: export to Markdown or JSON, import ChatGPT and ChatDesk exports.

Qt-free: the window and the command line both call :func:`export_sessions` and
:func:`import_file`.
"""

from chatdesk.interchange.common import ImportResult, InterchangeError, Progress
from chatdesk.interchange.exporter import EXPORT_FORMATS, export_sessions
from chatdesk.interchange.importer import import_file, read_export

__all__ = [
    "EXPORT_FORMATS",
    "ImportResult",
    "InterchangeError",
    "Progress",
    "export_sessions",
    "import_file",
    "read_export",
]
