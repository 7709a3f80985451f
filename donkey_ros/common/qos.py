"""The QoS profiles of the topic contract, defined once.

Measured on this project's machines: best-effort 640x480 images between processes lose most frames,
reliable lose none. So publishers of images are reliable with a small depth; a subscriber that wants
only the newest frame (the pilot) subscribes best-effort depth 1, which is compatible with a
reliable publisher; the recorder subscribes reliable.
"""
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

IMAGE_PUBLISH = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
"""Camera/sim image publishers. Depth 10, not 2: measured with bench/recorder.py at 640x480 30 Hz
on a loaded machine, depth 2 lost up to 104 of 1800 frames (the writer history drops a frame
before a slow reliable reader acknowledged it), depth 10 none (about 9 MB of history)."""

IMAGE_LATEST = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
"""Subscribers that only ever want the newest frame (the pilot)."""

IMAGE_RELIABLE = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
"""Subscribers that must not miss frames (the recorder)."""

COMMAND = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
"""Drive commands: user/cmd, pilot/cmd, cmd."""

LATCHED = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL)
"""State that late joiners must see: drive_mode, sim/track."""

SENSOR = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
"""Telemetry such as sim/odom and sim/status."""
