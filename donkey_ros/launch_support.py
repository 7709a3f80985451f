"""Decisions the launch files take at launch time, as plain functions (tested without launch).

Launch files import this module from the installed package (``source install/setup.bash``).
"""
from __future__ import annotations

JOY_PACKAGE = 'joy'


def package_installed(package: str) -> bool:
    """Whether ROS can find ``package`` (in the ament index of AMENT_PREFIX_PATH), as
    ``Node(package=...)`` would look it up."""
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix

    try:
        get_package_prefix(package)
    except (PackageNotFoundError, ValueError, OSError):  # OSError: no AMENT_PREFIX_PATH
        return False
    return True


def joystick_plan(requested: bool, joy_installed: bool) -> tuple[bool, str]:
    """Whether to start the gamepad nodes (joy_node + joy_teleop), and a warning line or ''.

    A missing ``joy`` package turns the gamepad off with one warning instead of stopping the
    launch: the web page and the keyboard still drive.
    """
    if not requested:
        return False, ''
    if joy_installed:
        return True, ''
    return False, ('joystick off: the joy package (joy_node) is not installed; the web page and '
                   'keyboard still drive (install it: sudo apt install ros-$ROS_DISTRO-joy; '
                   'or launch with joystick:=false)')
