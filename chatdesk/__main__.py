"""``python -m chatdesk``: a subcommand (``cli.py``, no Qt loaded), else the desktop app."""

import sys

from chatdesk.cli import run_subcommand

handled = run_subcommand(sys.argv[1:])
if handled is None:
    from chatdesk.app import main

    handled = main()
raise SystemExit(handled)
