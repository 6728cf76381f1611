"""``python -m chatdesk`` starts the desktop app, or runs a subcommand (see ``cli.py``)."""

from chatdesk.cli import main

raise SystemExit(main())
