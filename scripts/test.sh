#!/usr/bin/env bash
# Installs the test dependencies into .venv and runs the linters, the type checker and the
# whole test suite.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh test
bash scripts/venv.sh
# pip's wheel cache (~/.cache/pip) keeps the llama-cpp-python build between runs.
.venv/bin/pip install -q -e '.[test]'
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# Strict on the core, checked on ui/ (settings in pyproject.toml).
.venv/bin/mypy
export QT_QPA_PLATFORM=offscreen
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
