#!/usr/bin/env bash
# Proves donkey_ros builds as a ROS 2 workspace with colcon: copies this repository (the files git
# would commit: tracked plus untracked-but-not-ignored) to a temporary workspace's src/, runs
# `colcon build` with the venv's python and ROS 2 wheels, and checks the install tree:
#   * donkey_ros (ament_python): package.xml, launch files, config, console scripts, its Python
#     package and the ament index entry;
#   * donkey_ros_interfaces (rosidl, nested in this repo): built by donkey_ros's setup.py into
#     install/donkey_ros during the same plain `colcon build` (colcon does not look below the
#     root package.xml), importable from the install tree (`from donkey_ros_interfaces.srv import
#     Stylize`) and listed where `ros2 interface` looks (ament index `rosidl_interfaces`).
#
# Usage: scripts/colcon_check.sh [--keep]   (--keep: leave the workspace for inspection)
# Environment: VIRTUAL_ENV or DONKEY_ROS_VENV (default .venv): the venv with colcon + ROS wheels;
#              DONKEY_ROS_COLCON_WS: use this (empty or absent) dir as the workspace.
# Prints one line per stage; on failure, the tail of the colcon log.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VIRTUAL_ENV:-${DONKEY_ROS_VENV:-$root/.venv}}"
venv="$(cd "$venv" && pwd)"
py="$venv/bin/python"
keep=0
[ "${1:-}" = --keep ] && keep=1

say() { printf '[colcon-check] %s\n' "$*" >&2; }
die() { say "FAILED: $*"; exit 1; }

[ -x "$py" ] || die "no python at $py (run scripts/setup_env.sh)"
[ -x "$venv/bin/colcon" ] || die "colcon is not installed in $venv (requirements-test.txt)"

if [ -n "${DONKEY_ROS_COLCON_WS:-}" ]; then
  ws="$DONKEY_ROS_COLCON_WS"
  mkdir -p "$ws"
  keep=1
else
  ws="$(mktemp -d "${TMPDIR:-/tmp}/donkey_ros_colcon.XXXXXX")"
fi
ws="$(cd "$ws" && pwd)"
cleanup() {
  if [ "$keep" = 1 ]; then say "workspace kept: $ws"; else rm -rf "$ws"; fi
}
trap cleanup EXIT

# 1. The workspace: src/donkey_ros holds the repository's files as a clone would have them.
pkg_src="$ws/src/donkey_ros"
mkdir -p "$pkg_src"
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$root" && git ls-files -z --cached --others --exclude-standard \
     | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
     | tar --null -T - -cf -) | tar -xf - -C "$pkg_src"
else
  (cd "$root" && tar --exclude=.git --exclude='.venv*' --exclude=build --exclude=install \
     --exclude=log --exclude=__pycache__ --exclude='*.egg-info' -cf - .) | tar -xf - -C "$pkg_src"
fi
[ -f "$pkg_src/package.xml" ] && [ -f "$pkg_src/donkey_ros_interfaces/package.xml" ] \
  || die "repository copy in $pkg_src is incomplete"

# 2. colcon build, with only this venv as the underlay (no system ROS).
export PATH="$venv/bin:$PATH"
export AMENT_PREFIX_PATH="$venv"
export CMAKE_PREFIX_PATH="$venv"
unset PYTHONPATH COLCON_PREFIX_PATH ROS_DISTRO COLCON_DEFAULTS_FILE DONKEY_ROS_BUILD_INTERFACES 2>/dev/null || true
export COLCON_HOME="$ws/.colcon"   # ignore the user's ~/.colcon settings
# The wheels' cmake files name their build machine's Python headers; point them at this venv's.
VIRTUAL_ENV="$venv" "$root/scripts/build_interfaces.sh" --fix-exports

cd "$ws"
# The user's plain command: no base paths, no colcon_defaults.yaml. colcon finds one package
# (donkey_ros); its setup.py builds the nested donkey_ros_interfaces into install/donkey_ros.
say "colcon build in $ws ..."
start=$SECONDS
log="$ws/colcon_build.log"
if ! "$venv/bin/colcon" build --event-handlers console_direct+ >"$log" 2>&1; then
  tail -n 60 "$log" >&2
  die "colcon build failed (log: $log)"
fi
grep -q "^Finished <<< donkey_ros " "$log" || { tail -n 20 "$log" >&2; die "colcon did not build donkey_ros (log: $log)"; }
grep -q "building the nested package donkey_ros_interfaces" "$log" \
  || { tail -n 20 "$log" >&2; die "donkey_ros's setup.py did not build donkey_ros_interfaces (log: $log)"; }
say "built in $((SECONDS - start))s; checking the install tree"

# 3. The install tree.
inst="$ws/install"
share="$inst/donkey_ros/share/donkey_ros"
[ -f "$share/package.xml" ] || die "missing $share/package.xml"
cmp -s "$share/package.xml" "$pkg_src/package.xml" || die "installed package.xml differs from the source"
[ -f "$inst/donkey_ros/share/ament_index/resource_index/packages/donkey_ros" ] || die "donkey_ros is not in the ament index"

