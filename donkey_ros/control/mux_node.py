"""ROS glue for the drive-mode mux: user/cmd + pilot/cmd -> cmd, drive_mode latched, e-stop."""
from __future__ import annotations

import threading

from geometry_msgs.msg import TwistStamped
from rclpy.node import Node
from std_msgs.msg import String
from std_srvs.srv import SetBool

from donkey_ros.common import intra, qos
from donkey_ros.common.clock import create_steady_timer, steady_now
from donkey_ros.common.command import (NEUTRAL, CommandBuilder, CommandError, command_from_msg,
                                      command_to_msg)
from donkey_ros.common.diagnostics import ERROR, OK, WARN, DiagnosticsPublisher
from donkey_ros.common.params import Param, declare_parameters
from donkey_ros.common.runner import node_main
from donkey_ros.control.mux import MODES, DriveModeMux, MuxError, check_mode

NODE_NAME = 'mux'
PARAMS = (
    Param('mode', 'user', 'Drive mode: who steers and who throttles.', choices=MODES),
    Param('timeout', 0.5, 'Seconds after which a silent source counts as neutral.',
          min=0.01, max=10.0),
    Param('rate', 20.0, 'Heartbeat rate (Hz) of cmd; cmd is also sent on every input.',
          min=1.0, max=200.0),
)
STALL_PERIODS = 2.5
"""Heartbeat periods without a heartbeat after which the node's executor counts as stalled..."""
STALL_MIN = 0.1
"""... and never less than this (s): a fast heartbeat may be a few ms late."""


class MuxNode(Node):
    NODE_NAME = NODE_NAME

    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self.params = declare_parameters(self, PARAMS, on_change=self._on_param)
        self.mux = DriveModeMux(timeout=self.params.timeout, mode=self.params.mode)
        # Commands from in-process publishers (the fast path, common/intra.py) arrive in the
        # publisher's thread, at once, not on this node's executor: one hop less between a
        # frame and the wheels. Everything that reads or changes the mux holds this lock.
        # They are forwarded only while this node's executor is alive (its heartbeat ran within
        # STALL_PERIODS periods, at least STALL_MIN): with it stalled, the e-stop service,
        # drive_mode/set and commands from other processes go unheard, so nothing drives (the
        # actuator's watchdog stops the car), as when every callback ran there.
        self._lock = threading.RLock()
        self._beat = steady_now()
        self._commands = CommandBuilder()  # under the lock
        self.cmd_pub = intra.create_publisher(self, TwistStamped, 'cmd', qos.COMMAND)
        self.mode_pub = self.create_publisher(String, 'drive_mode', qos.LATCHED)
        intra.create_subscription(self, TwistStamped, 'user/cmd',
                                  lambda msg: self._on_command('user', msg), qos.COMMAND,
                                  thread_safe=True)
        intra.create_subscription(self, TwistStamped, 'pilot/cmd',
                                  lambda msg: self._on_command('pilot', msg), qos.COMMAND,
                                  thread_safe=True)
        self.create_subscription(String, 'drive_mode/set', self._on_mode_request, 10)
        self.create_service(SetBool, 'estop', self._on_estop)
        self.timer = create_steady_timer(self, 1.0 / self.params.rate, self._heartbeat)
        self.rejected = 0
        self.stalled = 0
        """Commands not forwarded because this node's executor had stalled."""
        self.last_reason = 'ok'
        self.diagnostics = DiagnosticsPublisher(self, self._report)
        self._publish_mode()

    def _on_param(self, name, value) -> None:
        with self._lock:
            if name == 'mode':
                self.mux.set_mode(value)
                self.get_logger().info(f'drive mode: {value}')
                self._publish_mode()
            elif name == 'timeout':
                self.mux.timeout = value
            elif name == 'rate':
                self.destroy_timer(self.timer)
                self.timer = create_steady_timer(self, 1.0 / value, self._heartbeat)

    def _publish_mode(self) -> None:
        self.mode_pub.publish(String(data=self.mux.mode))

    def _on_mode_request(self, msg: String) -> None:
        from rclpy.parameter import Parameter
        try:
            check_mode(msg.data)
        except MuxError as error:
            self.get_logger().error(str(error))
            return
        self.set_parameters([Parameter('mode', value=msg.data)])

    def _on_estop(self, request, response):
        with self._lock:
            self.mux.estop = bool(request.data)
            response.success = True
            response.message = ('emergency stop engaged' if self.mux.estop
                                else 'emergency stop released')
            if self.mux.estop:
                self.get_logger().warning(response.message)
            else:
                self.get_logger().info(response.message)
            self._publish()
        return response

    def _on_command(self, source: str, msg) -> None:
        with self._lock:
            try:
                command = command_from_msg(msg)
            except CommandError as error:
                self.rejected += 1
                self.get_logger().error(f'{source}/cmd: {error}', throttle_duration_sec=1.0)
                return
            now = steady_now()
            self.mux.update(source, command, now, msg.header.stamp)
            if source in (self.mux.steering_source(), self.mux.throttle_source()):
                if now - self._beat <= max(STALL_PERIODS / self.params.rate, STALL_MIN):
                    self._publish()
                else:
                    self.stalled += 1

    def _heartbeat(self) -> None:
        with self._lock:
            self._beat = steady_now()
            self._publish()

    def _publish(self) -> None:
        with self._lock:  # re-entrant: the callbacks above call this holding it
            command, reason = self.mux.output(steady_now())
            if reason != self.last_reason:
                if reason == 'ok':
                    self.get_logger().info('output: ok')
                else:
                    self.get_logger().warning(f'output: {reason}')
                self.last_reason = reason
            stamp = self.mux.stamp() if reason == 'ok' else None
            self.cmd_pub.publish(self._commands.build(
                command, stamp or self.get_clock().now().to_msg()))
            self._commands.prepare()  # in-process, the actuator has taken the command by now

    def _report(self):
        with self._lock:
            now = steady_now()
            level = ERROR if self.mux.estop else OK if self.last_reason == 'ok' else WARN
            return level, f'mode {self.mux.mode}: {self.last_reason}', {
                'mode': self.mux.mode, 'estop': self.mux.estop, 'rejected': self.rejected,
                'stalled': self.stalled,
                'user_age': self.mux.age('user', now), 'pilot_age': self.mux.age('pilot', now)}

    def on_shutdown(self) -> None:
        self.cmd_pub.publish(command_to_msg(NEUTRAL, self.get_clock().now().to_msg()))


def main() -> None:
    node_main(MuxNode)
