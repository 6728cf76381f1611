#!/usr/bin/env bash
# Installs ChatDesk into .venv (first run only builds llama-cpp-python: several minutes)
# and starts it. Extra arguments go to chatdesk, e.g. --data-dir DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh window
bash scripts/venv.sh
.venv/bin/pip install -q -e .
exec .venv/bin/chatdesk "$@"
