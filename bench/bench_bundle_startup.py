"""Start-up benchmark: process start to first painted window, standalone bundle vs source.

Usage: ``python bench/bench_bundle_startup.py [--runs 5] [--bundle dist/chatdesk/chatdesk]``
(build the bundle first: ``bash scripts/build_bundle.sh``).

Each variant starts with ``CHATDESK_EXIT_AFTER_FIRST_PAINT=1`` (the app prints
``first-paint <unix time>`` once its window has painted, then quits) offscreen, over its
own temporary ``--data-dir``. One untimed warm-up start each (it also creates the
database), then the timed starts alternate between the two. Prints the median of each.

Target: the bundle starts no slower than ``.venv/bin/python -m chatdesk``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BUNDLE = ROOT / "dist" / "chatdesk" / "chatdesk"
DEFAULT_PYTHON = ROOT / ".venv" / "bin" / "python"
TIMEOUT = 60.0


def first_paint(command: list[str], data_dir: Path) -> float:
    """Seconds from spawning ``command`` to the first paint it reports."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", CHATDESK_EXIT_AFTER_FIRST_PAINT="1")
    started = time.time()
    result = subprocess.run(
        [*command, "--data-dir", str(data_dir)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("first-paint ")), "")
    if result.returncode != 0 or not line:
        raise RuntimeError(
            f"{command[0]} exited with {result.returncode} and no first-paint line;"
            f"\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return float(line.split()[1]) - started


def main() -> int:
    """Run the benchmark; the exit code (1 when a variant cannot start)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed starts of each (default 5)")
    parser.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE, help="bundle executable")
    parser.add_argument(
        "--python", type=Path, default=DEFAULT_PYTHON, help="Python that runs the source"
    )
    args = parser.parse_args()
    if not args.bundle.is_file():
        print(f"no bundle at {args.bundle}: run scripts/build_bundle.sh first", file=sys.stderr)
        return 1
    python = args.python if args.python.is_file() else Path(sys.executable)
    variants = {
        "bundle": [str(args.bundle)],
        "source": [str(python), "-m", "chatdesk"],
    }
    timings: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory(prefix="chatdesk-bench-start-") as scratch:
        data_dirs = {name: Path(scratch) / name for name in variants}
        try:
            for name, command in variants.items():
                warm_up = first_paint(command, data_dirs[name])
                print(f"{name}: warm-up start {warm_up:.3f} s")
            for _ in range(args.runs):
                for name, command in variants.items():
                    timings[name].append(first_paint(command, data_dirs[name]))
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            print(f"start-up failed: {exc}", file=sys.stderr)
            return 1
    medians = {name: statistics.median(values) for name, values in timings.items()}
    for name, values in timings.items():
        runs = " ".join(f"{value:.3f}" for value in values)
        print(f"{name}: median first paint {medians[name]:.3f} s  (runs: {runs})")
    ratio = medians["bundle"] / medians["source"]
    verdict = "met" if medians["bundle"] <= medians["source"] else "MISSED"
    print(f"bundle / source = {ratio:.2f}  (target: bundle no slower than source: {verdict})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
