#!/usr/bin/env bash
# One-shot, idempotent set-up of everything donkey_ros needs, from the package registries only:
#   a virtualenv with ROS 2 from PyPI wheels, the project's Python dependencies, the
#   donkey_ros_interfaces package (built with that distro's rosidl tools) and donkey_ros itself
#   (editable). Re-running it only redoes what changed.
# The ROS 2 distro: DONKEY_ROS_DISTRO=kilted (default; virtualenv .venv) or jazzy (.venv-jazzy);
# DONKEY_ROS_VENV overrides the virtualenv (see scripts/distro.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$root/scripts/distro.sh"
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

# One distro per virtualenv: pip would mix two distros' ROS wheels in one.
marker="$venv/.donkey_ros_distro"
if [ -f "$marker" ] && [ "$(cat "$marker")" != "$distro" ]; then
  say "error: $venv holds ROS 2 $(cat "$marker"), not $distro: pick another DONKEY_ROS_VENV"
  exit 1
fi
echo "$distro" > "$marker"

requirements=("$root/requirements.txt" "$distro_requirements" "$root/requirements-test.txt")
stamp="$venv/.donkey_ros_requirements"
wanted="$(cat "${requirements[@]}" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  say "installing Python dependencies (ROS 2 $distro wheels, TensorFlow, LiteRT, ...) into $venv; first time takes a few minutes"
  "${pip[@]}" "${requirements[@]/#/-r}" 2>&1 \
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
say "ready: $venv (ROS 2 $distro)"
