"""Bag-side messages: the car's topics as rosbags typestore messages, built in one place.

What the recorder writes from live messages, the offline writers (the loop's expert recordings,
synthetic bags, DonkeyCar tub import) build here, so a bag written without ROS has the same types,
frames, and offered QoS as one the recorder wrote. Stamps are nanoseconds.
"""
from __future__ import annotations

import math

import numpy as np

from donkey_ros.common import topics
from donkey_ros.recording.types import typestore
from donkey_ros.recording.writer import qos_profile


def _msgs():
    return typestore().types


def header(stamp_ns: int, frame_id: str = ''):
    msgs = _msgs()
    return msgs['std_msgs/msg/Header'](
        stamp=msgs['builtin_interfaces/msg/Time'](sec=stamp_ns // 10**9,
                                                  nanosec=stamp_ns % 10**9),
        frame_id=frame_id)


def twist_stamped(stamp_ns: int, steering: float, throttle: float,
                  frame_id: str = 'base_link'):
    """A drive command as the nodes send it: ``linear.x`` throttle, ``angular.z`` steering."""
    msgs = _msgs()
    vector = msgs['geometry_msgs/msg/Vector3']
    return msgs['geometry_msgs/msg/TwistStamped'](
        header=header(stamp_ns, frame_id), twist=msgs['geometry_msgs/msg/Twist'](
            linear=vector(x=float(throttle), y=0.0, z=0.0),
            angular=vector(x=0.0, y=0.0, z=float(steering))))


def image(stamp_ns: int, pixels: np.ndarray, frame_id: str = 'camera'):
    """An rgb8 ``sensor_msgs/Image`` of HxWx3 uint8 RGB pixels."""
    height, width = pixels.shape[:2]
    return _msgs()['sensor_msgs/msg/Image'](
        header=header(stamp_ns, frame_id), height=height, width=width, encoding='rgb8',
        is_bigendian=0, step=width * 3, data=np.ascontiguousarray(pixels).reshape(-1))


def compressed_image(stamp_ns: int, jpeg: bytes, frame_id: str = 'camera'):
    """A ``sensor_msgs/CompressedImage`` of JPEG bytes (of an RGB picture)."""
    return _msgs()['sensor_msgs/msg/CompressedImage'](
        header=header(stamp_ns, frame_id), format='rgb8; jpeg compressed bgr8',
        data=np.frombuffer(jpeg, np.uint8))


def string(data: str):
    return _msgs()['std_msgs/msg/String'](data=data)


def sim_status(stamp_ns: int, frame_id: str = 'odom', **fields):
    """A ``donkey_ros_interfaces/SimStatus``; ``fields`` as ``sim.simulator.SimStatus
    .message_fields()`` gives them (missing ones are 0 / False / '')."""
    msgs = _msgs()
    values = {'on_track': False, 'cross_track_error': 0.0, 'progress': 0.0, 'speed': 0.0,
              'laps': 0, 'lap_time': 0.0, 'last_lap_time': 0.0, 'best_lap_time': 0.0,
              'off_track_count': 0, 'distance': 0.0, 'track': ''}
    unknown = set(fields) - set(values)
    if unknown:
        raise TypeError(f"not SimStatus fields: {', '.join(sorted(unknown))}")
    values.update(fields)
    return msgs['donkey_ros_interfaces/msg/SimStatus'](header=header(stamp_ns, frame_id),
                                                       **values)


def odometry(stamp_ns: int, x: float, y: float, yaw: float, speed: float,
             yaw_rate: float = 0.0, frame_id: str = 'odom', child_frame_id: str = 'base_link'):
    """A planar ``nav_msgs/Odometry`` (pose x, y, yaw; forward speed and yaw rate)."""
    msgs = _msgs()
    vector = msgs['geometry_msgs/msg/Vector3']
    pose = msgs['geometry_msgs/msg/Pose'](
        position=msgs['geometry_msgs/msg/Point'](x=float(x), y=float(y), z=0.0),
        orientation=msgs['geometry_msgs/msg/Quaternion'](
            x=0.0, y=0.0, z=math.sin(yaw / 2), w=math.cos(yaw / 2)))
    return msgs['nav_msgs/msg/Odometry'](
        header=header(stamp_ns, frame_id), child_frame_id=child_frame_id,
        pose=msgs['geometry_msgs/msg/PoseWithCovariance'](pose=pose, covariance=np.zeros(36)),
        twist=msgs['geometry_msgs/msg/TwistWithCovariance'](
            twist=msgs['geometry_msgs/msg/Twist'](
                linear=vector(x=float(speed), y=0.0, z=0.0),
                angular=vector(x=0.0, y=0.0, z=float(yaw_rate))),
            covariance=np.zeros(36)))


def serialize(msg) -> bytes:
    """CDR bytes of a typestore message, as a bag stores them."""
    return bytes(typestore().serialize_cdr(msg, msg.__msgtype__))


def offered_qos(topic: str) -> list[dict]:
    """The QoS the simulator's nodes offer on ``topic`` (relative name; common/qos.py), in the
    bag metadata form: latched topics transient-local depth 1, the others reliable depth 10."""
    if topic in topics.LATCHED:
        return [qos_profile(durability='transient_local', depth=1)]
    return [qos_profile()]


def add_topic(writer, topic: str, namespace: str = '', msgtype: str | None = None) -> str:
    """Adds the car's ``topic`` (relative) to a ``BagWriter`` with its type and QoS; returns
    the absolute name to write under."""
    name = topics.in_namespace(topic, namespace)
    writer.add_topic(name, msgtype or topics.TYPES[topic], offered_qos(topic))
    return name


def write(writer, name: str, stamp_ns: int, msg) -> None:
    """Writes a typestore message under the absolute topic ``name``."""
    writer.write(name, stamp_ns, serialize(msg))
