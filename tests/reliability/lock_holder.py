"""A child process that holds a data folder's lock until killed.

Usage: ``python -m tests.reliability.lock_holder DATA_DIR``; prints ``locked`` once held.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from chatdesk.instance import InstanceLock

if __name__ == "__main__":
    lock = InstanceLock(Path(sys.argv[1]))
    lock.acquire()
    print("locked", flush=True)
    while True:
        time.sleep(60)
