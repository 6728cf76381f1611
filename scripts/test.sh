#!/usr/bin/env bash
# Installs the test dependencies into .venv and runs the linters and the whole test suite.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh test
bash scripts/venv.sh
# pip's wheel cache (~/.cache/pip) keeps the llama-cpp-python build between runs.
.venv/bin/pip install -q -e '.[test]'
.venv/bin/ruff check .
.venv/bin/ruff format --check .
export QT_QPA_PLATFORM=offscreen
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
