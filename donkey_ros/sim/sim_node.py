"""The simulator node: stands in for camera and car. Obeys `cmd`, publishes what a car would see.

Publishes `camera/image_raw` (+ `camera/camera_info`) at `rate`, and ground truth: `sim/odom`,
`sim/status` (on-track, cross-track error, laps...), `sim/track` (markers for rviz, latched).
Serves `sim/reset`. Commands older than `cmd_timeout` count as neutral, like the real actuator.
Every parameter can be set at run time: a simulator parameter (track, camera, lighting, car...)
rebuilds the simulator (built while the change is validated, so a bad track refuses it) and puts
the car back on the start line; `rate` restarts the frame timer.
"""
from __future__ import annotations

import math
import time

from geometry_msgs.msg import Point, TwistStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from std_srvs.srv import Trigger
from visualization_msgs.msg import Marker, MarkerArray

from donkey_ros.common import qos, topics
from donkey_ros.common.clock import create_steady_timer, steady_now
from donkey_ros.common.command import NEUTRAL, CommandError, command_from_msg
from donkey_ros.common.diagnostics import OK, WARN, DiagnosticsPublisher
from donkey_ros.common.image import array_to_image
from donkey_ros.common.params import Param, declare_parameters
from donkey_ros.common.runner import node_main
from donkey_ros.sim.factory import SIM_PARAMS, simulator_from_params
from donkey_ros.sim.settings import FRAME_RATE, PHYSICS_SUBSTEPS

NODE_NAME = 'sim'
PARAMS = SIM_PARAMS + (
    Param('rate', FRAME_RATE, 'Camera frames per second (the physics steps in between).',
          min=1.0, max=240.0),
    Param('physics_substeps', PHYSICS_SUBSTEPS, 'Physics steps per camera frame.', min=1, max=100),
    Param('time_scale', 1.0, 'Simulated seconds per wall-clock second (>1 runs faster than '
          'real time, for tests and data generation; raise `rate` with it).', min=0.01, max=50.0),
    Param('cmd_timeout', 0.5, 'Seconds after which a silent `cmd` counts as neutral.',
          min=0.01, max=10.0),
    Param('frame_id', 'camera', 'frame_id of the published images.'),
    Param('odom_frame_id', 'odom', 'frame_id of sim/odom and sim/track.'),
)
SIM_NAMES = {spec.name for spec in SIM_PARAMS}


