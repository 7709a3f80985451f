#!/usr/bin/env bash
# Build the donkey_ros_interfaces package (custom msg/srv, generated with the standard rosidl
# tools) and install it into the virtualenv $VIRTUAL_ENV, which must hold the ROS 2 PyPI wheels
# of requirements.txt (rclpy, the message packages, rosidl_default_generators, ament_cmake, ...).
# After this, `python -c "from donkey_ros_interfaces.srv import Stylize"` works with the venv's
# python and no environment variables (the wheels' bootstrapper puts $VIRTUAL_ENV/lib on the
# library path; the generated libraries also carry it as their RUNPATH).
#
# Idempotent: does nothing when the installed package matches the interface sources, this script
# and the installed ROS wheels. Output: one progress line when it builds; the build log's tail
# when it fails (full log: $build_dir/build.log).
#
# Usage: VIRTUAL_ENV=/path/to/venv scripts/build_interfaces.sh [--fix-exports]
#   --fix-exports   only point the wheels' cmake export files at this venv's Python/NumPy headers
#                   (what any cmake/colcon build of ROS interfaces against the venv needs)
#
# Environment:
#   VIRTUAL_ENV                          the venv to install into (required)
#   DONKEY_ROS_INTERFACES_BUILD_DIR      cmake build dir (default $VIRTUAL_ENV/build/donkey_ros_interfaces)
#   DONKEY_ROS_INTERFACES_FORCE=1        rebuild even when up to date
#   DONKEY_ROS_JOBS                      parallel compile jobs (default: number of CPUs, at most 4)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
script="$root/scripts/$(basename "${BASH_SOURCE[0]}")"
src="$root/donkey_ros_interfaces"
pkg=donkey_ros_interfaces

say() { printf '[interfaces] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

[ -n "${VIRTUAL_ENV:-}" ] || die "VIRTUAL_ENV is not set (the virtualenv holding the ROS 2 wheels)"
venv="$(cd "$VIRTUAL_ENV" && pwd)"
py="$venv/bin/python"
[ -x "$py" ] || die "no python at $py"
[ -f "$src/package.xml" ] || die "no package at $src"
build_dir="${DONKEY_ROS_INTERFACES_BUILD_DIR:-$venv/build/$pkg}"
stamp_file="$venv/share/$pkg/.build_stamp"

# Export files of the wheels whose include paths point at the wheel build machine.
shopt -s nullglob
py_exports=("$venv"/share/*/cmake/export_*__rosidl_generator_pyExport.cmake)
site_dirs=("$venv"/lib/python3*/site-packages)
shopt -u nullglob
[ "${#site_dirs[@]}" -gt 0 ] || die "no site-packages under $venv/lib"
site="${site_dirs[0]}"
[ -d "$site/rosidl_generator_py" ] || die "rosidl_generator_py is not installed in $venv (pip install -r requirements.txt first)"

# True (0) when some wheel export file names an include directory that does not exist here.
exports_stale() {
  local f line dir
  for f in "${py_exports[@]}"; do
    line="$(grep -m1 'INTERFACE_INCLUDE_DIRECTORIES "' "$f" || true)"
    line="${line#*\"}"; line="${line%\"*}"
    local IFS=';'
    for dir in $line; do
      case "$dir" in '${_IMPORT_PREFIX}'*|'') continue ;; esac
      [ -d "$dir" ] || return 0
    done
  done
  return 1
}

# Point the wheels' Python/NumPy include paths at this venv's (idempotent; only edits what differs).
fix_exports() {
  [ "${#py_exports[@]}" -gt 0 ] || return 0
  "$py" - "${py_exports[@]}" <<'PY'
import re, sys, sysconfig
import numpy
dirs = ';'.join([sysconfig.get_paths()['include'], numpy.get_include()])
pat = re.compile(r'(INTERFACE_INCLUDE_DIRECTORIES ")([^"]*)(")')
for path in sys.argv[1:]:
    with open(path) as f:
        text = f.read()
    def repl(m):
        if '${_IMPORT_PREFIX}' in m.group(2):
            return m.group(0)
        return m.group(1) + dirs + m.group(3)
    new = pat.sub(repl, text)
    if new != text:
        with open(path, 'w') as f:
            f.write(new)
PY
}

# Fingerprint of what the installed package depends on: interface sources, this script, the
# installed ROS wheels (names + versions) and the venv location.
fingerprint() {
  {
    (cd "$src" && find . -type f ! -name '*.pyc' ! -path '*/__pycache__/*' | LC_ALL=C sort | xargs sha256sum)
    sha256sum < "$script"
    (cd "$site" && ls -d ros_*.dist-info 2>/dev/null | LC_ALL=C sort)
    echo "$venv"
  } | sha256sum | cut -d' ' -f1
}

