"""ROS glue for joystick teleop: ``joy`` (Joy) and ``user/cmd_vel`` (Twist) -> ``user/cmd``.

Run the standard ``joy`` node (``ros2 run joy joy_node``) next to it. A Joy message that does not
fit the pad layout or carries NaN/inf gives a neutral command and a logged error; the node keeps
running. While the pad's e-stop is engaged, this node's own output is neutral as well.
"""
from __future__ import annotations

from geometry_msgs.msg import Twist, TwistStamped
from rclpy.node import Node
from sensor_msgs.msg import Joy

from donkey_ros.common import qos
from donkey_ros.common.command import NEUTRAL, CommandError, command_to_msg
from donkey_ros.common.diagnostics import OK, WARN, DiagnosticsPublisher
from donkey_ros.common.params import Param, declare_parameters
from donkey_ros.common.runner import node_main
from donkey_ros.teleop.controls import CarControls
from donkey_ros.teleop.joy import PADS, JoyError, JoyMapper, layout_with, twist_to_command

NODE_NAME = 'joy_teleop'
LAYOUT_FIELDS = ('steering_axis', 'throttle_axis', 'mode_button', 'estop_button',
                 'record_button', 'scale_up_button', 'scale_down_button', 'scale_axis')
PARAMS = (
    Param('pad', 'ps4', 'Pad layout: ps4 / xbox (joy_node on Linux; xbox also fits the F710 '
          'in XInput mode) or gamepad (game_controller_node, any pad).', choices=tuple(PADS)),
    *(Param(name, -1, f'Joy index for {name.replace("_", " ")}; -1 = the pad\'s.', min=-1,
            max=63) for name in LAYOUT_FIELDS),
    Param('deadzone', 0.05, 'Stick travel around the centre read as zero.', min=0.0, max=0.9),
    Param('steering_scale', 1.0, 'Steering at full stick (negative flips it).', min=-1.0,
          max=1.0),
    Param('throttle_scale', 0.5, 'Throttle at full stick at start (DonkeyCar '
          'JOYSTICK_MAX_THROTTLE); the d-pad changes it.', min=0.0, max=1.0),
    Param('throttle_scale_step', 0.05, 'Change of the throttle scale per d-pad press.',
          min=0.01, max=0.5),
    Param('throttle_inverted', False, 'Flip the throttle stick (DonkeyCar '
          'JOYSTICK_THROTTLE_DIR = 1).'),
    Param('twist_max_linear', 2.0, 'user/cmd_vel linear.x (m/s) that means full throttle.',
          min=0.01, max=100.0),
    Param('twist_max_angular', 1.0, 'user/cmd_vel angular.z (rad/s) that means full left.',
          min=0.01, max=100.0),
)


class JoyTeleopNode(Node):
    NODE_NAME = NODE_NAME

    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self.params = p = declare_parameters(self, PARAMS, on_change=self._on_param,
                                            check=self._check_param)
        self.mapper = self._mapper(vars(p))
        self.controls = CarControls(self)
        self.cmd_pub = self.create_publisher(TwistStamped, 'user/cmd', qos.COMMAND)
        self.create_subscription(Joy, 'joy', self._on_joy, 10)
        self.create_subscription(Twist, 'user/cmd_vel', self._on_twist, 10)
        self.rejected = 0
        self.last_error = ''
        self.diagnostics = DiagnosticsPublisher(self, self._report)
        self.get_logger().info(f'pad {p.pad}: {self.mapper.layout}')

    @staticmethod
    def _mapper(values: dict) -> JoyMapper:
        layout = layout_with(values['pad'], {name: values[name] for name in LAYOUT_FIELDS})
        return JoyMapper(layout, values['deadzone'], values['steering_scale'],
                         values['throttle_scale'], -1.0 if values['throttle_inverted'] else 1.0,
                         values['throttle_scale_step'])

    def _check_param(self, proposed, changed) -> None:
        self._mapper(vars(proposed))  # a pad or layout that does not exist refuses the batch

    def _on_param(self, name, value) -> None:
        values = dict(vars(self.params))
        scale = self.mapper.throttle_scale if name != 'throttle_scale' else value
        self.mapper = self._mapper(values)
        self.mapper.throttle_scale = scale

    def _on_joy(self, msg: Joy) -> None:
        try:
            command, events = self.mapper.update(msg.axes, msg.buttons)
        except JoyError as error:
            self._reject(f'joy: {error}')
            return
        except Exception as error:  # nothing a message holds may stop the node
            self._reject(f'joy: unreadable message: {error!r}')
            return
        self.last_error = ''
        for event in events:
            self._event(event)
        self._send(command)

    def _event(self, event: str) -> None:
        if not self.controls.handle(event, 'pad'):
            self.get_logger().info(f'throttle scale {self.mapper.throttle_scale:.2f}')

    def _on_twist(self, msg: Twist) -> None:
        try:
            command = twist_to_command(msg.linear.x, msg.angular.z, self.params.twist_max_linear,
                                       self.params.twist_max_angular)
        except CommandError as error:
            self._reject(f'user/cmd_vel: {error}')
            return
        self._send(command)

    def _reject(self, message: str) -> None:
        self.rejected += 1
        self.last_error = message
        self.get_logger().error(f'{message}; sending neutral', throttle_duration_sec=1.0)
        self._send(NEUTRAL)

    def _send(self, command) -> None:
        if self.controls.estop:
            command = NEUTRAL
        self.cmd_pub.publish(command_to_msg(command, self.get_clock().now().to_msg()))

    def _report(self):
        values = {'pad': self.params.pad, 'throttle_scale': self.mapper.throttle_scale,
                  'estop': self.controls.estop, 'recording': self.controls.recording,
                  'rejected': self.rejected}
        if self.last_error:
            return WARN, self.last_error, values
        return OK, f'pad {self.params.pad}', values

    def on_shutdown(self) -> None:
        self.cmd_pub.publish(command_to_msg(NEUTRAL, self.get_clock().now().to_msg()))


def main() -> None:
    node_main(JoyTeleopNode)


if __name__ == '__main__':
    main()
