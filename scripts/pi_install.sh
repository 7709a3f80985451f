#!/usr/bin/env bash
# The whole install of donkey_ros on the car: a fresh Ubuntu 24.04 Raspberry Pi with ROS 2 Jazzy or
# Kilted from apt (ros-<distro>-ros-base), this repository cloned into <workspace>/src/donkey_ros.
# Idempotent: a second run redoes only what is missing (apt/pip/colcon skip what is done).
#
#   scripts/pi_install.sh [--dry-run] [--only STEP[,STEP...]] [--distro jazzy|kilted]
#
# Steps, in order (--only picks some; --dry-run prints the commands instead of running them):
#   apt     apt prerequisites: ros-dev-tools (rosdep, colcon, compiler, cmake), python3-venv,
#           python3-pip, python3-dev, i2c-tools, v4l-utils
#   rosdep  `sudo rosdep init` if never done, `rosdep update`, then in the workspace
#           `rosdep install --from-paths src --ignore-src -y` (apt packages of package.xml)
#   pip     the pip-only dependencies (requirements-pi.txt) in a venv with --system-site-packages
#           at ~/.local/share/donkey_ros/venv, constrained to apt's NumPy (and never OpenCV from
#           pip), so nothing of apt's is replaced (PEP 668-safe: no system-wide pip)
#   build   `colcon build` in the workspace (the nodes' scripts then run with the venv's python)
#   groups  adds you to i2c, video and input (PCA9685, camera, gamepad); log in again after it
#
# Environment: DONKEY_ROS_PIP_VENV (the venv, default ~/.local/share/donkey_ros/venv),
#   DONKEY_ROS_SYSTEM_PYTHON (default /usr/bin/python3), DONKEY_ROS_PI_REQUIREMENTS (default
#   requirements-pi.txt next to this script), DONKEY_ROS_WORKSPACE (default: two levels above the
#   clone, i.e. ~/ros2_ws for ~/ros2_ws/src/donkey_ros).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${DONKEY_ROS_PIP_VENV:-$HOME/.local/share/donkey_ros/venv}"
system_python="${DONKEY_ROS_SYSTEM_PYTHON:-/usr/bin/python3}"
requirements="${DONKEY_ROS_PI_REQUIREMENTS:-$root/requirements-pi.txt}"
workspace="${DONKEY_ROS_WORKSPACE:-$(cd "$root/../.." && pwd)}"
all_steps=(apt rosdep pip build groups)
steps=("${all_steps[@]}")
dry=0
distro="${ROS_DISTRO:-}"

say() { printf '[pi-install] %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
usage() { sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry=1 ;;
    --only) shift; IFS=, read -r -a steps <<< "${1:?--only needs a list of steps}" ;;
    --only=*) IFS=, read -r -a steps <<< "${1#--only=}" ;;
    --distro) shift; distro="${1:?--distro needs jazzy or kilted}" ;;
    --distro=*) distro="${1#--distro=}" ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
  shift
done
for s in "${steps[@]}"; do
  case " ${all_steps[*]} " in *" $s "*) ;; *) die "unknown step '$s' (steps: ${all_steps[*]})" ;; esac
