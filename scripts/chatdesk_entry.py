"""Entry script of the standalone bundle (``chatdesk.spec``): runs ``chatdesk.app:main``.

It lives outside the package on purpose: PyInstaller puts the entry script's folder on its
search path, and the package folder holds modules that would shadow the standard library
(e.g. ``chatdesk/secrets.py``).
"""

from chatdesk.app import main

if __name__ == "__main__":
    raise SystemExit(main())
