"""``python -m chatdesk`` starts the desktop app."""

from chatdesk.app import main

raise SystemExit(main())
