#!/usr/bin/env bash
# Creates .venv with Python 3.11 or newer, unless a working one is there already.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/pip ] && exit 0
python=""
for candidate in python3 python3.13 python3.12 python3.11; do
  if command -v "$candidate" >/dev/null 2>&1 &&
     "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    python=$candidate
    break
  fi
done
if [ -z "$python" ]; then
  echo "ChatDesk needs Python 3.11 or newer (python3 --version says: $(python3 --version 2>&1))." >&2
  exit 1
fi
rm -rf .venv  # a half-made one (e.g. venv failed for want of ensurepip)
"$python" -m venv .venv
