"""The overlay node: what the pilot sees, with the drive commands drawn on it, for rviz.

Subscribes `camera/image_raw` (newest frame only), `cmd`, `user/cmd`, `pilot/cmd` and `sim/odom`.
Publishes `pilot/overlay` (the frame with steering arcs and throttle/steering bars, at most
``rate`` Hz) and `cmd/marker` (a visualization_msgs/Marker ARROW: the commanded steering, at the
car's `sim/odom` pose in the simulator, else at the origin of ``marker_frame``).
"""
from __future__ import annotations

import math
import time

from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import Image
from visualization_msgs.msg import Marker

from donkey_ros.common import qos
from donkey_ros.common.command import CommandError, DriveCommand, command_from_msg
from donkey_ros.common.diagnostics import ERROR, OK, WARN, DiagnosticsPublisher
from donkey_ros.common.image import ImageError, array_to_image, image_to_array
from donkey_ros.common.params import Param, declare_parameters
from donkey_ros.common.runner import node_main
from donkey_ros.monitor.overlay import arrow, draw_overlay

NODE_NAME = 'overlay'
PARAMS = (
    Param('rate', 10.0, 'Most overlay frames per second published on pilot/overlay.',
          min=0.5, max=60.0),
    Param('upscale', 2, 'Integer enlargement of the overlay image, so the drawing stays legible '
          'in rviz (1 = camera size).', min=1, max=4),
    Param('command_timeout', 0.5, "Seconds after which a source's last command is not drawn.",
          min=0.05, max=10.0),
    Param('max_steer_deg', 25.0, 'Wheel angle at full steering, for the cmd/marker arrow.',
          min=1.0, max=60.0),
    Param('marker_frame', 'base_link', 'Frame of cmd/marker when no sim/odom pose is known '
          '(a real car).'),
    Param('odom_timeout', 1.0, 'Seconds after which the last sim/odom pose is no longer used.',
          min=0.1, max=10.0),
)

SOURCES = {'cmd': 'cmd', 'user/cmd': 'user', 'pilot/cmd': 'pilot'}


class OverlayNode(Node):
    NODE_NAME = NODE_NAME

    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self.params = declare_parameters(self, PARAMS)
        self.commands: dict[str, tuple[DriveCommand, float]] = {}
        self.odom: tuple[float, float, float, str, float] | None = None
        self.frames_in = 0
        self.published = 0
        self.rejected = 0
        self.draw_seconds = 0.0
        self.last_error = ''
        self.next_due = 0.0
        self.image_pub = self.create_publisher(Image, 'pilot/overlay', qos.IMAGE_PUBLISH)
        self.marker_pub = self.create_publisher(Marker, 'cmd/marker', 10)
        self.create_subscription(Image, 'camera/image_raw', self._on_image, qos.IMAGE_LATEST)
        for topic, source in SOURCES.items():
            self.create_subscription(
                TwistStamped, topic, lambda msg, source=source: self._on_command(source, msg),
                qos.COMMAND)
        self.create_subscription(Odometry, 'sim/odom', self._on_odom, qos.SENSOR)
        self.diagnostics = DiagnosticsPublisher(self, self._report)

    def _on_command(self, source: str, msg: TwistStamped) -> None:
        try:
            command = command_from_msg(msg)
        except CommandError as error:
            self.get_logger().error(f'{source}: {error}', throttle_duration_sec=2.0)
            return
        self.commands[source] = (command, time.monotonic())
        if source == 'cmd':
            self.marker_pub.publish(self._marker(command, msg))

    def _on_odom(self, msg: Odometry) -> None:
        pose = msg.pose.pose
        yaw = 2.0 * math.atan2(pose.orientation.z, pose.orientation.w)
        self.odom = (pose.position.x, pose.position.y, yaw, msg.header.frame_id or 'odom',
                     time.monotonic())

    def _marker(self, command: DriveCommand, msg: TwistStamped) -> Marker:
        odom = self.odom
        if odom is not None and time.monotonic() - odom[4] <= self.params.odom_timeout:
            shape, frame = arrow(command, odom[0], odom[1], odom[2],
                                 self.params.max_steer_deg), odom[3]
        else:
            shape, frame = arrow(command, max_steer_deg=self.params.max_steer_deg), \
                self.params.marker_frame
        marker = Marker(ns='cmd', id=0, type=Marker.ARROW, action=Marker.ADD)
        marker.header.frame_id = frame
        marker.header.stamp = msg.header.stamp
        marker.pose.position.x, marker.pose.position.y = float(shape.x), float(shape.y)
        marker.pose.position.z = 0.05
        marker.pose.orientation.z = math.sin(shape.yaw / 2)
        marker.pose.orientation.w = math.cos(shape.yaw / 2)
        marker.scale.x, marker.scale.y, marker.scale.z = float(shape.length), 0.04, 0.08
        forward, reverse = command.throttle > 0.01, command.throttle < -0.01
        marker.color.r = 0.9 if reverse else 0.2 if forward else 0.7
        marker.color.g = 0.9 if forward else 0.2 if reverse else 0.7
        marker.color.b = 0.2 if forward or reverse else 0.7
        marker.color.a = 1.0
        marker.lifetime.nanosec = 500_000_000  # vanishes when cmd stops
        return marker

    def _on_image(self, msg: Image) -> None:
        self.frames_in += 1
        now = time.monotonic()
        if now < self.next_due:
            return
        # 0.8 periods: a camera at exactly `rate` is not thinned by its jitter.
        self.next_due = now + 0.8 / self.params.rate
        try:
            frame = image_to_array(msg)
        except ImageError as error:
            self.rejected += 1
            self.last_error = str(error)
            self.get_logger().error(f'camera/image_raw: {error}', throttle_duration_sec=2.0)
            return
        self.last_error = ''
        timeout = self.params.command_timeout
        commands = {source: command for source, (command, when) in self.commands.items()
                    if now - when <= timeout}
        started = time.perf_counter()
        overlay = draw_overlay(frame, commands, self.params.upscale)
        self.draw_seconds += time.perf_counter() - started
        self.image_pub.publish(array_to_image(overlay, msg.header.stamp, msg.header.frame_id))
        self.published += 1

    def _report(self):
        now = time.monotonic()
        values = {'frames_received': self.frames_in, 'overlays_published': self.published,
                  'frames_rejected': self.rejected,
                  'draw_ms_mean': 1000 * self.draw_seconds / self.published if self.published
                  else 0.0,
                  'odom': self.odom is not None and now - self.odom[4] <= self.params.odom_timeout}
        for source, (_, when) in self.commands.items():
            values[f'{source}_age'] = now - when
        if self.last_error:
            return ERROR, f'camera frames refused: {self.last_error}', values
        if not self.frames_in:
            return WARN, 'waiting for camera/image_raw', values
        return OK, f'{self.published} overlays published', values


def main() -> None:
    node_main(OverlayNode)
