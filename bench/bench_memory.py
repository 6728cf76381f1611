"""Memory as a user runs ChatDesk: the embedded model loaded, its full context allocated.

Usage: ``python bench/bench_memory.py [--seconds S]``. Starts ``python -m chatdesk`` over a
fresh data folder exactly as a user would (the default local model is preloaded after the
first paint), samples the process's resident memory every 100 ms for ``S`` seconds, then
closes it. Prints the peak (VmHWM) and the resident size at the end, in MiB.

Target (issue #13): under 300 MiB with the model loaded, without shrinking its context.
Runs offscreen unless ``DISPLAY`` is set and ``QT_QPA_PLATFORM`` is not.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_MIB = 300


def _status(pid: int) -> dict[str, int]:
    """The kB figures of /proc/<pid>/status (VmRSS, VmHWM, ...)."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if value.strip().endswith("kB"):
            found[name] = int(value.split()[0])
    return found


def main() -> int:
    """Run ChatDesk, sample its memory, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    env = dict(os.environ)
    if not env.get("DISPLAY"):
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory(prefix="chatdesk-memory-") as data_dir:
        process = subprocess.Popen(
            [sys.executable, "-m", "chatdesk", "--data-dir", data_dir],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        samples: list[int] = []
        peak = 0
        try:
            deadline = time.monotonic() + args.seconds
            while time.monotonic() < deadline and process.poll() is None:
                status = _status(process.pid)
                samples.append(status.get("VmRSS", 0))
                peak = max(peak, status.get("VmHWM", 0))
                time.sleep(0.1)
            if process.poll() is not None:
                raise RuntimeError(f"ChatDesk exited early:\n{process.stderr.read().decode()}")
        finally:
            process.terminate()
            process.wait(timeout=30)
    print(f"peak resident memory (VmHWM): {peak / 1024:.0f} MiB")
    print(f"resident after {args.seconds:.0f} s:       {samples[-1] / 1024:.0f} MiB")
    verdict = "ok" if peak / 1024 < TARGET_MIB else "OVER TARGET"
    print(f"target: < {TARGET_MIB} MiB peak {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
