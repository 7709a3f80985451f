"""Which ROS 2 distro is running (no rclpy import: cores such as the bag writer use it).

A sourced ROS installation (apt's /opt/ros/<distro>/setup.bash, a colcon workspace) sets
``ROS_DISTRO``; the PyPI wheels set nothing, so then the installed rclpy's version tells it.
"""
from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import os
import re
from pathlib import Path

RCLPY_MAJOR_TO_DISTRO = {7: 'jazzy', 9: 'kilted'}
"""rclpy's major version in each supported distro (Jazzy 7.1.x, Kilted 9.1.x)."""


def ros_distro() -> str:
    """``ROS_DISTRO`` if set, else the distro of the installed rclpy; '' when unknown (as rosbag2
    writes when ``ROS_DISTRO`` is unset)."""
    return os.environ.get('ROS_DISTRO', '').strip() or _distro_of_rclpy()


@functools.lru_cache(maxsize=1)
def _distro_of_rclpy() -> str:
    match = re.match(r'(\d+)\.', rclpy_version())
    return RCLPY_MAJOR_TO_DISTRO.get(int(match.group(1)), '') if match else ''


def rclpy_version() -> str:
    """The installed rclpy's version, without importing it: its package.xml in the install prefix
    (apt, colcon and the wheels all install <prefix>/share/rclpy/package.xml), else the wheel's
    distribution metadata; '' when rclpy is not installed."""
    spec = importlib.util.find_spec('rclpy')
    if spec is None or not spec.origin:
        return ''
    match = None
    parents = Path(spec.origin).parents  # <prefix>/lib/pythonX.Y/site-packages/rclpy/__init__.py
    if len(parents) > 4:
        try:
            text = (parents[4] / 'share' / 'rclpy' / 'package.xml').read_text()
            match = re.search(r'<version>\s*([^<\s]+)\s*</version>', text)
        except OSError:
            pass
    if match:
        return match.group(1)
    try:
        return importlib.metadata.version('ros-rclpy')
    except importlib.metadata.PackageNotFoundError:
        return ''
