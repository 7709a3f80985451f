"""The expert driver: pure pursuit on the simulator's ground truth, published as `user/cmd`.

It drives clean laps so data can be recorded without a human; `weave_amplitude` adds a slow
steering weave so the recordings also contain recoveries back to the centre line.
"""
from __future__ import annotations

import math

from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node

from donkey_ros.common import qos
from donkey_ros.common.command import DriveCommand, command_to_msg
from donkey_ros.common.diagnostics import OK, WARN, DiagnosticsPublisher
from donkey_ros.common.params import Param, declare_parameters
from donkey_ros.common.runner import node_main
from donkey_ros.sim.expert import PurePursuit
from donkey_ros.sim.track import DEFAULT_TRACK, load_track

NODE_NAME = 'expert'
PARAMS = (
    Param('track', DEFAULT_TRACK, 'Track the simulator runs (shipped name or YAML path).'),
    Param('speed', 1.5, 'Target speed in m/s.', min=0.1, max=10.0),
    Param('lookahead', 0.6, 'Pure-pursuit lookahead distance in m.', min=0.1, max=5.0),
    Param('max_steer_deg', 25.0, "The car's full steering angle in degrees (steering = 1).",
          min=1.0, max=60.0),
    Param('wheelbase', 0.26, "The car's wheelbase in m.", min=0.05, max=2.0),
    Param('weave_amplitude', 0.0,
          'Lateral weave in m added to the path, so data contains recoveries (0 = none).',
          min=0.0, max=1.0),
    Param('weave_period', 4.0, 'Seconds per weave cycle.', min=0.5, max=60.0),
    Param('seed', 0, 'Random seed of the weave.', min=0),
)


def controller_from(p) -> PurePursuit:
    """The pure-pursuit driver for the parameter values ``p`` (raises TrackError)."""
    return PurePursuit(
        load_track(p.track), lookahead=p.lookahead, target_speed=p.speed,
        max_steer_deg=p.max_steer_deg, wheelbase=p.wheelbase,
        weave_amplitude=p.weave_amplitude, weave_period=p.weave_period, seed=p.seed)


class ExpertNode(Node):
    NODE_NAME = NODE_NAME

    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self._staged = None
        self.params = declare_parameters(self, PARAMS, on_change=self._on_param,
                                         check=self._check_param)
        self.controller = controller_from(self.params)
        self.last = DriveCommand()
        self.odom_count = 0
        self.cmd_pub = self.create_publisher(TwistStamped, 'user/cmd', qos.COMMAND)
        self.create_subscription(Odometry, 'sim/odom', self._on_odom, qos.SENSOR)
        self.diagnostics = DiagnosticsPublisher(self, self._report)

    def _check_param(self, proposed, changed) -> None:
        self._staged = controller_from(proposed)  # a track that cannot be read refuses the batch

    def _on_param(self, name, value) -> None:
        if self._staged is not None:  # every parameter shapes the controller: one swap per batch
            self.controller, self._staged = self._staged, None

    def _on_odom(self, odom: Odometry) -> None:
        pose = odom.pose.pose
        yaw = 2.0 * math.atan2(pose.orientation.z, pose.orientation.w)
        throttle, steering = self.controller.command(
            pose.position.x, pose.position.y, yaw, odom.twist.twist.linear.x)
        self.last = DriveCommand.checked(steering, throttle)
        self.odom_count += 1
        self.cmd_pub.publish(command_to_msg(self.last, odom.header.stamp))

    def _report(self):
        level = OK if self.odom_count else WARN
        return level, 'driving' if self.odom_count else 'waiting for sim/odom', {
            'steering': self.last.steering, 'throttle': self.last.throttle,
            'odom_received': self.odom_count}

    def on_shutdown(self) -> None:
        self.cmd_pub.publish(command_to_msg(DriveCommand(), self.get_clock().now().to_msg()))


def main() -> None:
    node_main(ExpertNode)
