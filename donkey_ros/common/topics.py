"""The car's topics: names (relative: the car's namespace goes in front) and message types.

One place for what every node, the recorder, the bag tools, the loop and the tub import agree on.
"""
from __future__ import annotations

IMAGE = 'camera/image_raw'
COMPRESSED_SUFFIX = '/compressed'
COMPRESSED_IMAGE = IMAGE + COMPRESSED_SUFFIX
CAMERA_INFO = 'camera/camera_info'
USER_CMD = 'user/cmd'
PILOT_CMD = 'pilot/cmd'
CMD = 'cmd'
DRIVE_MODE = 'drive_mode'
SIM_STATUS = 'sim/status'
SIM_ODOM = 'sim/odom'
SIM_TRACK = 'sim/track'

TYPES = {
    IMAGE: 'sensor_msgs/msg/Image',
    COMPRESSED_IMAGE: 'sensor_msgs/msg/CompressedImage',
    CAMERA_INFO: 'sensor_msgs/msg/CameraInfo',
    USER_CMD: 'geometry_msgs/msg/TwistStamped',
    PILOT_CMD: 'geometry_msgs/msg/TwistStamped',
    CMD: 'geometry_msgs/msg/TwistStamped',
    DRIVE_MODE: 'std_msgs/msg/String',
    SIM_STATUS: 'donkey_ros_interfaces/msg/SimStatus',
    SIM_ODOM: 'nav_msgs/msg/Odometry',
    SIM_TRACK: 'visualization_msgs/msg/MarkerArray',
}
"""Topic -> ROS 2 message type name (as bags store it)."""

LATCHED = (DRIVE_MODE, SIM_TRACK)
"""Topics published transient-local (the last message reaches late subscribers)."""

RECORDED = (IMAGE, USER_CMD, PILOT_CMD, CMD, DRIVE_MODE, SIM_ODOM, SIM_STATUS)
"""What the recorder records by default."""


def in_namespace(topic: str, namespace: str = '') -> str:
    """The absolute name of ``topic`` for the car in ``namespace``: ('user/cmd', 'car1') ->
    '/car1/user/cmd'; no namespace -> '/user/cmd'."""
    ns = namespace.strip('/')
    return f'/{ns}/{topic}' if ns else f'/{topic}'
