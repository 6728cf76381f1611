#!/usr/bin/env bash
# Installs what ChatDesk needs from Debian/Ubuntu when it is missing: the libraries Qt
# needs, a C++ compiler for llama-cpp-python, and Python's venv module.
# Usage: scripts/system-deps.sh [window|test]   ("window" adds what a real X11 window needs;
# "test" adds the tools the test suite calls, e.g. desktop-file-validate.)
set -euo pipefail

packages=(libegl1 libgl1 libxkbcommon0 libfontconfig1 libfreetype6 libglib2.0-0 libdbus-1-3
          fonts-dejavu-core)
if [ "${1:-}" = "window" ]; then
  packages+=(libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-randr0
             libxcb-render-util0 libxcb-image0 libxcb-xinerama0 libxkbcommon-x11-0
             libwayland-cursor0)
fi
if [ "${1:-}" = "test" ]; then
  packages+=(desktop-file-utils)
fi

# llama-cpp-python compiles on install; the venv module needs ensurepip (Debian splits both).
command -v g++ >/dev/null 2>&1 || packages+=(g++)
python3 -c "import ensurepip" 2>/dev/null || packages+=(python3-venv)

missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "Qt needs these system libraries (install them with your package manager): ${missing[*]}" >&2
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "Installing system libraries Qt needs: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