done
wants() { case " ${steps[*]} " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# Runs a command, or prints it with --dry-run.
run() {
  if [ "$dry" = 1 ]; then printf '+ %s\n' "$*"; else "$@"; fi
}
# The same in a directory.
run_in() {
  local dir="$1"; shift
  if [ "$dry" = 1 ]; then printf '+ cd %s && %s\n' "$dir" "$*"; else (cd "$dir" && "$@"); fi
}
sudo_=()
[ "$(id -u)" = 0 ] || sudo_=(sudo)

# --- where we are ---------------------------------------------------------------------------------
if [ -z "$distro" ]; then
  found=()
  for d in /opt/ros/*/setup.bash; do [ -f "$d" ] && found+=("$(basename "$(dirname "$d")")"); done
  case "${#found[@]}" in
    0) die "no ROS 2 in /opt/ros: install ROS 2 Jazzy or Kilted from apt first (ros-jazzy-ros-base, https://docs.ros.org/en/jazzy/Installation/Ubuntu-Install-Debs.html)" ;;
    1) distro="${found[0]}" ;;
    *) die "several ROS 2 installs in /opt/ros (${found[*]}): pick one with --distro" ;;
  esac
fi
case "$distro" in
  jazzy|kilted) ;;
  *) say "ROS 2 '$distro' is not one this script was written for (jazzy, kilted); going on" ;;
esac
if [ ! -f "/opt/ros/$distro/setup.bash" ] && { wants rosdep || wants build; }; then
  [ "$dry" = 1 ] || die "/opt/ros/$distro/setup.bash not found: install ros-$distro-ros-base from apt first"
  say "(dry run: /opt/ros/$distro is not installed here)"
fi
codename="$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")"
[ "$codename" = noble ] || say "this is '${codename:-unknown}', not Ubuntu 24.04 (noble): the apt/rosdep names may differ"
[ -f "$workspace/src/$(basename "$root")/package.xml" ] && [ "$(cd "$workspace/src/$(basename "$root")" && pwd)" = "$root" ] \
  || die "the clone must be in a workspace's src/ (e.g. ~/ros2_ws/src/donkey_ros); it is $root (or set DONKEY_ROS_WORKSPACE)"
say "ROS 2 $distro, workspace $workspace, pip-only venv $venv"
[ "$dry" = 1 ] && say "dry run: printing the commands, changing nothing"

# --- apt ------------------------------------------------------------------------------------------
if wants apt; then
  packages=(ros-dev-tools python3-venv python3-pip python3-dev i2c-tools v4l-utils)
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    say "apt: installing ${missing[*]}"
    run "${sudo_[@]}" apt-get update
    run "${sudo_[@]}" apt-get install -y "${missing[@]}"
  else
    say "apt: prerequisites already installed"
  fi
fi

# --- rosdep ---------------------------------------------------------------------------------------
if wants rosdep; then
  if [ ! -f /etc/ros/rosdep/sources.list.d/20-default.list ]; then
    run "${sudo_[@]}" rosdep init
  fi
  run rosdep update --rosdistro "$distro"
  say "rosdep: installing package.xml's dependencies (apt)"
  run_in "$workspace" rosdep install --from-paths src --ignore-src -y --rosdistro "$distro"
fi

# --- pip-only dependencies ------------------------------------------------------------------------
if wants pip; then
  [ -f "$requirements" ] || die "no $requirements"
  if [ "$dry" = 0 ] && ! "$system_python" -c 'import ensurepip, venv' 2>/dev/null; then
    die "pip: $system_python cannot make a venv: sudo apt install python3-venv (the apt step)"
  fi
  if [ ! -f "$venv/pyvenv.cfg" ] || ! grep -qx 'include-system-site-packages = true' "$venv/pyvenv.cfg"; then
    say "pip: creating $venv (--system-site-packages: apt's NumPy, OpenCV, ... stay visible)"
    run "$system_python" -m venv --system-site-packages --clear "$venv"
  fi
  constraints="$venv/donkey_ros-constraints.txt"
  # What apt provides must not come from pip: NumPy and Pillow pinned to the versions the system
  # python imports, and no pip OpenCV at all (a requirement on one fails instead of shadowing
  # apt's cv2, which would also pull NumPy 2).
  constraint_text="$("$system_python" - <<'PY'
import importlib.metadata as md
lines = ['# written by scripts/pi_install.sh: keep apt\'s packages (never replaced by pip)']
for dist in ('numpy', 'pillow'):
    try:
        lines.append(f'{dist}=={md.version(dist)}')
    except md.PackageNotFoundError:
        pass
for dist in ('opencv-python', 'opencv-python-headless', 'opencv-contrib-python',
             'opencv-contrib-python-headless'):
    lines.append(f'{dist}<0')
print('\n'.join(lines))
PY
)"
  if ! grep -q '^numpy==' <<< "$constraint_text"; then
    # Without apt's NumPy, pip would put one in the venv, over apt's later.
    [ "$dry" = 1 ] || die "pip: $system_python has no NumPy: run the rosdep step first (python3-numpy)"
    say "pip: (dry run) $system_python has no NumPy here; the rosdep step installs python3-numpy"
  fi
  if [ "$dry" = 1 ]; then
    printf '+ write %s:\n%s\n' "$constraints" "$(sed 's/^/    /' <<< "$constraint_text")"
  else
    printf '%s\n' "$constraint_text" > "$constraints"
  fi
  say "pip: installing $(grep -cv '^\s*\(#\|$\)' "$requirements") pip-only packages into $venv"
  run "$venv/bin/python" -m pip install --disable-pip-version-check --upgrade-strategy only-if-needed \
    -c "$constraints" -r "$requirements"
  if [ "$dry" = 0 ]; then
    # The venv's python must still import apt's NumPy, not one in the venv.
    "$venv/bin/python" - "$venv" <<'PY' || die "pip: NumPy now comes from $venv: delete it and run again"
import os, sys
venv = os.path.realpath(sys.argv[1])
try:
    import numpy
except ImportError:
    sys.exit(0)
where = os.path.realpath(numpy.__file__)
print(f'[pi-install] pip: the venv imports NumPy {numpy.__version__} from {os.path.dirname(where)}',
      file=sys.stderr)
sys.exit(1 if where.startswith(venv + os.sep) else 0)
PY
  fi
fi

# --- colcon build ---------------------------------------------------------------------------------
if wants build; then
  say "build: colcon build in $workspace (donkey_ros and its nested donkey_ros_interfaces)"
  if [ "$dry" = 1 ]; then
    printf '+ source /opt/ros/%s/setup.bash\n' "$distro"
    run_in "$workspace" env DONKEY_ROS_PIP_VENV="$venv" colcon build
  else
    set +u
    # shellcheck disable=SC1090
    . "/opt/ros/$distro/setup.bash"
    set -u
    (cd "$workspace" && DONKEY_ROS_PIP_VENV="$venv" colcon build)
  fi
fi

# --- groups ---------------------------------------------------------------------------------------
relogin=0
if wants groups; then
  user="${SUDO_USER:-$(id -un)}"
  for g in i2c video input; do
    if ! getent group "$g" >/dev/null; then
      if [ "$g" = i2c ]; then
        # Ubuntu without an i2c group: make one and give it /dev/i2c-* (as Raspberry Pi OS does).
        run "${sudo_[@]}" groupadd --system i2c
        if [ "$dry" = 1 ]; then
          printf '+ write /etc/udev/rules.d/60-donkey-ros-i2c.rules: SUBSYSTEM=="i2c-dev", GROUP="i2c", MODE="0660"\n'
        else
          echo 'SUBSYSTEM=="i2c-dev", GROUP="i2c", MODE="0660"' \
            | "${sudo_[@]}" tee /etc/udev/rules.d/60-donkey-ros-i2c.rules >/dev/null
        fi
        run "${sudo_[@]}" udevadm trigger --subsystem-match=i2c-dev
      else
        say "groups: no group '$g' on this system; skipped"
        continue
      fi
    fi
    if id -nG "$user" | tr ' ' '\n' | grep -qx "$g"; then
      continue
    fi
    run "${sudo_[@]}" usermod -aG "$g" "$user"
    relogin=1
  done
fi

# --- next -----------------------------------------------------------------------------------------
{
  echo
  echo "[pi-install] done. Next:"
  [ "$relogin" = 1 ] && echo "  log out and in again (new groups: i2c, video, input)"
  echo "  source /opt/ros/$distro/setup.bash"
  echo "  source $workspace/install/setup.bash"
  echo "  ros2 run donkey_ros donkey-ros doctor --config $root/config/car.yaml"
  echo "  ros2 launch donkey_ros car.launch.py"
  ls /dev/i2c-* >/dev/null 2>&1 || echo "  (no /dev/i2c-* yet: enable I2C, see docs/pi.md)"
} >&2
