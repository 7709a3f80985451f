# Sourced by setup_env.sh and run_tests.sh (with $root set): which ROS 2 distro and virtualenv.
#   DONKEY_ROS_DISTRO  kilted (default) or jazzy: any distro with a requirements-<distro>.txt
#   DONKEY_ROS_VENV    the virtualenv; default .venv for kilted, .venv-<distro> for the others
distro="${DONKEY_ROS_DISTRO:-kilted}"
distro_requirements="$root/requirements-$distro.txt"
if [ ! -f "$distro_requirements" ]; then
  known=()
  for f in "$root"/requirements-*.txt; do
    f="${f##*/requirements-}"; f="${f%.txt}"
    case "$f" in test|pi) ;; *) known+=("$f") ;; esac
  done
  echo "error: DONKEY_ROS_DISTRO=$distro: there is no requirements-$distro.txt (distros: ${known[*]})" >&2
  exit 2
fi
if [ "$distro" = kilted ]; then
  venv="${DONKEY_ROS_VENV:-$root/.venv}"
else
  venv="${DONKEY_ROS_VENV:-$root/.venv-$distro}"
fi
