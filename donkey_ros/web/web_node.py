"""The web controller node: a phone page to watch the camera and drive (DonkeyCar's port 8887).

Serves the page (``server.py``), publishes the virtual joystick on `user/cmd` with a deadman
(neutral when the stick is let go, when the page's connection closes, or after ``deadman``
seconds without a joystick message), requests drive modes on `drive_mode/set`, calls
`recorder/record` and the mux's `estop`, and shows `drive_mode`, `cmd`, `pilot/cmd` latency,
`sim/status` and `recorder/status` on the page.
"""
from __future__ import annotations

from collections import deque

from geometry_msgs.msg import TwistStamped
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from std_msgs.msg import String
from std_srvs.srv import SetBool

from donkey_ros.common import qos
from donkey_ros.common.clock import create_steady_timer, steady_now
from donkey_ros.common.command import NEUTRAL, CommandError, DriveCommand, command_from_msg, \
    command_to_msg
from donkey_ros.common.diagnostics import ERROR, OK, WARN, DiagnosticsPublisher
from donkey_ros.common.image import ImageError, image_to_array
from donkey_ros.common.params import Param, declare_parameters
from donkey_ros.common.runner import node_main
from donkey_ros.web.access import AccessError, check_host
from donkey_ros.web.protocol import Joystick, Message
from donkey_ros.web.server import Connection, WebServer
from donkey_ros.web.token_store import web_token

NODE_NAME = 'web'
PARAMS = (
    Param('host', '127.0.0.1', 'Address to listen on: 127.0.0.1 = this machine only; 0.0.0.0 = '
          'every network (a phone at the track); then a token is required.', read_only=True),
    Param('port', 8887, 'TCP port of the page (DonkeyCar uses 8887; 0 = any free port).',
          min=0, max=65535, read_only=True),
    Param('token', '', "Password other machines must give (?token=... in the URL); '' = "
          '$DONKEY_ROS_WEB_TOKEN, else the one in token_file (made once, kept across launches).',
          read_only=True),
    Param('token_file', '', "File holding the generated token (mode 0600); '' = the data "
          "folder's web_token (~/.local/share/donkey_ros/web_token).", read_only=True),
    Param('throttle_scale', 0.5, 'Throttle at full stick (the page slider changes it).',
          min=0.0, max=1.0),
    Param('deadman', 0.3, 'Seconds without joystick messages from a held stick after which '
          'neutral is published.', min=0.05, max=0.45),
    Param('max_fps', 30.0, 'Most camera frames per second sent to the page (frames are sent '
          'at the camera rate up to this).', min=1.0, max=120.0),
    Param('jpeg_quality', 75, 'JPEG quality of the video sent to the page.', min=10, max=100),
    Param('status_rate', 5.0, 'Status updates per second sent to the page.', min=0.5,
          max=30.0, read_only=True),
    Param('allowed_hosts', [], 'Further host names the page may be opened by (a DNS name of the '
          'car, a reverse proxy); this machine\'s own names and addresses are always allowed, '
          'any other Host header is refused (DNS rebinding).', item_type=str, read_only=True),
)

DEADMAN_CHECK_PERIOD = 0.05