class SimNode(Node):
    NODE_NAME = NODE_NAME

    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self._staged_sim = None
        self.params = declare_parameters(self, PARAMS, on_change=self._on_param,
                                         check=self._check_param)
        self.sim = simulator_from_params(self.params)
        self.command = NEUTRAL
        self.command_time = -math.inf
        self.rejected = 0
        self.frames = 0
        self.render_seconds = 0.0
        self.image_msg = Image()

        from donkey_ros_interfaces.msg import SimStatus
        self.status_msg_type = SimStatus
        self.image_pub = self.create_publisher(Image, topics.IMAGE, qos.IMAGE_PUBLISH)
        self.info_pub = self.create_publisher(CameraInfo, topics.CAMERA_INFO, qos.SENSOR)
        self.odom_pub = self.create_publisher(Odometry, topics.SIM_ODOM, qos.SENSOR)
        self.status_pub = self.create_publisher(SimStatus, topics.SIM_STATUS, qos.SENSOR)
        self.track_pub = self.create_publisher(MarkerArray, topics.SIM_TRACK, qos.LATCHED)
        self.create_subscription(TwistStamped, topics.CMD, self._on_cmd, qos.COMMAND)
        self.create_service(Trigger, 'sim/reset', self._on_reset)
        self.period = 1.0 / self.params.rate
        self.timer = create_steady_timer(self, self.period, self._tick)
        self.diagnostics = DiagnosticsPublisher(self, self._report)
        self.track_pub.publish(self._track_markers())
        self.get_logger().info(
            f"track '{self.sim.track.name}' ({self.sim.track.length:.1f} m), camera "
            f'{self.params.width}x{self.params.height} at {self.params.rate:g} Hz')

    def _check_param(self, proposed, changed) -> None:
        self._staged_sim = None
        if SIM_NAMES & set(changed):
            self._staged_sim = simulator_from_params(proposed)  # ConfigError refuses the batch

    def _on_param(self, name, value) -> None:
        if name in SIM_NAMES and self._staged_sim is not None:
            self.sim, self._staged_sim = self._staged_sim, None
            self.track_pub.publish(self._track_markers())
            self.get_logger().info(
                f"simulator rebuilt ({name} = {value!r}): track '{self.sim.track.name}', camera "
                f'{self.params.width}x{self.params.height}; car on the start line')
        elif name == 'rate':
            self.destroy_timer(self.timer)
            self.period = 1.0 / value
            self.timer = create_steady_timer(self, self.period, self._tick)
        elif name == 'odom_frame_id':
            self.track_pub.publish(self._track_markers())

    def _on_cmd(self, msg: TwistStamped) -> None:
        try:
            self.command = command_from_msg(msg)
        except CommandError as error:
            self.rejected += 1
            self.get_logger().error(f'cmd: {error}', throttle_duration_sec=1.0)
            return
        self.command_time = steady_now()

    def _on_reset(self, request, response):
        self.sim.reset()
        response.success = True
        response.message = 'car reset to the start line'
        if self.sim.randomization.enabled:
            response.message += f' (episode {self.sim.episode}: a new look)'
        self.get_logger().info(response.message)
        return response

    def _tick(self) -> None:
        fresh = steady_now() - self.command_time <= self.params.cmd_timeout
        command = self.command if fresh else NEUTRAL
        dt = self.period * self.params.time_scale / self.params.physics_substeps
        off_track_before = self.sim.status.off_track_count
        laps_before = self.sim.status.laps
        for _ in range(self.params.physics_substeps):
            self.sim.step(dt, command.throttle, command.steering)
        stamp = self.get_clock().now().to_msg()
        started = time.perf_counter()
        pixels = self.sim.render()
        self.render_seconds += time.perf_counter() - started
        self.frames += 1
        self.image_pub.publish(array_to_image(pixels, stamp, self.params.frame_id,
                                              msg=self.image_msg))
        self.info_pub.publish(self._camera_info(stamp))
        self.odom_pub.publish(self._odom(stamp))
        self.status_pub.publish(self._status(stamp))
        status = self.sim.status
        if status.off_track_count > off_track_before:
            self.get_logger().warning(f'off track (#{status.off_track_count})')
        if status.laps > laps_before:
            self.get_logger().info(f'lap {status.laps}: {status.last_lap_time:.2f} s')

    def _camera_info(self, stamp) -> CameraInfo:
        camera = self.sim.renderer.camera  # the episode's (domain randomization may vary fov)
        width, height = camera.width, camera.height
        focal = (width / 2) / math.tan(math.radians(camera.fov_deg) / 2)
        info = CameraInfo(width=width, height=height, distortion_model='plumb_bob')
        info.header.stamp, info.header.frame_id = stamp, self.params.frame_id
        info.d = [0.0] * 5
        info.k = [focal, 0.0, width / 2, 0.0, focal, height / 2, 0.0, 0.0, 1.0]
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.p = [focal, 0.0, width / 2, 0.0, 0.0, focal, height / 2, 0.0, 0.0, 0.0, 1.0, 0.0]
        return info

    def _odom(self, stamp) -> Odometry:
        s = self.sim.status
        odom = Odometry()
        odom.header.stamp, odom.header.frame_id = stamp, self.params.odom_frame_id
        odom.child_frame_id = 'base_link'
        odom.pose.pose.position.x, odom.pose.pose.position.y = float(s.x), float(s.y)
        odom.pose.pose.orientation.z = math.sin(s.yaw / 2)
        odom.pose.pose.orientation.w = math.cos(s.yaw / 2)
        odom.twist.twist.linear.x = float(s.speed)
        odom.twist.twist.angular.z = float(
            s.speed * math.tan(s.steering_angle) / self.params.wheelbase)
        return odom

    def _status(self, stamp):
        msg = self.status_msg_type(**self.sim.status.message_fields())
        msg.header.stamp, msg.header.frame_id = stamp, self.params.odom_frame_id
        return msg

    def _track_markers(self) -> MarkerArray:
        track = self.sim.track
        markers = MarkerArray()
        stride = max(1, len(track.points) // 400)
        points = [Point(x=float(x), y=float(y)) for x, y in track.points[::stride]]
        points.append(points[0])
        half = track.road_width / 2
        for marker_id, (offset, rgb, width) in enumerate(
                ((0.0, track.style.center_line, 0.03), (half, track.style.edge, 0.05),
                 (-half, track.style.edge, 0.05))):
            marker = Marker(ns='track', id=marker_id, type=Marker.LINE_STRIP,
                            action=Marker.ADD)
            marker.header.frame_id = self.params.odom_frame_id
            marker.scale.x = width
            marker.color.r, marker.color.g, marker.color.b = (c / 255 for c in rgb)
            marker.color.a = 1.0
            marker.pose.orientation.w = 1.0
            marker.points = points if offset == 0.0 else [
                Point(x=float(x - offset * math.sin(h)), y=float(y + offset * math.cos(h)))
                for (x, y), h in zip(track.points[::stride], track.headings[::stride])]
            if offset:
                marker.points.append(marker.points[0])
            markers.markers.append(marker)
        return markers

    def _report(self):
        s = self.sim.status
        fps = self.frames / self.render_seconds if self.render_seconds else 0.0
        level = OK if s.on_track else WARN
        return level, 'on track' if s.on_track else 'off track', {
            'track': self.sim.track.name, 'laps': s.laps, 'off_track_count': s.off_track_count,
            'cross_track_error': s.cross_track_error, 'render_fps': fps,
            'episode': self.sim.episode,
            'rejected_commands': self.rejected}


def main() -> None:
    node_main(SimNode)