installed_ok() {
  [ -f "$site/$pkg/__init__.py" ] && [ -f "$site/$pkg/srv/_stylize.py" ] \
    && [ -f "$venv/lib/lib${pkg}__rosidl_generator_py.so" ] \
    && [ -f "$venv/share/ament_index/resource_index/packages/$pkg" ]
}

if [ "${1:-}" = --fix-exports ]; then
  if exports_stale; then fix_exports; fi
  exit 0
elif [ $# -gt 0 ]; then
  die "unknown argument: $1"
fi

wanted="$(fingerprint)"
if [ "${DONKEY_ROS_INTERFACES_FORCE:-0}" != 1 ] && [ "$(cat "$stamp_file" 2>/dev/null)" = "$wanted" ] && installed_ok; then
  # Up to date. Still repair the wheels' export files if a pip reinstall reverted them, so that
  # colcon/cmake builds against this venv keep working.
  if exports_stale; then fix_exports; fi
  exit 0
fi

mkdir -p "$build_dir"
# Serialise concurrent runs on the same venv.
if command -v flock >/dev/null; then
  exec 9>"$build_dir/.lock"
  flock 9
  # Another run may have finished the job while we waited.
  if [ "${DONKEY_ROS_INTERFACES_FORCE:-0}" != 1 ] && [ "$(cat "$stamp_file" 2>/dev/null)" = "$wanted" ] && installed_ok; then
    exit 0
  fi
fi

start=$SECONDS
printf '[interfaces] building %s into %s ... ' "$pkg" "$venv" >&2
log="$build_dir/build.log"
: > "$log"
fail() {
  printf 'FAILED\n' >&2
  say "$1; last lines of $log:"
  tail -n 40 "$log" >&2
  exit 1
}

fix_exports >>"$log" 2>&1 || fail "fixing the wheels' cmake include paths failed"

jobs="${DONKEY_ROS_JOBS:-$(nproc 2>/dev/null || echo 2)}"
[ "$jobs" -le 4 ] 2>/dev/null || jobs=4
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)

# A cache from another source dir or venv would confuse cmake: start that build dir afresh.
if [ -f "$build_dir/CMakeCache.txt" ] && \
   ! grep -qxF "CMAKE_HOME_DIRECTORY:INTERNAL=$src" "$build_dir/CMakeCache.txt"; then
  find "$build_dir" -mindepth 1 -maxdepth 1 ! -name build.log ! -name .lock -exec rm -rf {} +
fi
if [ -f "$build_dir/CMakeCache.txt" ] && [ "${#generator[@]}" -eq 0 ] && [ -f "$build_dir/build.ninja" ]; then
  find "$build_dir" -mindepth 1 -maxdepth 1 ! -name build.log ! -name .lock -exec rm -rf {} +
fi

# Only this venv: no system ROS (a sourced /opt/ros setup would mix two ROS installations).
export AMENT_PREFIX_PATH="$venv"
export CMAKE_PREFIX_PATH="$venv"
unset COLCON_PREFIX_PATH ROS_DISTRO PYTHONPATH 2>/dev/null || true

cmake -S "$src" -B "$build_dir" "${generator[@]}" \
  -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_INSTALL_PREFIX="$venv" \
  -DCMAKE_INSTALL_RPATH="$venv/lib" \
  -DPython3_EXECUTABLE="$py" \
  -DPython3_FIND_VIRTUALENV=FIRST \
  -DBUILD_TESTING=OFF \
  >>"$log" 2>&1 || fail "cmake configure failed"
cmake --build "$build_dir" --parallel "$jobs" >>"$log" 2>&1 || fail "build failed"
cmake --install "$build_dir" >>"$log" 2>&1 || fail "install failed"

installed_ok || fail "install finished but $pkg is missing from $venv"
# Check it imports the way users run it: the venv's python, no extra environment.
env -u LD_LIBRARY_PATH -u _ROS_WHEELS_BOOTSTRAP_COMPLETE -u AMENT_PREFIX_PATH -u CMAKE_PREFIX_PATH \
  "$py" -c "from $pkg.srv import Stylize, ListStyles; from $pkg.msg import SimStatus, RecorderStatus; Stylize.Request(); SimStatus()" \
  >>"$log" 2>&1 || fail "the installed package does not import"

echo "$wanted" > "$stamp_file"
printf 'done (%ss)\n' "$((SECONDS - start))" >&2