shopt -s nullglob
launch_src=("$pkg_src"/launch/*.launch.py)
shopt -u nullglob
[ "${#launch_src[@]}" -gt 0 ] || die "no launch/*.launch.py in the repository"
for f in "${launch_src[@]}"; do
  [ -f "$share/launch/$(basename "$f")" ] || die "launch file $(basename "$f") not installed in $share/launch"
done
shopt -s nullglob
config_src=("$pkg_src"/config/*.yaml)
shopt -u nullglob
for f in "${config_src[@]}"; do
  [ -f "$share/config/$(basename "$f")" ] || die "config file $(basename "$f") not installed in $share/config"
done

# Console scripts named in setup.py (e.g. `sim = donkey_ros.sim.sim_node:main`) -> lib/donkey_ros/.
mapfile -t scripts < <(grep -oE "['\"][A-Za-z0-9_.-]+ *= *[A-Za-z0-9_.]+:[A-Za-z0-9_]+['\"]" "$pkg_src/setup.py" \
                       | sed -E "s/^['\"]([A-Za-z0-9_.-]+) *=.*/\1/")
[ "${#scripts[@]}" -gt 0 ] || die "found no console_scripts in setup.py"
printf '%s\n' "${scripts[@]}" | grep -qx sim || die "setup.py has no 'sim' console script"
for s in "${scripts[@]}"; do
  exe="$inst/donkey_ros/lib/donkey_ros/$s"
  [ -x "$exe" ] || die "console script $s not installed as $exe"
done

ifc="$inst/donkey_ros"   # the interfaces share donkey_ros's install prefix
[ -f "$ifc/share/donkey_ros_interfaces/srv/Stylize.srv" ] || die "Stylize.srv not installed"
[ -f "$ifc/share/ament_index/resource_index/packages/donkey_ros_interfaces" ] || die "donkey_ros_interfaces is not in the ament index"

# 4. Use the install the way a ROS user does: source it, then import / look things up.
[ -f "$inst/local_setup.sh" ] || die "colcon wrote no install/local_setup.sh"
check_py=$(cat <<'PY'
import os, sys
inst = os.path.realpath(sys.argv[1])
def under(path):
    return os.path.realpath(path).startswith(inst + os.sep)
from donkey_ros_interfaces.srv import Stylize, ListStyles
from donkey_ros_interfaces.msg import SimStatus, RecorderStatus
import donkey_ros_interfaces
assert under(donkey_ros_interfaces.__file__), 'donkey_ros_interfaces imported from ' + donkey_ros_interfaces.__file__
req = Stylize.Request(style='mosaic', strength=1.0)
assert req.style == 'mosaic' and Stylize.Response().success is False
assert SimStatus(laps=2).laps == 2 and RecorderStatus(bytes=2**40).bytes == 2**40
from rclpy.serialization import deserialize_message, serialize_message
assert deserialize_message(serialize_message(req), Stylize.Request) == req
import donkey_ros
assert under(donkey_ros.__file__), 'donkey_ros imported from ' + donkey_ros.__file__
from ament_index_python.packages import get_package_share_directory, get_package_prefix
from ament_index_python import get_resource, get_resources
assert 'donkey_ros_interfaces' in get_resources('rosidl_interfaces'), 'ros2 interface would not list donkey_ros_interfaces'
types, _ = get_resource('rosidl_interfaces', 'donkey_ros_interfaces')
assert 'srv/Stylize.srv' in types.split(), types
for name in ('donkey_ros', 'donkey_ros_interfaces'):
    assert under(get_package_share_directory(name)), name + ' share dir not in the install tree'
libs = sorted({l.split()[-1] for l in open('/proc/self/maps') if 'donkey_ros_interfaces' in l and '.so' in l})
assert libs and all(under(l) for l in libs), 'interface libraries not from the install tree: %s' % libs
print('ok: %d donkey_ros_interfaces libraries loaded, all from %s' % (len(libs), inst))
PY
)
# The wheels' bootstrapper would re-exec python with $venv/lib and the wheels' .libs dirs added to
# LD_LIBRARY_PATH in no fixed order; that could load the copy of the interface libraries that
# build_interfaces.sh put in $venv/lib. Set the path here instead, the install tree first, so the
# check proves the colcon-built libraries work.
site="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
wheel_libs="$venv/lib$(printf ':%s' "$site"/ros_*.libs)"
out="$(env -u LD_LIBRARY_PATH bash -c '
  set -e
  COLCON_CURRENT_PREFIX="$1/install" . "$1/install/local_setup.sh"
  export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$4" _ROS_WHEELS_BOOTSTRAP_COMPLETE=1
  exec "$2" -c "$3" "$1/install"' _ "$ws" "$py" "$check_py" "$wheel_libs" 2>&1)" \
  || { printf '%s\n' "$out" >&2; die "the installed packages do not import from $inst"; }
say "$(printf '%s\n' "$out" | tail -n 1)"
say "OK: donkey_ros (${#scripts[@]} console scripts, ${#launch_src[@]} launch files) and donkey_ros_interfaces install and import"
