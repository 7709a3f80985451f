"""Where the package's installed files are: share directory, console scripts."""
from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

PACKAGE = 'donkey_ros'
SOURCE_ROOT = Path(__file__).resolve().parent.parent


def share_dir() -> Path:
    """The package's share directory (launch/, config/).

    Found through the ament index when ROS is sourced (colcon install, apt ROS), else under the
    Python prefix (pip install), else the source tree (editable install).
    """
    try:
        from ament_index_python.packages import get_package_share_directory
        return Path(get_package_share_directory(PACKAGE))
    except Exception:  # not sourced, or not installed through ament
        pass
    installed = Path(sys.prefix) / 'share' / PACKAGE
    if (installed / 'package.xml').exists():
        return installed
    return SOURCE_ROOT


def config_file(name: str) -> Path:
    return share_dir() / 'config' / name


def node_modules(scripts: dict[str, str] | None = None) -> dict:
    """{executable: module} for every console script whose module declares ``PARAMS`` (a node)."""
    import importlib

    modules = {}
    for script, target in sorted((console_scripts() if scripts is None else scripts).items()):
        module = importlib.import_module(target.split(':')[0])
        if hasattr(module, 'PARAMS'):
            modules[script] = module
    return modules


def console_scripts() -> dict[str, str]:
    """{script name: 'module:function'} as declared by the installed distribution."""
    try:
        entry_points = metadata.distribution(PACKAGE).entry_points
    except metadata.PackageNotFoundError:
        return {}
    return {ep.name: ep.value for ep in entry_points if ep.group == 'console_scripts'}