class WebNode(Node):
    NODE_NAME = NODE_NAME

    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self.params = declare_parameters(self, PARAMS, on_change=self._on_param)
        p = self.params
        try:
            check_host(p.host)
            self.token = web_token(p.host, p.token, p.token_file)
        except AccessError as error:
            self.destroy_node()
            raise error
        token = self.token.value
        self.joystick = Joystick(p.deadman)
        self.estop = False
        self.commands_sent = 0
        self.frames = 0
        self.frame_times: deque[float] = deque(maxlen=60)
        self.frame_error = ''
        self.frames_rejected = 0
        self.pilot_latency_ms: float | None = None
        self.pilot_time = -1e9
        self.status_error = ''

        self.cmd_pub = self.create_publisher(TwistStamped, 'user/cmd', qos.COMMAND)
        self.mode_pub = self.create_publisher(String, 'drive_mode/set', 10)
        self.estop_client = self.create_client(SetBool, 'estop')
        self.record_client = self.create_client(SetBool, 'recorder/record')
        self.create_subscription(Image, 'camera/image_raw', self._on_image, qos.IMAGE_LATEST)
        self.create_subscription(String, 'drive_mode', self._on_mode, qos.LATCHED)
        self.create_subscription(TwistStamped, 'cmd', self._on_cmd, qos.COMMAND)
        self.create_subscription(TwistStamped, 'pilot/cmd', self._on_pilot, qos.COMMAND)
        self._subscribe_interfaces()

        self.server = WebServer(
            p.host, p.port, token, on_message=self._on_message,
            on_disconnect=self._on_disconnect, logger=self.get_logger(),
            jpeg_quality=p.jpeg_quality, max_fps=p.max_fps, status_period=1.0 / p.status_rate,
            allowed_hosts=list(p.allowed_hosts))
        self.server.set_status(mode=None, estop=False, recording=None, recorder_error='',
                               throttle_scale=p.throttle_scale, cmd_steering=0.0, cmd_throttle=0.0)
        try:
            self.server.start()
        except Exception:
            self.destroy_node()
            raise
        create_steady_timer(self, DEADMAN_CHECK_PERIOD, self._check_deadman)
        create_steady_timer(self, 1.0 / p.status_rate, self._update_status)
        self.diagnostics = DiagnosticsPublisher(self, self._report)
        self.urls = self.server.urls
        if self.token.value:
            self.get_logger().info(self.token.describe())
        for url in self.urls:
            self.get_logger().info(f'web controller: {url}')

    @property
    def url(self) -> str:
        """The first URL of the page (with the token when one is needed)."""
        return self.urls[0]

    @property
    def port(self) -> int:
        return self.server.port

    # --- optional interfaces -------------------------------------------------------------------
    def _subscribe_interfaces(self) -> None:
        try:
            from donkey_ros_interfaces.msg import RecorderStatus, SimStatus
        except ImportError as error:
            self.status_error = f'donkey_ros_interfaces not built ({error}): no sim/recorder status'
            self.get_logger().warning(self.status_error)
            return
        self.create_subscription(SimStatus, 'sim/status', self._on_sim_status, qos.SENSOR)
        self.create_subscription(RecorderStatus, 'recorder/status', self._on_recorder_status, 10)

    # --- page -> ROS (called on the server thread) ----------------------------------------------
    def _on_message(self, conn: Connection, message: Message) -> None:
        kind = message.type
        if kind == 'joy':
            if self.estop:
                return
            stick: DriveCommand = message.value
            command = DriveCommand.checked(stick.steering,
                                           stick.throttle * self.params.throttle_scale)
            self._publish(self.joystick.move(conn, command, steady_now()))
        elif kind == 'release':
            self._publish(self.joystick.release(conn))
        elif kind == 'mode':
            self.mode_pub.publish(String(data=message.value))
            self.get_logger().info(f'page requests drive mode {message.value}')
        elif kind == 'scale':
            result = self.set_parameters([Parameter('throttle_scale', value=message.value)])[0]
            if not result.successful:
                self.server.notify(f'throttle scale refused: {result.reason}', 'error')
        elif kind == 'estop':
            self._call_estop(message.value)
        elif kind == 'record':
            self._call(self.record_client, message.value, 'recorder/record',
                       'is the recorder running?', self._on_record_response)

    def _on_disconnect(self, conn: Connection) -> None:
        command = self.joystick.release(conn)
        if command is not None:
            self.get_logger().warning('page connection closed while driving: neutral sent')
        self._publish(command)

    def _call_estop(self, engage: bool) -> None:
        # Our side follows at once, whatever the mux answers: engaged = the stick is ignored.
        self.estop = engage
        if engage:
            self._publish(self.joystick.stop() or NEUTRAL)
        self._call(self.estop_client, engage, 'estop', 'is the mux running?',
                   self._on_estop_response)

    def _call(self, client, value: bool, name: str, hint: str, done) -> None:
        if not client.service_is_ready():
            text = f'no {name} service ({hint})'
            self.get_logger().error(text)
            self.server.notify(text, 'error')
            return
        future = client.call_async(SetBool.Request(data=bool(value)))
        future.add_done_callback(lambda f: done(value, f))

    def _on_estop_response(self, engage: bool, future) -> None:
        self._show_response(future, 'estop', 'stopped' if engage else 'released', estop=engage)

    def _on_record_response(self, start: bool, future) -> None:
        self._show_response(future, 'recorder', 'recording' if start else 'stopped',
                            recording=start)

    def _show_response(self, future, name: str, done: str, **status) -> None:
        """Shows a service's answer on the page; ``status`` is set on the page if it succeeded."""
        try:
            response = future.result()
        except Exception as error:  # the call failed: say so on the page
            self.server.notify(f'{name} call failed: {error}', 'error')
            return
        if response.success:
            self.server.set_status(**status)
        self.server.notify(response.message or done, 'info' if response.success else 'error')

    def _publish(self, command: DriveCommand | None) -> None:
        if command is None:
            return
        self.cmd_pub.publish(command_to_msg(command, self.get_clock().now().to_msg()))
        self.commands_sent += 1

    def _check_deadman(self) -> None:
        command = self.joystick.check(steady_now())
        if command is not None:
            self.get_logger().warning(
                f'no joystick message for {self.params.deadman:g} s: neutral sent')
            self._publish(command)

    def _on_param(self, name, value) -> None:
        if name == 'deadman':
            self.joystick.timeout = value
        elif name == 'throttle_scale':
            self.server.set_status(throttle_scale=value)
        elif name == 'max_fps':
            self.server.max_fps = value
        elif name == 'jpeg_quality':
            self.server.jpeg_quality = value

    # --- ROS -> page -----------------------------------------------------------------------------
    def _on_image(self, msg: Image) -> None:
        try:
            pixels = image_to_array(msg)
        except ImageError as error:
            self.frames_rejected += 1
            self.frame_error = str(error)
            self.get_logger().error(f'camera/image_raw: {error}', throttle_duration_sec=2.0)
            return
        self.frame_error = ''
        self.frames += 1
        self.frame_times.append(steady_now())
        self.server.put_frame(pixels)

    def _on_mode(self, msg: String) -> None:
        self.server.set_status(mode=msg.data)

    def _on_cmd(self, msg: TwistStamped) -> None:
        try:
            command = command_from_msg(msg)
        except CommandError:
            return
        self.server.set_status(cmd_steering=command.steering, cmd_throttle=command.throttle)

    def _on_pilot(self, msg: TwistStamped) -> None:
        stamp = msg.header.stamp
        if stamp.sec == 0 and stamp.nanosec == 0:
            return
        now = self.get_clock().now().nanoseconds
        latency = (now - (stamp.sec * 1_000_000_000 + stamp.nanosec)) / 1e6
        if 0 <= latency < 60_000:
            previous = self.pilot_latency_ms
            self.pilot_latency_ms = latency if previous is None else 0.8 * previous + 0.2 * latency
            self.pilot_time = steady_now()

    def _on_sim_status(self, msg) -> None:
        self.server.set_status(
            track=msg.track, laps=int(msg.laps), off_track=int(msg.off_track_count),
            on_track=bool(msg.on_track), lap_time=float(msg.lap_time),
            last_lap=float(msg.last_lap_time), best_lap=float(msg.best_lap_time),
            speed=float(msg.speed))

    def _on_recorder_status(self, msg) -> None:
        self.server.set_status(recording=bool(msg.recording), bag=msg.bag_path,
                               recorder_error=getattr(msg, 'error', ''))

    def camera_fps(self) -> float:
        times = self.frame_times
        if len(times) < 2 or steady_now() - times[-1] > 2.0:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])

    def _update_status(self) -> None:
        fresh_pilot = steady_now() - self.pilot_time < 2.0
        self.server.set_status(
            camera_fps=round(self.camera_fps(), 1), clients=self.server.clients,
            pilot_latency_ms=round(self.pilot_latency_ms, 1) if fresh_pilot else None,
            stick=self.joystick.active, estop=self.estop)

    def _report(self):
        s = self.server
        values = {
            'url': self.url, 'clients': s.clients, 'camera_fps': self.camera_fps(),
            'frames_received': self.frames, 'frames_rejected': self.frames_rejected,
            'frames_encoded': s.frames_encoded, 'frames_sent': s.frames_sent,
            'encode_ms_mean': 1000 * s.encode_seconds / s.frames_encoded if s.frames_encoded
            else 0.0,
            'commands_sent': self.commands_sent, 'stick_active': self.joystick.active,
            'deadman_trips': self.joystick.deadman_trips, 'bad_messages': s.bad_messages,
            'refused_requests': s.refused, 'dropped_pages': s.dropped, 'errors': s.handler_errors,
            'estop': self.estop}
        if self.frame_error:
            return ERROR, f'camera frames refused: {self.frame_error}', values
        if not self.frames:
            return WARN, f'serving {self.url}; waiting for camera/image_raw', values
        return OK, f'serving {self.url} to {s.clients} page(s)', values

    def on_shutdown(self) -> None:
        """Failsafe: neutral if the stick was held, then close the pages."""
        self._publish(self.joystick.stop())
        self.server.stop()

    def destroy_node(self) -> None:
        server = getattr(self, 'server', None)
        if server is not None:
            server.stop()
        return super().destroy_node()


def main() -> None:
    node_main(WebNode)
