#!/usr/bin/env bash
# One-shot, idempotent set-up of everything donkey_ros needs, from the package registries only:
#   a virtualenv (.venv, or $DONKEY_ROS_VENV) with ROS 2 from PyPI wheels, the project's Python
#   dependencies, the donkey_ros_interfaces package (built with the standard rosidl tools) and
#   donkey_ros itself (editable). Re-running it only redoes what changed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${DONKEY_ROS_VENV:-$root/.venv}"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null || python=python3

say() { printf '[setup] %s\n' "$*" >&2; }

# --with-browser: the test suite drives the web page in Debian's headless Chromium.
if [ "${1:-}" = "--with-browser" ] && ! { command -v chromium && command -v chromedriver; } >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian's chromium + chromium-driver (for the web page tests)"
    { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null; } \
      || say "could not install chromium: the browser tests will be skipped"
  else
    say "chromium/chromedriver not found: the browser tests will be skipped" \
        "(sudo apt-get install chromium chromium-driver)"
  fi
fi

if [ ! -x "$venv/bin/python" ]; then
  say "creating virtualenv $venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip setuptools wheel
fi
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)

stamp="$venv/.donkey_ros_requirements"
wanted="$(cat "$root/requirements.txt" "$root/requirements-test.txt" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  say "installing Python dependencies (ROS 2 wheels, TensorFlow, LiteRT, ...); first time takes a few minutes"
  "${pip[@]}" -r "$root/requirements.txt" -r "$root/requirements-test.txt" 2>&1 \
    | { grep -v '^WARNING: Location' || true; } >&2
  [ "${PIPESTATUS[0]}" -eq 0 ] || { say "pip install failed"; exit 1; }
  echo "$wanted" > "$stamp"
fi

if [ -x "$root/scripts/build_interfaces.sh" ]; then
  VIRTUAL_ENV="$venv" "$root/scripts/build_interfaces.sh"
fi

# Editable install, redone when setup.py changes (new console scripts).
stamp="$venv/.donkey_ros_setup"
wanted="$(cat "$root/setup.py" "$root/setup.cfg" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  say "installing donkey_ros (editable)"
  "${pip[@]}" --no-deps --no-build-isolation -e "$root" 2>&1 | grep -v '^WARNING: Location' >&2 || true
  echo "$wanted" > "$stamp"
fi
say "ready: $venv"
