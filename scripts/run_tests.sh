#!/usr/bin/env bash
# Runs the test suite in the project's virtualenv of one ROS 2 distro (DONKEY_ROS_DISTRO, default
# kilted; DONKEY_ROS_VENV overrides the virtualenv: see scripts/distro.sh).
# pytest's "no tests collected" (exit 5) fails.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$root/scripts/distro.sh"
cd "$root"
export DONKEY_ROS_DISTRO="$distro"   # the leg's distro, for the tests that check it
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
"$venv/bin/python" -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
